"""Platform-wide views for admins. Every function here works across tenants on purpose."""

from __future__ import annotations

import time
from datetime import date
from uuid import UUID

from sqlalchemy import Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from service.accounts.models import Membership, Tenant, TenantStatus, User
from service.admin.schemas import TenantComputeOut, TenantComputeWrite, TenantSummary, UserOut
from service.db.pagination import PageRequest, fetch_page, page_of
from service.db.tenancy import unscoped
from service.jobs.models import TenantCompute
from service.uploads.models import Asset
from service.usage import service as usage
from service.usage.schemas import UsageOut


def _summaries() -> Select[tuple[Tenant, int, int, int]]:
    members = select(func.count()).where(Membership.tenant_id == Tenant.id).scalar_subquery()
    assets = select(func.count()).where(Asset.tenant_id == Tenant.id).scalar_subquery()
    stored = (
        select(func.coalesce(func.sum(Asset.size), 0)).where(Asset.tenant_id == Tenant.id).scalar_subquery()
    )
    return select(Tenant, members, assets, stored)


def _summary(row: tuple[Tenant, int, int, int]) -> TenantSummary:
    tenant, members, assets, stored = row
    return TenantSummary(
        id=tenant.id,
        name=tenant.name,
        status=tenant.status,
        created_at=tenant.created_at,
        members=members,
        assets=assets,
        storage_bytes=int(stored),
    )


async def list_tenants(
    session: AsyncSession, page: PageRequest, search: str | None = None
) -> tuple[list[TenantSummary], int]:
    """Tenants, oldest first; ``search`` keeps those whose name contains it, in any case."""
    named = func.lower(Tenant.name).contains(search.lower(), autoescape=True) if search else true()
    with unscoped(session):
        total = int(await session.scalar(select(func.count(Tenant.id)).where(named)) or 0)
        rows = (
            await session.execute(
                await page_of(session, _summaries().where(named).order_by(Tenant.created_at), page)
            )
        ).all()
    return [_summary(row._tuple()) for row in rows], total


async def get_tenant(session: AsyncSession, tenant_id: UUID) -> TenantSummary:
    with unscoped(session):
        row = (await session.execute(_summaries().where(Tenant.id == tenant_id))).one_or_none()
    if row is None:
        raise NotFound("No such tenant.")
    return _summary(row._tuple())


async def set_tenant_status(session: AsyncSession, tenant_id: UUID, status: TenantStatus) -> TenantSummary:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    tenant.status = status
    await session.commit()
    return await get_tenant(session, tenant_id)


async def get_usage(session: AsyncSession, tenant_id: UUID, period: usage.Period, today: date) -> UsageOut:
    """Any tenant's usage, by the same queries its members' ``GET /v1/usage`` runs."""
    if await session.get(Tenant, tenant_id) is None:
        raise NotFound("No such tenant.")
    with unscoped(session):
        return await usage.tenant_usage(session, tenant_id, period, today)


async def list_users(session: AsyncSession, page: PageRequest) -> tuple[list[UserOut], int]:
    rows, total = await fetch_page(session, select(User).order_by(User.created_at), page)
    return [UserOut.model_validate(u) for u in rows], total


async def get_compute(session: AsyncSession, tenant_id: UUID) -> TenantComputeOut:
    await get_tenant(session, tenant_id)
    compute = await session.scalar(select(TenantCompute).where(TenantCompute.tenant_id == tenant_id))
    if compute is None:
        return TenantComputeOut(tenant_id=tenant_id, weight=1.0, concurrency_cap=None, recent_gpu_seconds=0.0)
    return TenantComputeOut.model_validate(compute)


async def set_compute(session: AsyncSession, tenant_id: UUID, body: TenantComputeWrite) -> TenantComputeOut:
    """Weight and cap take effect at the next lease any worker makes."""
    await get_tenant(session, tenant_id)
    compute = await session.scalar(
        select(TenantCompute).where(TenantCompute.tenant_id == tenant_id).with_for_update()
    )
    if compute is None:
        compute = TenantCompute(tenant_id=tenant_id, recent_gpu_seconds=0.0, recent_at=time.time())
        session.add(compute)
    compute.weight = body.weight
    compute.concurrency_cap = body.concurrency_cap
    await session.commit()
    return TenantComputeOut.model_validate(compute)
