from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import ObjectStorage
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.tenants.export import export_tenant
from service.tenants.schemas import TenantExport

# Deleting is answered by ``DELETE /v1/tenant`` (service.accounts.controllers) and
# ``DELETE /v1/admin/tenants/{id}`` (service.admin.controllers), which share their paths.


class TenantExportController(Controller):
    path = "/v1/tenant/export"
    tags = ["account"]

    @get(operation_id="exportTenant", opt=access(Access.OWNER))
    async def export(
        self,
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        principal: NamedDependency[Principal],
    ) -> TenantExport:
        """Everything the tenant holds, as one manifest: its records, and its files (footage and
        posters, validation clips, adapters, training records, model cards, generation outputs)
        as download paths of this API, each fetched with the same credentials."""
        return await export_tenant(db_session, storage, principal.tenant_id)
