from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest, page_body
from service.quotas import service
from service.quotas.schemas import PlanOut, PlanWrite, QuotaNoticeOut, QuotasOut, TenantQuotaWrite
from service.schemas import Page
from service.usage.schemas import LedgerEntryOut


class PlanController(Controller):
    """Plans and each tenant's plan, overrides, quota use and ledger: platform admins only."""

    path = "/v1/admin"
    tags = ["admin"]
    opt = access(Access.ADMIN)

    @get("/plans", operation_id="adminListPlans")
    async def list_plans(self, db_session: NamedDependency[AsyncSession]) -> list[PlanOut]:
        return [PlanOut.model_validate(plan) for plan in await service.list_plans(db_session)]

    @post("/plans", operation_id="adminCreatePlan")
    async def create_plan(
        self, data: JSONBody[PlanWrite], db_session: NamedDependency[AsyncSession]
    ) -> PlanOut:
        return PlanOut.model_validate(await service.create_plan(db_session, data))

    @get("/plans/{plan_id:uuid}", operation_id="adminGetPlan")
    async def get_plan(self, plan_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> PlanOut:
        return PlanOut.model_validate(await service.get_plan(db_session, plan_id))

    @put("/plans/{plan_id:uuid}", operation_id="adminReplacePlan")
    async def replace_plan(
        self, plan_id: FromPath[UUID], data: JSONBody[PlanWrite], db_session: NamedDependency[AsyncSession]
    ) -> PlanOut:
        """Every limit is replaced; limits left out become unlimited."""
        return PlanOut.model_validate(await service.replace_plan(db_session, plan_id, data))

    @delete("/plans/{plan_id:uuid}", operation_id="adminDeletePlan")
    async def delete_plan(self, plan_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> None:
        """Refused (409) while any tenant is on the plan."""
        await service.delete_plan(db_session, plan_id)

    @get("/tenants/{tenant_id:uuid}/quotas", operation_id="adminGetTenantQuotas")
    async def get_quotas(
        self, tenant_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> QuotasOut:
        return await service.tenant_quotas(db_session, tenant_id)

    @patch("/tenants/{tenant_id:uuid}/quotas", operation_id="adminUpdateTenantQuotas")
    async def update_quotas(
        self,
        tenant_id: FromPath[UUID],
        data: JSONBody[TenantQuotaWrite],
        db_session: NamedDependency[AsyncSession],
    ) -> QuotasOut:
        """Move the tenant to a plan and/or replace its overrides."""
        return await service.set_tenant_quotas(db_session, tenant_id, data)

    @get("/tenants/{tenant_id:uuid}/ledger", operation_id="adminListTenantLedger")
    async def list_ledger(
        self,
        tenant_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
    ) -> Page[LedgerEntryOut]:
        items, total = await service.list_ledger(db_session, tenant_id, page)
        return Page[LedgerEntryOut].model_validate(page_body(items, total, page))


class QuotaController(Controller):
    """The caller's own tenant: its plan, each quota's use, and its ledger."""

    tags = ["usage"]
    opt = access(Access.MEMBER)

    @get("/v1/quotas", operation_id="getQuotas")
    async def get_quotas(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> QuotasOut:
        """The tenant's plan and, for every quota, its limit, what is used, what remains and what
        happens to new work at the limit (402, 413, 429, or waiting in the queue)."""
        return await service.tenant_quotas(db_session, principal.tenant_id)

    @get("/v1/quotas/notices", operation_id="listQuotaNotices")
    async def list_notices(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[QuotaNoticeOut]:
        """When an allowance reached 80 % and 100 % of its limit, once per level and month,
        newest first; webhooks carry the same as ``quota.warning`` and ``quota.exhausted``."""
        items, total = await service.list_notices(db_session, page)
        return Page[QuotaNoticeOut].model_validate(page_body(items, total, page))

    @get("/v1/usage/ledger", operation_id="listLedger")
    async def list_ledger(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
    ) -> Page[LedgerEntryOut]:
        """Every charge and credit of the tenant, newest first: what usage, quotas and billing add up."""
        items, total = await service.list_ledger(db_session, principal.tenant_id, page)
        return Page[LedgerEntryOut].model_validate(page_body(items, total, page))
