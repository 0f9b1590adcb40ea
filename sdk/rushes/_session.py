"""Signing up and signing in with an email and password, for a user who has no API key yet.

The server answers with a session cookie, as it does for the web app. A ``Session`` carries
it: ``Client(session=...)`` then acts as that user, e.g. to create the first API key::

    session = rushes.sign_up(email="me@example.com", password="...", tenant_name="My studio")
    with rushes.Client(session=session.cookies, base_url=session.base_url) as client:
        key = client.api_keys.create(name="laptop").key

Neither call is retried: a sign-up that reached the server cannot be sent again unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from rushes._base import DEFAULT_TIMEOUT, as_timeout, base_headers, resolve_base_url, transport_error
from rushes._errors import status_error
from rushes.types import Me


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session: the server it is on, its cookies, and who it signed in.

    It lasts as long as the server's session lifetime (14 days by default); ``Client.log_out``
    ends it at once.
    """

    base_url: str
    cookies: dict[str, str]
    me: Me


def _sign_in(
    path: str, body: dict[str, Any], base_url: str | None, timeout: float | httpx.Timeout | None
) -> Session:
    url = resolve_base_url(base_url)
    with httpx.Client(timeout=as_timeout(timeout)) as http:
        request = http.build_request("POST", url + path, json=body, headers=base_headers())
        try:
            response = http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(exc, request) from exc
    if not response.is_success:
        raise status_error(response)
    # The cookie is the session itself; the client sends it back by hand, since a cookie
    # marked Secure would not go back over plain HTTP from a cookie jar.
    return Session(base_url=url, cookies=dict(response.cookies.items()), me=Me.from_json(response.json()))


def sign_up(
    *,
    email: str,
    password: str,
    tenant_name: str,
    base_url: str | None = None,
    timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
) -> Session:
    """Make an account and its tenant (the caller owns it), and sign in.

    Raises ``ConflictError`` (409) when the email already has an account, ``UnprocessableEntityError``
    (422) for a bad email or a password under 10 characters, ``PermissionDeniedError`` (403)
    where the server has closed sign-up.
    """
    body = {"email": email, "password": password, "tenant_name": tenant_name}
    return _sign_in("/v1/auth/signup", body, base_url, timeout)


def log_in(
    *,
    email: str,
    password: str,
    tenant_id: str | None = None,
    base_url: str | None = None,
    timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
) -> Session:
    """Sign in, in ``tenant_id`` or else the user's first tenant.

    Raises ``AuthenticationError`` (401) for a wrong email or password.
    """
    body: dict[str, Any] = {"email": email, "password": password}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    return _sign_in("/v1/auth/login", body, base_url, timeout)
