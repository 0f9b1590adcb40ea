"""Admission: the one place new work is checked against the tenant's quotas, race-safe.

Every request that starts something (a fine-tune, a generation, an upload) calls ``admit``
inside the transaction that will create it, before it writes anything else of its own. The
first thing ``admit`` does is a write to the tenant's row (``Tenant.admissions``): on
PostgreSQL that row lock queues the tenant's other admissions until this transaction ends,
and on SQLite the write takes the database's write lock; either way the figures read next
include every admission that committed before, and no other can commit until this one has.
So 50 parallel requests against 3 remaining admit exactly 3.

Allowances (GPU seconds this month, storage, models) refuse with 402 naming the quota, its
limit, what is used and when it resets, and an admission that takes one to 80 % or 100 %
records a notice (``notices.py``); the rate of generations with 429 and ``Retry-After``;
a past-due tenant with 402. Concurrency caps do not refuse: work beyond them waits in the
queue (``docs/billing.md``). Work already running is never stopped for a quota: it finishes
and its overrun is charged like any other second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound, PayloadTooLarge, PaymentRequired, QuotaExceeded, RateLimited
from service.accounts.models import Tenant, TenantStatus
from service.generations.models import Generation
from service.quotas.limits import Limits, Quota, limits_of, next_month
from service.quotas.notices import notice_use
from service.quotas.usage import gpu_seconds_this_month, model_count, storage_in_use

RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request would start."""

    gpu_work: bool = False  # a fine-tune or a generation: needs GPU seconds and room for results
    generation: bool = False
    upload_bytes: int | None = None


async def admit(session: AsyncSession, tenant_id: UUID, ask: Ask, now: datetime | None = None) -> Limits:
    """Refuse ``ask`` if it would break a quota; otherwise return the limits it was admitted under.

    Leaves the tenant's row locked until the caller's transaction ends (see the module's docstring).
    """
    now = now or datetime.now(UTC)
    tenant = await _lock(session, tenant_id)
    if tenant.status == TenantStatus.PAST_DUE:
        raise PaymentRequired(
            "This tenant's payment is past due: nothing new can start until billing is settled "
            "(the billing portal is linked from GET /v1/billing)."
        )
    limits = await limits_of(session, tenant)
    if ask.upload_bytes is not None:
        _check_upload_size(limits, ask.upload_bytes)
    if ask.gpu_work:
        await _check_gpu(session, tenant_id, limits, now)
    if ask.gpu_work or ask.upload_bytes is not None:
        await _check_storage(session, tenant_id, limits, ask.upload_bytes or 0, now)
    if ask.generation:
        await _check_rate(session, tenant_id, limits, now)
    return limits


async def _lock(session: AsyncSession, tenant_id: UUID) -> Tenant:
    bumped = await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(admissions=Tenant.admissions + 1)
        .execution_options(synchronize_session=False)
    )
    tenant = await session.scalar(
        select(Tenant).where(Tenant.id == tenant_id).execution_options(populate_existing=True)
    )
    if not bumped.rowcount or tenant is None:  # type: ignore[attr-defined]
        raise NotFound("No such tenant.")
    return tenant


def _refuse(
    quota: Quota, limit: int, used: float, detail: str, resets_at: datetime | None = None
) -> QuotaExceeded:
    return QuotaExceeded(
        detail,
        quota=quota.value,
        limit=limit,
        used=used,
        resets_at=resets_at.isoformat() if resets_at else None,
    )


def _check_upload_size(limits: Limits, size: int) -> None:
    limit = limits.max_upload_bytes
    if limit is not None and size > limit:
        raise PayloadTooLarge(
            f"Your plan takes files of at most {limit} bytes; this one is {size} bytes.",
            quota=Quota.MAX_UPLOAD_BYTES.value,
            limit=limit,
            used=size,
        )


async def _check_gpu(session: AsyncSession, tenant_id: UUID, limits: Limits, now: datetime) -> None:
    limit = limits.gpu_seconds_per_month
    if limit is None:
        return
    used = await gpu_seconds_this_month(session, tenant_id, now)
    if used >= limit:
        resets = next_month(now)
        raise _refuse(
            Quota.GPU_SECONDS_PER_MONTH,
            limit,
            used,
            f"This month's {limit} GPU seconds are used ({used:.0f}); new work can start again on "
            f"{resets:%Y-%m-%d} (UTC) or when the plan grows.",
            resets,
        )
    await notice_use(session, tenant_id, Quota.GPU_SECONDS_PER_MONTH, used, limit, now)


async def _check_storage(
    session: AsyncSession, tenant_id: UUID, limits: Limits, adding: int, now: datetime
) -> None:
    limit = limits.storage_bytes
    if limit is None:
        return
    used = await storage_in_use(session, tenant_id, now)
    # New work needs some room for its results; an upload needs room for all of itself.
    if used + adding > limit or (adding == 0 and used >= limit):
        wanted = f" and this upload needs {adding} more" if adding else ""
        raise _refuse(
            Quota.STORAGE_BYTES,
            limit,
            used,
            f"Storage is limited to {limit} bytes; {used} are in use or reserved by open uploads{wanted}. "
            "Delete footage, models or outputs, or grow the plan.",
        )
    await notice_use(session, tenant_id, Quota.STORAGE_BYTES, used + adding, limit, now)


async def admit_new_model(
    session: AsyncSession, tenant_id: UUID, limits: Limits, now: datetime | None = None
) -> None:
    """Refuse a new model beyond the plan's count; call after ``admit``, before adding the model."""
    limit = limits.models
    if limit is None:
        return
    used = await model_count(session, tenant_id)
    if used >= limit:
        raise _refuse(
            Quota.MODELS,
            limit,
            used,
            f"Your plan holds at most {limit} models and you have {used}; add a version to an existing "
            "model (model_id), delete one, or grow the plan.",
        )
    await notice_use(session, tenant_id, Quota.MODELS, used + 1, limit, now or datetime.now(UTC))


async def _check_rate(session: AsyncSession, tenant_id: UUID, limits: Limits, now: datetime) -> None:
    limit = limits.generations_per_minute
    if limit is None:
        return
    since = now - RATE_WINDOW
    recent = (
        await session.execute(
            select(func.count(), func.min(Generation.created_at)).where(
                Generation.tenant_id == tenant_id, Generation.created_at > since
            )
        )
    ).one()
    count, oldest = int(recent[0]), recent[1]
    if count >= limit:
        window = RATE_WINDOW.total_seconds()
        wait = (oldest + RATE_WINDOW - now).total_seconds() if oldest else window
        # ``now`` was read before this request waited for the tenant's lock, so the oldest row
        # counted may be newer than it; no one ever waits longer than the window.
        retry_after = max(1, min(math.ceil(wait), math.ceil(window)))
        raise RateLimited(
            f"At most {limit} generations may be requested per minute; try again in {retry_after} s.",
            retry_after=retry_after,
            quota=Quota.GENERATIONS_PER_MINUTE.value,
            limit=limit,
            used=count,
        )
