"""Path and query parameters: integers bounded to what the database holds, in one place.

A number outside an INTEGER or BIGINT column's range would reach the database as an
overflow (a 500); here it is a 400 that the OpenAPI document states as ``maximum``. NUL
characters and invalid UTF-8 in the path or query string are refused by
``refuse_unreadable_urls``, before any handler runs.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from litestar.enums import ScopeType
from litestar.params import Parameter, PathParameter
from litestar.types import ASGIApp, Receive, Scope, Send

from core.errors import DomainError
from service.schemas import INT32_MAX, INT64_MAX

# A version (dataset or model) or part number in a path: 1 up to an INTEGER's maximum.
Number = Annotated[int, PathParameter(ge=1, le=INT32_MAX)]
# A step or index in a path: 0 up to an INTEGER's maximum.
Index = Annotated[int, PathParameter(ge=0, le=INT32_MAX)]


def sequence_after(description: str) -> Any:
    """``?after=``: a sequence number (an INTEGER column), 0 meaning from the start."""
    return Parameter(ge=0, le=INT32_MAX, description=description)


def page_limit() -> Any:
    return Parameter(default=50, ge=1, le=200, description="Items per page.")


def page_offset() -> Any:
    # SQL's OFFSET is a BIGINT on both databases.
    return Parameter(default=0, ge=0, le=INT64_MAX, description="Items to skip.")


def page_starting_after() -> Any:
    return Parameter(
        default=None,
        required=False,
        description="The id of the last item of the previous page: the page starts after it, "
        "so items made meanwhile are neither repeated nor skipped (instead of offset).",
    )


def _readable(raw: bytes) -> bool:
    decoded = unquote_to_bytes(raw.replace(b"+", b" "))
    if b"\x00" in decoded:
        return False
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def refuse_unreadable_urls(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: a path or query string holding NUL or bytes that are not UTF-8 is a 400."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and not (
            _readable(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape"))
            and _readable(scope.get("query_string", b""))
        ):
            raise DomainError("The address holds a NUL character or bytes that are not UTF-8.")
        await app(scope, receive, send)

    return middleware
