"""Writing the usage ledger: every charge and credit, in the transaction that measured it.

A charge is added in the same transaction as the lease update that measured it (a fine-tune's
heartbeat, release or end; a generation's end), so a charge exists exactly when the work's own
state moved; its ``key`` names that event (the work, the attempt and the instant), unique, so
the same event cannot be charged twice. GPU time also goes to the tenant's decayed usage for
fair share here, for fine-tunes and generations alike: one place charges GPU time.

The rule for failures (one rule, ``docs/billing.md``): a fine-tune that fails by the platform's
fault is credited back every GPU second charged to it so far (``credit_fine_tune``), one
negative entry dated when it failed; a generation that fails is never charged, since its
seconds are charged only when it ends succeeded or cancelled after rendering.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.jobs.models import TenantCompute
from service.jobs.scheduling import add_decayed
from service.quotas.notices import notice_gpu_use
from service.usage.models import Charge, LedgerEntry


def _key(charge: Charge, work_id: UUID, event: str) -> str:
    return f"{charge.value}:{work_id}:{event}"


def _instant(attempt: int, at: datetime) -> str:
    """A beat or an end of one attempt: no two of one lease share a microsecond."""
    return f"a{attempt}@{int(at.timestamp() * 1_000_000)}"


async def charge_gpu(
    session: AsyncSession,
    charge: Charge,
    *,
    tenant_id: UUID,
    work_id: UUID,
    attempt: int,
    seconds: float,
    at: datetime,
    half_life: float,
) -> None:
    """Charge GPU seconds measured at ``at`` to the ledger and to the tenant's fair-share usage."""
    if seconds <= 0:
        return
    session.add(
        LedgerEntry(
            tenant_id=tenant_id,
            key=_key(charge, work_id, _instant(attempt, at)),
            charge=charge,
            quantity=seconds,
            work_id=work_id,
            attempt=attempt,
            occurred_at=at,
        )
    )
    compute = await session.scalar(
        select(TenantCompute).where(TenantCompute.tenant_id == tenant_id).with_for_update()
    )
    if compute is None:
        compute = TenantCompute(tenant_id=tenant_id, recent_gpu_seconds=0.0, recent_at=at.timestamp())
        session.add(compute)
    compute.recent_gpu_seconds, compute.recent_at = add_decayed(
        compute.recent_gpu_seconds, compute.recent_at, seconds, at.timestamp(), half_life
    )
    await notice_gpu_use(session, tenant_id, at)


def charge_output(
    session: AsyncSession, *, tenant_id: UUID, generation_id: UUID, size: int, at: datetime
) -> None:
    """Charge a generation's stored outputs, once: a generation succeeds once."""
    session.add(
        LedgerEntry(
            tenant_id=tenant_id,
            key=_key(Charge.OUTPUT_BYTES, generation_id, "stored"),
            charge=Charge.OUTPUT_BYTES,
            quantity=float(size),
            work_id=generation_id,
            occurred_at=at,
        )
    )


async def credit_fine_tune(
    session: AsyncSession, *, tenant_id: UUID, job_id: UUID, attempt: int, at: datetime
) -> float:
    """Credit back every GPU second still charged to a fine-tune; returns the seconds credited.

    Reads the job's own entries, earlier credits included, so a job that fails by the
    platform's fault again after a resume is credited only what it was charged since.
    """
    charged = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.quantity), 0.0)).where(
            LedgerEntry.tenant_id == tenant_id,
            LedgerEntry.work_id == job_id,
            LedgerEntry.charge == Charge.FINE_TUNE_GPU_SECONDS,
        )
    )
    seconds = float(charged or 0.0)
    if seconds > 0:
        session.add(
            LedgerEntry(
                tenant_id=tenant_id,
                key=_key(Charge.FINE_TUNE_GPU_SECONDS, job_id, f"credit-a{attempt}"),
                charge=Charge.FINE_TUNE_GPU_SECONDS,
                quantity=-seconds,
                work_id=job_id,
                attempt=attempt,
                occurred_at=at,
            )
        )
    return seconds
