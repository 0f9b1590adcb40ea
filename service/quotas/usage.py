"""What a tenant uses of each quota now, as admission and the quota views read it.

GPU seconds come from the usage ledger (charges less credits since the month began); storage
is what the tenant's rows say it stores plus what its open uploads have reserved; models and
concurrency are counted from their rows. Every query names the tenant explicitly, so an
admin's unscoped session reads the same figures a member's does.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from core.work.status import WorkStatus
from service.db.tenancy import unscoped
from service.generations.models import Generation
from service.jobs.models import FineTuneJob
from service.models.models import Model, ModelVersion
from service.quotas.limits import month_start
from service.uploads.models import Asset, UploadSession, UploadStatus
from service.usage.models import GPU_CHARGES, LedgerEntry


async def gpu_seconds_this_month(session: AsyncSession, tenant_id: UUID, now: datetime) -> float:
    return (await gpu_seconds_this_month_of(session, [tenant_id], now))[tenant_id]


async def gpu_seconds_this_month_of(
    session: AsyncSession, tenant_ids: Collection[UUID], now: datetime
) -> dict[UUID, float]:
    """The GPU seconds each tenant was charged this calendar month (UTC), in one query; it
    names its tenants, so an admin's session reads them across tenants as a member's does."""
    with unscoped(session):
        rows = await session.execute(
            select(LedgerEntry.tenant_id, func.sum(LedgerEntry.quantity))
            .where(
                LedgerEntry.tenant_id.in_(tenant_ids),
                LedgerEntry.charge.in_(GPU_CHARGES),
                LedgerEntry.occurred_at >= month_start(now),
            )
            .group_by(LedgerEntry.tenant_id)
        )
    used = {tenant_id: float(seconds or 0.0) for tenant_id, seconds in rows.tuples()}
    return {tenant_id: used.get(tenant_id, 0.0) for tenant_id in tenant_ids}


def _sum(column: QueryableAttribute[int] | QueryableAttribute[int | None]) -> ColumnElement[int]:
    return func.coalesce(func.sum(column), 0)


async def storage_in_use(session: AsyncSession, tenant_id: UUID, now: datetime) -> int:
    """Stored footage, adapters and outputs, and the declared size of every live upload."""
    row = (
        await session.execute(
            select(
                select(_sum(Asset.size)).where(Asset.tenant_id == tenant_id).scalar_subquery(),
                select(_sum(ModelVersion.adapter_bytes))
                .where(ModelVersion.tenant_id == tenant_id)
                .scalar_subquery(),
                select(_sum(Generation.output_bytes))
                .where(Generation.tenant_id == tenant_id, Generation.status == WorkStatus.SUCCEEDED)
                .scalar_subquery(),
                select(_sum(UploadSession.size))
                .where(
                    UploadSession.tenant_id == tenant_id,
                    # A failed upload's objects are gone; its row stays only to say why.
                    UploadSession.status.not_in((UploadStatus.COMPLETED, UploadStatus.FAILED)),
                    UploadSession.expires_at > now,
                )
                .scalar_subquery(),
            )
        )
    ).one()
    return sum(int(n or 0) for n in row)


async def model_count(session: AsyncSession, tenant_id: UUID) -> int:
    return int(await session.scalar(select(func.count(Model.id)).where(Model.tenant_id == tenant_id)) or 0)


async def running(session: AsyncSession, tenant_id: UUID) -> tuple[int, int]:
    """Fine-tunes and generations of the tenant running now."""
    counts = []
    for work in (FineTuneJob, Generation):
        counts.append(
            int(
                await session.scalar(
                    select(func.count(work.id)).where(
                        work.tenant_id == tenant_id, work.status == WorkStatus.RUNNING
                    )
                )
                or 0
            )
        )
    return counts[0], counts[1]
