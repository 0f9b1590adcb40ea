from __future__ import annotations

from typing import Any

from litestar import Request

from service.auth.principal import Principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.user
    if not isinstance(principal, Principal):
        # Only reachable on a public route that asked for a principal: a bug, not a caller's mistake.
        raise RuntimeError("no principal on this request")
    return principal
