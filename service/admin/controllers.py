from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, patch, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import ObjectStorage
from service.admin import service
from service.admin.schemas import (
    TenantComputeOut,
    TenantComputeWrite,
    TenantStatusUpdate,
    TenantSummary,
    UserOut,
)
from service.auth.policy import Access, access
from service.db.pagination import PageRequest, page_body
from service.schemas import Page
from service.tenants import service as tenants
from service.usage import service as usage
from service.usage.controllers import Since, Until
from service.usage.schemas import UsageOut


class AdminController(Controller):
    path = "/v1/admin"
    tags = ["admin"]
    opt = access(Access.ADMIN)

    @get("/tenants", operation_id="adminListTenants")
    async def list_tenants(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[TenantSummary]:
        items, total = await service.list_tenants(db_session, page)
        return Page[TenantSummary].model_validate(page_body(items, total, page))

    @get("/tenants/{tenant_id:uuid}", operation_id="adminGetTenant")
    async def get_tenant(
        self, tenant_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> TenantSummary:
        return await service.get_tenant(db_session, tenant_id)

    @patch("/tenants/{tenant_id:uuid}", operation_id="adminUpdateTenant")
    async def update_tenant(
        self,
        tenant_id: FromPath[UUID],
        data: JSONBody[TenantStatusUpdate],
        db_session: NamedDependency[AsyncSession],
    ) -> TenantSummary:
        return await service.set_tenant_status(db_session, tenant_id, data.status)

    # Here, not in service.tenants' controller: Litestar answers OPTIONS once per path and controller.
    @delete("/tenants/{tenant_id:uuid}", operation_id="adminDeleteTenant", description=tenants.DELETION)
    async def delete_tenant(
        self,
        tenant_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> None:
        await tenants.delete_any_tenant(db_session, storage, tenant_id)

    @get("/tenants/{tenant_id:uuid}/compute", operation_id="adminGetTenantCompute")
    async def get_compute(
        self, tenant_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> TenantComputeOut:
        return await service.get_compute(db_session, tenant_id)

    @put("/tenants/{tenant_id:uuid}/compute", operation_id="adminSetTenantCompute")
    async def set_compute(
        self,
        tenant_id: FromPath[UUID],
        data: JSONBody[TenantComputeWrite],
        db_session: NamedDependency[AsyncSession],
    ) -> TenantComputeOut:
        return await service.set_compute(db_session, tenant_id, data)

    @get("/tenants/{tenant_id:uuid}/usage", operation_id="adminGetTenantUsage")
    async def get_usage(
        self,
        tenant_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        since: Since = None,
        until: Until = None,
    ) -> UsageOut:
        """A tenant's usage, as its members see it at ``GET /v1/usage``."""
        today = usage.utc_today()
        period = usage.resolve_period(since, until, today)
        return await service.get_usage(db_session, tenant_id, period, today)

    @get("/users", operation_id="adminListUsers")
    async def list_users(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[UserOut]:
        items, total = await service.list_users(db_session, page)
        return Page[UserOut].model_validate(page_body(items, total, page))
