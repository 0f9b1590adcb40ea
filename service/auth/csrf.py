"""Cross-site request forgery protection for every state-changing request a browser can make.

A browser attaches the session cookie on its own, so a page on another site could make it
post a form to us. Browsers say where a request comes from: ``Sec-Fetch-Site`` (every
current browser) or, failing that, ``Origin`` (sent on every cross-origin POST). A request
that carries either must come from this very origin; one with neither did not come from a
browser form or script, and one with ``Authorization: Bearer`` carries no ambient
credential, so both pass. The session cookie is ``SameSite=Strict`` as well, so this is the
second of two locks (the first fails open on same-site subdomains and old browsers).

A third, for the JSON API: a body a page on another site can send without a CORS preflight
(a form's or ``text/plain``) is refused on ``/v1`` unless the request carries a bearer key.
The API reads JSON, so a browser that strips ``Origin`` still cannot forge a call with a form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from core.errors import Forbidden, UnsupportedMediaType

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# The content types a cross-site form or script can send without a preflight.
SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
API_PREFIX = "/v1/"
NOT_JSON = (
    "Requests to the API that are not authorised by an API key must send JSON "
    "(Content-Type: application/json), or the raw bytes of an upload part."
)
REFUSED = (
    "This request came from another site, so it was refused. "
    "Open the page on this server and submit it from there."
)


def same_origin_or_not_a_browser(headers: Headers) -> bool:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        # "none": the user typed the address or used a bookmark.
        return fetch_site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    # Compare the host and port only: behind a TLS-terminating proxy the scheme differs.
    return origin != "null" and urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def is_bearer(headers: Headers) -> bool:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _form_like(headers: Headers) -> bool:
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type in SIMPLE_CONTENT_TYPES


class CrossSiteRequestGuard:
    """ASGI middleware: refuses unsafe requests sent by another site's page (403)."""

    def __init__(self, app: ASGIApp, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] not in SAFE_METHODS:
            headers = Headers.from_scope(scope)
            if not is_bearer(headers):
                if not same_origin_or_not_a_browser(headers):
                    raise Forbidden(REFUSED)
                if scope["path"].startswith(API_PREFIX) and _form_like(headers):
                    raise UnsupportedMediaType(NOT_JSON)
        await self.app(scope, receive, send)
