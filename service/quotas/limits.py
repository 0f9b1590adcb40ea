"""Which limits bind a tenant: its plan's (or the default plan's), overlaid by an admin's overrides."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts.models import Tenant
from service.db.tenancy import unscoped
from service.quotas.models import Plan


class Quota(enum.StrEnum):
    """Every quota by name: the names plans, overrides and problem details use."""

    GPU_SECONDS_PER_MONTH = "gpu_seconds_per_month"
    STORAGE_BYTES = "storage_bytes"
    MODELS = "models"
    CONCURRENT_FINE_TUNES = "concurrent_fine_tunes"
    CONCURRENT_GENERATIONS = "concurrent_generations"
    GENERATIONS_PER_MINUTE = "generations_per_minute"
    MAX_UPLOAD_BYTES = "max_upload_bytes"


@dataclass(frozen=True, slots=True)
class Limits:
    """One tenant's limits; None is unlimited. Field names are the ``Quota`` names."""

    plan: str | None
    gpu_seconds_per_month: int | None = None
    storage_bytes: int | None = None
    models: int | None = None
    concurrent_fine_tunes: int | None = None
    concurrent_generations: int | None = None
    generations_per_minute: int | None = None
    max_upload_bytes: int | None = None

    def of(self, quota: Quota) -> int | None:
        limit: int | None = getattr(self, quota.value)
        return limit


def plan_limits(plan: Plan | None) -> dict[str, int | None]:
    return {quota.value: (getattr(plan, quota.value) if plan else None) for quota in Quota}


def overlay(plan: Plan | None, overrides: Mapping[str, int | None]) -> Limits:
    """The plan's limits with the tenant's overrides on top (an override of null is unlimited)."""
    values = plan_limits(plan)
    values.update({name: value for name, value in overrides.items() if name in values})
    return Limits(plan=plan.name if plan else None, **values)


async def default_plan(session: AsyncSession) -> Plan | None:
    plan: Plan | None = await session.scalar(select(Plan).where(Plan.is_default.is_(True)).limit(1))
    return plan


async def limits_of(session: AsyncSession, tenant: Tenant) -> Limits:
    plan = await session.get(Plan, tenant.plan_id) if tenant.plan_id else await default_plan(session)
    return overlay(plan, tenant.quota_overrides or {})


async def limits_for(session: AsyncSession, tenant_ids: Iterable[UUID]) -> dict[UUID, Limits]:
    """Several tenants' limits in two queries (the scheduler asks for every candidate's)."""
    ids = set(tenant_ids)
    if not ids:
        return {}
    with unscoped(session):
        tenants = (await session.scalars(select(Tenant).where(Tenant.id.in_(ids)))).all()
        plans = {plan.id: plan for plan in await session.scalars(select(Plan))}
    fallback = next((plan for plan in plans.values() if plan.is_default), None)
    return {
        tenant.id: overlay(
            plans.get(tenant.plan_id) if tenant.plan_id else fallback, tenant.quota_overrides or {}
        )
        for tenant in tenants
    }


def month_start(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def next_month(now: datetime) -> datetime:
    """When monthly allowances reset: the first instant of the next UTC month."""
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
