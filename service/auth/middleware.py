from __future__ import annotations

from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Receive, Scope, Send

from service.audit.context import Actor, acting, authenticated
from service.auth.authenticate import authenticate_api_key, authenticate_session_cookie
from service.auth.policy import ACCESS, PUBLIC_METHODS, PUBLIC_OPT, Access
from service.db.tenancy import set_tenant
from service.request_context import current_request_id


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates every route not marked public, and binds the request's database
    session to the caller's tenant before any handler or dependency runs. It also says who
    acts, for the audit log (``service.audit``): the client on every request, and the member
    (and key) once authenticated."""

    def __init__(
        self, app: ASGIApp, db_config: SQLAlchemyAsyncConfig, session_cookie: str, **kwargs: Any
    ) -> None:
        super().__init__(
            app, exclude_from_auth_key=PUBLIC_OPT, exclude_http_methods=list(PUBLIC_METHODS), **kwargs
        )
        self.db_config = db_config
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        with acting(Actor(ip=client[0] if client else None, request_id=current_request_id(scope))):
            await super().__call__(scope, receive, send)

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
        admin_route = connection.route_handler.opt.get(ACCESS) is Access.ADMIN
        authenticated(principal.user_id, principal.api_key_id, admin=admin_route)
        return AuthenticationResult(user=principal, auth=principal)
