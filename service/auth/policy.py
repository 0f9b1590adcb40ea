"""Who may call which route. Every route declares its access level in ``opt``; a route
that declares none is refused to everyone, so a new route is closed until someone opens it."""

from __future__ import annotations

import enum
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Method

from core.errors import Forbidden
from service.auth.principal import Principal

ACCESS = "access"
# Routes whose opt sets this skip authentication (see AuthenticationMiddleware).
PUBLIC_OPT = "public"
# Methods open to everyone on every route: OPTIONS (a CORS preflight among them) says which
# methods a path has and reads nothing. The authentication middleware skips them too.
PUBLIC_METHODS: tuple[Method, ...] = ("OPTIONS",)


class Access(enum.StrEnum):
    PUBLIC = "public"
    MEMBER = "member"
    OWNER = "owner"
    ADMIN = "admin"


def access(level: Access) -> dict[str, Any]:
    """``opt`` for a route handler; public routes also skip authentication."""
    return {ACCESS: level, PUBLIC_OPT: level is Access.PUBLIC}


def enforce_access(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    level = handler.opt.get(ACCESS)
    if level is Access.PUBLIC or connection.scope.get("method") in PUBLIC_METHODS:
        return
    principal = connection.user
    if not isinstance(principal, Principal) or not isinstance(level, Access):
        raise Forbidden("You may not do this.")
    match level:
        case Access.MEMBER:
            return
        case Access.OWNER if principal.is_owner:
            return
        case Access.OWNER:
            raise Forbidden("Only the tenant's owners may do this.")
        case Access.ADMIN if principal.is_platform_admin:
            return
        case _:
            raise Forbidden("Only platform admins may do this.")


def undeclared_routes(app: Litestar) -> list[str]:
    """Routes that declare no access level (or something that is not one). Litestar's automatic
    OPTIONS answers are not ours to declare."""
    return sorted(
        f"{method} {route.path}"
        for route in app.routes
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items()
        if method not in PUBLIC_METHODS and not isinstance(handler.opt.get(ACCESS), Access)
    )
