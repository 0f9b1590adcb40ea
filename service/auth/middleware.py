from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from service.auth.authenticate import authenticate_api_key, authenticate_session_cookie
from service.auth.policy import PUBLIC_METHODS, PUBLIC_OPT
from service.db.tenancy import set_tenant


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every route not marked public, and binds the request's database
    session to the caller's tenant before any handler or dependency runs."""

    def __init__(
        self, app: ASGIApp, db_config: SQLAlchemyAsyncConfig, session_cookie: str, **kwargs: Any
    ) -> None:
        super().__init__(
            app, exclude_from_auth_key=PUBLIC_OPT, exclude_http_methods=list(PUBLIC_METHODS), **kwargs
        )
        self.db_config = db_config
        self.session_cookie = session_cookie

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        session = self.db_config.provide_session(connection.app.state, connection.scope)
        principal = None
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if token and scheme.lower() == "bearer":
            principal = await authenticate_api_key(session, token.strip())
        elif cookie := connection.cookies.get(self.session_cookie):
            principal = await authenticate_session_cookie(session, cookie)
        if principal is None:
            raise NotAuthorizedException("Sign in, or send an API key as 'Authorization: Bearer <key>'.")
        set_tenant(session, principal.tenant_id)
        return AuthenticationResult(user=principal, auth=principal)
