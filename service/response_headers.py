"""Headers every response carries, whatever produced it (a handler, an error, a preflight, a 404)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# Browsers must take each response's Content-Type as it is, never guess another from the bytes:
# a tenant's file served as video/mp4 is never run as a page or a script.
EVERY_RESPONSE = {"X-Content-Type-Options": "nosniff"}


async def add_response_headers(message: Message, scope: Scope) -> None:
    """Litestar ``before_send`` hook: runs on every response message the app sends."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        for name, value in EVERY_RESPONSE.items():
            headers[name] = value
