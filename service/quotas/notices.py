"""Notices that an allowance is nearly used up (80 %) or used up (100 %), once a month each.

They are recorded where use grows, in the transaction that grows it: every GPU charge (a
fine-tune's heartbeat, a generation's end) and every admission of new work (GPU time,
storage with the upload's declared size, models). So running work that crosses a level
is noticed at its next heartbeat, and a tenant hears of it once per level and month by the
API (``GET /v1/quotas/notices``) and webhooks (``quota.warning``, ``quota.exhausted``).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from service.db.inserts import insert_ignoring_duplicates
from service.quotas.limits import Quota, limits_for, next_month
from service.quotas.models import QuotaNotice
from service.quotas.usage import gpu_seconds_this_month

# Percent of a limit, and the notice's type, from the higher level down.
LEVELS = ((100, "exhausted"), (80, "warning"))


async def notice_use(
    session: AsyncSession, tenant_id: UUID, quota: Quota, used: float, limit: int | None, now: datetime
) -> None:
    """Record the notices ``used`` of ``limit`` calls for that this month has not had yet."""
    if limit is None:
        return
    share = used / limit if limit else 1.0  # a limit of 0 is used up from the start
    rows = [
        {
            "tenant_id": tenant_id,
            "type": kind,
            "quota": quota.value,
            "level": level,
            "period": f"{now:%Y-%m}",
            "data": {
                "quota": quota.value,
                "level": level,
                "limit": limit,
                "used": used,
                "resets_at": next_month(now).isoformat() if quota == Quota.GPU_SECONDS_PER_MONTH else None,
            },
        }
        for level, kind in LEVELS
        if share * 100 >= level
    ]
    if rows:
        await session.execute(
            insert_ignoring_duplicates(session, QuotaNotice, ["tenant_id", "quota", "level", "period"]), rows
        )


async def notice_gpu_use(session: AsyncSession, tenant_id: UUID, now: datetime) -> None:
    """After a GPU charge: this month's GPU seconds against the tenant's limit."""
    limit = (await limits_for(session, [tenant_id]))[tenant_id].gpu_seconds_per_month
    if limit is not None:
        used = await gpu_seconds_this_month(session, tenant_id, now)
        await notice_use(session, tenant_id, Quota.GPU_SECONDS_PER_MONTH, used, limit, now)
