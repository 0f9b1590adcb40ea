"""Plans, a tenant's plan and overrides, and what it uses of each quota (admins' and tenants' views)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound
from service.accounts.models import Tenant
from service.db.pagination import PageRequest, fetch_page
from service.db.tenancy import unscoped
from service.generations.models import Generation
from service.quotas import usage
from service.quotas.admission import RATE_WINDOW
from service.quotas.limits import Quota, limits_of, next_month
from service.quotas.models import Plan, QuotaNotice
from service.quotas.schemas import PlanWrite, QuotasOut, QuotaUse, TenantQuotaWrite
from service.usage.models import LedgerEntry

# What new work meets at each limit (``service.quotas.admission``; concurrency waits in the queue).
_WHEN_REACHED = {
    Quota.GPU_SECONDS_PER_MONTH: "refused_402",
    Quota.STORAGE_BYTES: "refused_402",
    Quota.MODELS: "refused_402",
    Quota.CONCURRENT_FINE_TUNES: "queued",
    Quota.CONCURRENT_GENERATIONS: "queued",
    Quota.GENERATIONS_PER_MINUTE: "refused_429",
    Quota.MAX_UPLOAD_BYTES: "refused_413",
}


async def list_plans(session: AsyncSession) -> list[Plan]:
    return list(await session.scalars(select(Plan).order_by(Plan.name)))


async def get_plan(session: AsyncSession, plan_id: UUID) -> Plan:
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise NotFound("No such plan.")
    return plan


async def create_plan(session: AsyncSession, body: PlanWrite) -> Plan:
    if await session.scalar(select(Plan.id).where(Plan.name == body.name)) is not None:
        raise Conflict(f"A plan named {body.name!r} exists already.")
    plan = Plan(**body.model_dump())
    await _make_default_alone(session, plan, body.is_default)
    session.add(plan)
    await session.commit()
    return plan


async def replace_plan(session: AsyncSession, plan_id: UUID, body: PlanWrite) -> Plan:
    plan = await get_plan(session, plan_id)
    taken = await session.scalar(select(Plan.id).where(Plan.name == body.name, Plan.id != plan_id))
    if taken is not None:
        raise Conflict(f"A plan named {body.name!r} exists already.")
    for name, value in body.model_dump().items():
        setattr(plan, name, value)
    await _make_default_alone(session, plan, body.is_default)
    await session.commit()
    return plan


async def delete_plan(session: AsyncSession, plan_id: UUID) -> None:
    plan = await get_plan(session, plan_id)
    with unscoped(session):
        subscribed = await session.scalar(select(func.count(Tenant.id)).where(Tenant.plan_id == plan_id))
    if subscribed:
        raise Conflict(f"{subscribed} tenant(s) are on plan {plan.name!r}; move them to another plan first.")
    await session.delete(plan)
    await session.commit()


async def _make_default_alone(session: AsyncSession, plan: Plan, is_default: bool) -> None:
    if is_default:
        await session.execute(update(Plan).where(Plan.is_default.is_(True)).values(is_default=False))
    plan.is_default = is_default


async def _tenant(session: AsyncSession, tenant_id: UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


async def set_tenant_quotas(session: AsyncSession, tenant_id: UUID, body: TenantQuotaWrite) -> QuotasOut:
    tenant = await _tenant(session, tenant_id)
    if "plan_id" in body.model_fields_set:
        if body.plan_id is not None:
            await get_plan(session, body.plan_id)
        tenant.plan_id = body.plan_id
    if "overrides" in body.model_fields_set:
        tenant.quota_overrides = {quota.value: limit for quota, limit in (body.overrides or {}).items()}
    await session.commit()
    return await tenant_quotas(session, tenant_id)


async def tenant_quotas(session: AsyncSession, tenant_id: UUID, now: datetime | None = None) -> QuotasOut:
    """Every quota of the tenant: its limit, what is used, what remains, and what happens at the limit."""
    now = now or datetime.now(UTC)
    tenant = await _tenant(session, tenant_id)
    limits = await limits_of(session, tenant)
    with unscoped(session):
        running_fine_tunes, running_generations = await usage.running(session, tenant_id)
        recent = await session.scalar(
            select(func.count(Generation.id)).where(
                Generation.tenant_id == tenant_id, Generation.created_at > now - RATE_WINDOW
            )
        )
        used: dict[Quota, float] = {
            Quota.GPU_SECONDS_PER_MONTH: await usage.gpu_seconds_this_month(session, tenant_id, now),
            Quota.STORAGE_BYTES: await usage.storage_in_use(session, tenant_id, now),
            Quota.MODELS: await usage.model_count(session, tenant_id),
            Quota.CONCURRENT_FINE_TUNES: running_fine_tunes,
            Quota.CONCURRENT_GENERATIONS: running_generations,
            Quota.GENERATIONS_PER_MINUTE: int(recent or 0),
            Quota.MAX_UPLOAD_BYTES: 0,
        }
    quotas = []
    for quota in Quota:
        limit = limits.of(quota)
        quotas.append(
            QuotaUse(
                quota=quota,
                limit=limit,
                used=used[quota],
                remaining=None if limit is None else max(0.0, limit - used[quota]),
                resets_at=next_month(now) if quota == Quota.GPU_SECONDS_PER_MONTH else None,
                when_reached=_WHEN_REACHED[quota],
            )
        )
    return QuotasOut(
        tenant_id=tenant.id,
        status=tenant.status,
        plan=limits.plan,
        overrides=dict(tenant.quota_overrides or {}),
        quotas=quotas,
    )


async def list_ledger(
    session: AsyncSession, tenant_id: UUID, page: PageRequest
) -> tuple[list[LedgerEntry], int]:
    """A tenant's ledger, newest first."""
    await _tenant(session, tenant_id)
    with unscoped(session):
        rows, total = await fetch_page(
            session,
            select(LedgerEntry)
            .where(LedgerEntry.tenant_id == tenant_id)
            .order_by(LedgerEntry.occurred_at.desc(), LedgerEntry.id.desc()),
            page,
        )
    return list(rows), total


async def list_notices(session: AsyncSession, page: PageRequest) -> tuple[list[QuotaNotice], int]:
    """The caller's tenant's quota notices, newest first (the session's tenant scopes them)."""
    rows, total = await fetch_page(
        session, select(QuotaNotice).order_by(QuotaNotice.created_at.desc(), QuotaNotice.id.desc()), page
    )
    return list(rows), total
