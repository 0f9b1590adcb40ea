"""Stored objects handed to clients: whole, or the one byte range a ``Range`` header asks for.

Ranges let a browser's ``<video>`` seek through an output without fetching what lies before,
and let a client resume a broken download of footage or an adapter (RFC 9110, section 14).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.response import Stream

from core.errors import RangeNotSatisfiable
from core.storage import ObjectStorage
from service.openapi import problem

# One range of bytes; anything else (other units, several ranges) is answered whole.
_ONE_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    start: int
    length: int

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{size}"


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The range a ``Range`` header asks for, None for the whole object.

    A header this server does not understand is ignored, as RFC 9110 lets a server do: the
    client gets the whole object, which it can always use. A well-formed range that starts
    past the end (or asks for the last 0 bytes) is refused with 416.
    """
    match = _ONE_RANGE.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)  # the last ``suffix`` bytes
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        start = max(0, size - suffix)
        return ByteRange(start, size - start)
    start = int(first)
    if last and int(last) < start:
        return None  # malformed: ignored, so answered whole
    if start >= size:
        raise _unsatisfiable(size)
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end - start + 1)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    error = RangeNotSatisfiable(f"The object has {size} bytes; the range asked for lies outside them.")
    error.headers["content-range"] = f"bytes */{size}"
    return error


def object_response(
    storage: ObjectStorage,
    key: str,
    *,
    size: int,
    media_type: str,
    range_header: str | None,
    headers: dict[str, str] | None = None,
) -> Stream:
    """Stream the object at ``key`` (``size`` bytes), or the range the client asked for (206)."""
    span = requested_range(range_header, size)
    common = {"accept-ranges": "bytes", **(headers or {})}
    if span is None:
        return Stream(
            storage.iter_chunks(key), media_type=media_type, headers={**common, "content-length": str(size)}
        )
    return Stream(
        storage.iter_chunks(key, start=span.start, length=span.length),
        status_code=206,
        media_type=media_type,
        headers={**common, "content-length": str(span.length), "content-range": span.content_range(size)},
    )


# What a download route takes and may answer beyond its whole object, for its signature.
RangeHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Range", required=False, description="One byte range, e.g. bytes=0-1023 or bytes=-500."
    ),
]
RANGE_RESPONSES = {
    206: ResponseSpec(None, description="The byte range asked for (Content-Range names it)."),
    416: problem("The range asked for lies outside the object (Content-Range gives its size)."),
}
