"""The database is the job queue: fair-share choice, leases from ``core.work``, beats from training.

A worker leases one job at a time. Candidates are each tenant's oldest waiting job that
fits the worker's free memory; the fair-share rule (``scheduling.pick_next``) chooses among
them, and the core's conditional claim takes the chosen row: if another worker took it
first, the next choice is tried. Everything about the lease (claim, heartbeat, finish,
release, expiry, abandon, and their one answer to every race) is ``core.work.queue``'s;
this module adds the choice and the GPU time charged to the tenant's decayed usage.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import JobSettings
from core.work.queue import FINAL_EVENTS, WorkKind, WorkQueue, ignore_lost_race
from core.work.status import WorkStatus
from service.db.tenancy import unscoped_session
from service.jobs.events import JOB_EVENTS
from service.jobs.models import FineTuneJob, JobEventType, TenantCompute
from service.jobs.scheduling import (
    DEFAULT_STARVE_AFTER_SECONDS,
    QueuedJob,
    RunningJob,
    TenantState,
    WorkerSlot,
    decayed_value,
    pick_next,
)
from service.quotas.limits import limits_for
from service.usage import ledger
from service.usage.models import Charge

# Work done in the transaction that ends a job; returns extra data for the final event.
Outcome = Callable[[AsyncSession, FineTuneJob], Awaitable[dict[str, Any]]]
# Claims that lose a race are retried with the next choice, a bounded number of times.
_CLAIM_TRIES = 5
# Starving jobs considered for a worker's reservation (more than one: capped tenants are skipped).
_STARVING_CANDIDATES = 16

JOBS: WorkKind[FineTuneJob] = WorkKind(
    FineTuneJob, JOB_EVENTS.record, noun="job", retry_hint="resume it to try again from its last checkpoint"
)


@dataclass(frozen=True, slots=True)
class Lease:
    job_id: UUID
    tenant_id: UUID
    worker_id: str
    attempt: int
    estimated_bytes: int


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat learns: whether the lease still holds, and whether to stop."""

    held: bool
    cancel: bool


def _now() -> datetime:
    return datetime.now(UTC)


def _tighter(*caps: int | None) -> int | None:
    """The scheduling cap an admin set and the plan's concurrent fine-tunes: the lower binds."""
    set_caps = [cap for cap in caps if cap is not None]
    return min(set_caps) if set_caps else None


class JobQueue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: JobSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.work = WorkQueue(JOBS, settings.lease_seconds)

    def _session(self) -> AsyncSession:
        return unscoped_session(self.sessions)  # the queue serves every tenant

    async def lease(self, worker_id: str, slot: WorkerSlot, now: datetime | None = None) -> Lease | None:
        now = now or _now()
        async with self._session() as session, ignore_lost_race(session):  # lost: ask again next poll
            await self.work.expire(session, now)
            await session.commit()
            passed_over: set[UUID] = set()
            for _ in range(_CLAIM_TRIES):
                choice = await self._choose(session, worker_id, slot, now, passed_over)
                # The claim starts a transaction of its own with its write.
                await session.rollback()
                if choice is None:
                    return None
                lease = await self._claim(session, choice, worker_id, now)
                if lease is not None:
                    return lease
                passed_over.add(choice.id)
        return None

    async def _choose(
        self, session: AsyncSession, worker_id: str, slot: WorkerSlot, now: datetime, passed_over: set[UUID]
    ) -> QueuedJob | None:
        queued = FineTuneJob.status == WorkStatus.QUEUED
        if passed_over:
            queued = queued & FineTuneJob.id.not_in(passed_over)
        columns = (FineTuneJob.id, FineTuneJob.tenant_id, FineTuneJob.estimated_bytes, FineTuneJob.queued_at)
        # Only a tenant's oldest fitting job can be its pick, so one candidate per tenant
        # suffices; for the reservation, also its oldest job that fits the whole worker, and
        # the oldest starving jobs that do (see ``scheduling``).
        limits = [slot.free_bytes]
        if slot.total_bytes is not None and slot.total_bytes > slot.free_bytes:
            limits.append(slot.total_bytes)
        rows: dict[UUID, Any] = {}
        for limit in limits:
            ranked = (
                select(
                    *columns,
                    func.row_number()
                    .over(
                        partition_by=FineTuneJob.tenant_id, order_by=(FineTuneJob.queued_at, FineTuneJob.id)
                    )
                    .label("rank"),
                )
                .where(queued, FineTuneJob.estimated_bytes <= limit)
                .subquery()
            )
            rows.update((r.id, r) for r in await session.execute(select(ranked).where(ranked.c.rank == 1)))
        if len(limits) > 1 and math.isfinite(DEFAULT_STARVE_AFTER_SECONDS):
            starving = datetime.fromtimestamp(now.timestamp() - DEFAULT_STARVE_AFTER_SECONDS, UTC)
            oldest = (
                select(*columns)
                .where(queued, FineTuneJob.estimated_bytes <= limits[1], FineTuneJob.queued_at <= starving)
                .order_by(FineTuneJob.queued_at, FineTuneJob.id)
                .limit(_STARVING_CANDIDATES)
            )
            rows.update((r.id, r) for r in await session.execute(oldest))
        if not rows:
            return None
        candidates = [
            QueuedJob(r.id, r.tenant_id, r.estimated_bytes, r.queued_at.timestamp()) for r in rows.values()
        ]
        tenants = await self._tenant_states(session, {c.tenant_id for c in candidates}, now)
        if len(limits) > 1:
            slot = WorkerSlot(
                slot.free_bytes, slot.total_bytes, await self._running_on(session, worker_id, now)
            )
        return pick_next(candidates, slot, tenants, now.timestamp())

    async def _running_on(
        self, session: AsyncSession, worker_id: str, now: datetime
    ) -> tuple[RunningJob, ...]:
        """The worker's running jobs, each expected to end at its step rate so far (unknown before a step)."""
        rows = await session.execute(
            select(
                FineTuneJob.estimated_bytes, FineTuneJob.started_at, FineTuneJob.step, FineTuneJob.total_steps
            ).where(FineTuneJob.status == WorkStatus.RUNNING, FineTuneJob.lease_owner == worker_id)
        )
        running = []
        for size, started, step, total_steps in rows.tuples():
            end = None
            if started is not None and step > 0:
                elapsed = now.timestamp() - started.timestamp()
                end = started.timestamp() + elapsed * max(total_steps, step) / step
            running.append(RunningJob(size, end))
        return tuple(running)

    async def _tenant_states(
        self, session: AsyncSession, tenant_ids: set[UUID], now: datetime
    ) -> list[TenantState]:
        running = dict(
            (
                await session.execute(
                    select(FineTuneJob.tenant_id, func.count(FineTuneJob.id))
                    .where(FineTuneJob.status == WorkStatus.RUNNING, FineTuneJob.tenant_id.in_(tenant_ids))
                    .group_by(FineTuneJob.tenant_id)
                )
            )
            .tuples()
            .all()
        )
        computes = {
            c.tenant_id: c
            for c in await session.scalars(
                select(TenantCompute).where(TenantCompute.tenant_id.in_(tenant_ids))
            )
        }
        half_life = self.settings.fair_share_half_life_seconds
        plans = await limits_for(session, tenant_ids)
        states = []
        for tenant_id in tenant_ids:
            compute = computes.get(tenant_id)
            usage = (
                decayed_value(compute.recent_gpu_seconds, compute.recent_at, now.timestamp(), half_life)
                if compute
                else 0.0
            )
            states.append(
                TenantState(
                    tenant_id,
                    recent_gpu_seconds=usage,
                    weight=compute.weight if compute else 1.0,
                    running=running.get(tenant_id, 0),
                    concurrency_cap=_tighter(
                        compute.concurrency_cap if compute else None,
                        plans[tenant_id].concurrent_fine_tunes if tenant_id in plans else None,
                    ),
                )
            )
        return states

    async def _claim(
        self, session: AsyncSession, choice: QueuedJob, worker_id: str, now: datetime
    ) -> Lease | None:
        claimed = await self.work.claim(session, worker_id, [choice.id], now)
        if not claimed:
            await session.rollback()
            return None
        (job,) = claimed
        await JOB_EVENTS.record(
            session, job, "started", {"attempt": job.attempts, "worker": worker_id, "step": job.step}
        )
        await session.commit()
        return Lease(job.id, job.tenant_id, worker_id, job.attempts, job.estimated_bytes)

    async def heartbeat(
        self,
        lease: Lease,
        *,
        step: int | None,
        gpu_seconds: float,
        data: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Beat:
        """Extend the lease and charge GPU time used since the last beat; ``data`` makes a progress event."""
        now = now or _now()
        async with self._session() as session:
            progress = {} if step is None else {"step": step}  # None: a beat from before the first step
            held = await self.work.heartbeat(
                session,
                lease.worker_id,
                [lease.job_id],
                now,
                attempt=lease.attempt,
                **progress,
                **self._charged(gpu_seconds),
            )
            if not held:
                return Beat(held=False, cancel=False)
            (job,) = held
            await self._charge(session, lease, gpu_seconds, now)
            if data is not None:
                await JOB_EVENTS.record(session, job, "progress", {"step": step, **data})
            await session.commit()
            return Beat(held=True, cancel=job.cancel_requested)

    async def event(self, lease: Lease, type_: JobEventType, data: dict[str, Any]) -> bool:
        async with self._session() as session:
            held = await self.work.update_held(
                session, lease.worker_id, [lease.job_id], attempt=lease.attempt
            )
            if not held:
                return False
            await JOB_EVENTS.record(session, held[0], type_, data)
            await session.commit()
            return True

    async def finish(
        self,
        lease: Lease,
        status: WorkStatus,
        *,
        gpu_seconds: float,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
        then: Outcome | None = None,
        now: datetime | None = None,
    ) -> bool:
        """End the job (succeeded, failed or cancelled), charging the GPU time since the last beat.

        ``then`` runs in the same transaction (a success makes its model version there) and
        returns more data for the final event.
        """
        now = now or _now()
        async with self._session() as session:
            ended = await self.work.finish(
                session,
                lease.worker_id,
                [lease.job_id],
                status,
                now,
                gpu_seconds=gpu_seconds,
                reason=reason,
                attempt=lease.attempt,
            )
            if not ended:
                return False
            (job,) = ended
            await self._charge(session, lease, gpu_seconds, now)
            if then is not None:
                data = {**(data or {}), **await then(session, job)}
            final: JobEventType = FINAL_EVENTS[status]
            await JOB_EVENTS.record(
                session, job, final, {**(data or {}), **({"reason": reason} if reason else {})}
            )
            await session.commit()
            return True

    async def release(self, lease: Lease, *, gpu_seconds: float, now: datetime | None = None) -> bool:
        """Hand a job back without counting the attempt against it (a worker shutting down).

        A job whose cancel was requested ends cancelled instead.
        """
        now = now or _now()
        async with self._session() as session:
            released = await self.work.release(
                session,
                lease.worker_id,
                [lease.job_id],
                now,
                attempt=lease.attempt,
                **self._charged(gpu_seconds),
            )
            if not released:
                return False
            await self._charge(session, lease, gpu_seconds, now)
            await session.commit()
            return True

    async def abandon(self, lease: Lease, now: datetime | None = None) -> None:
        """End a lease now because its worker process died: the attempt counts, as if it had expired."""
        async with self._session() as session:
            await self.work.abandon(
                session, lease.worker_id, now or _now(), ids=[lease.job_id], attempt=lease.attempt
            )
            await session.commit()

    async def abandon_owner(self, worker_id: str, now: datetime | None = None) -> None:
        """End now every lease ``worker_id`` holds: a worker restarting under its old name."""
        async with self._session() as session:
            await self.work.abandon(session, worker_id, now or _now())
            await session.commit()

    @staticmethod
    def _charged(gpu_seconds: float) -> dict[str, Any]:
        return {"gpu_seconds": FineTuneJob.gpu_seconds + gpu_seconds} if gpu_seconds > 0 else {}

    async def _charge(self, session: AsyncSession, lease: Lease, gpu_seconds: float, now: datetime) -> None:
        """Charge GPU time to the ledger and fair share (the job's own total is in its update)."""
        await ledger.charge_gpu(
            session,
            Charge.FINE_TUNE_GPU_SECONDS,
            tenant_id=lease.tenant_id,
            work_id=lease.job_id,
            attempt=lease.attempt,
            seconds=gpu_seconds,
            at=now,
            half_life=self.settings.fair_share_half_life_seconds,
        )


__all__ = ["JOBS", "Beat", "JobQueue", "Lease", "Outcome"]
