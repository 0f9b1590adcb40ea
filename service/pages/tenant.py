"""The tenant's danger zone, for owners: export everything, or delete the tenant by typing its
name, with the API's service calls (``GET /v1/tenant/export``, ``DELETE /v1/tenant``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid
from core.settings import Settings
from core.storage import ObjectStorage
from service.accounts.controllers import session_cookie
from service.auth.principal import Principal
from service.pages.shared import OWNER, form_fields, redirect, shell
from service.pages.templates import page
from service.tenants import service as tenants


class TenantPages(Controller):
    path = "/app/tenant"
    include_in_schema = False

    @get("/delete", opt=OWNER)
    async def delete_form(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        return await _danger_zone(db_session, principal)

    @post("/delete", opt=OWNER)
    async def delete(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        form = await form_fields(request)
        try:
            await tenants.delete_own_tenant(db_session, storage, principal, form.get("confirm", ""))
        except Invalid as exc:
            return await _danger_zone(db_session, principal, status_code=422, errors=[exc.detail])
        return redirect("/signin?notice=tenant-deleted", cookies=[session_cookie(settings, "", 0)])


async def _danger_zone(
    db_session: AsyncSession, principal: Principal, status_code: int = 200, errors: list[str] | None = None
) -> Template:
    layout = await shell(db_session, principal, errors=errors or [])
    return page("tenant_delete.html", status_code=status_code, **layout)
