"""The request id, carried in a context variable so logs and problem details can name it."""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.logs import request_id_var as _request_id

REQUEST_ID_HEADER = "x-request-id"
SCOPE_KEY = "request_id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def current_request_id(scope: Scope | None = None) -> str | None:
    if scope is not None and (from_scope := scope.get("state", {}).get(SCOPE_KEY)):
        return str(from_scope)
    return _request_id.get()


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Takes a well-formed ``X-Request-ID`` from the caller or makes one, and echoes it back."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = incoming if _ACCEPTABLE.match(incoming) else uuid.uuid4().hex
        # Kept in the scope too: error responses are built outside this middleware.
        scope.setdefault("state", {})[SCOPE_KEY] = request_id
        token = _request_id.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            _request_id.reset(token)

    return middleware
