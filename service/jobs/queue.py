"""The database is the job queue: leases, heartbeats from the training loop, bounded retries.

A worker leases one job at a time. Candidates are each tenant's oldest waiting job that
fits the worker's free memory; the fair-share rule (``scheduling.pick_next``) chooses among
them, and the chosen row is then claimed with ``FOR UPDATE SKIP LOCKED`` (on SQLite, whose
writers are serialised, the conditional update alone gives the same guarantee): if another
worker holds it, the next choice is tried. A claimed job carries a lease that only
heartbeats extend; a lease that runs out puts the job back in the queue, to resume from its
last checkpoint elsewhere, until ``max_attempts`` leases have been lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import JobSettings
from core.work.status import WorkStatus
from service.db.tenancy import unscoped_session
from service.jobs.events import JOB_EVENTS
from service.jobs.models import FineTuneJob, JobEventType, TenantCompute
from service.jobs.scheduling import QueuedJob, TenantState, WorkerSlot, add_decayed, decayed_value, pick_next

# Work done in the transaction that ends a job; returns extra data for the final event.
Outcome = Callable[[AsyncSession, FineTuneJob], Awaitable[dict[str, Any]]]
# Claims that lose a race are retried with the next choice, a bounded number of times.
_CLAIM_TRIES = 5


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


class JobQueue:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: JobSettings) -> None:
        self.sessions = sessions
        self.settings = settings

    def _session(self) -> AsyncSession:
        return unscoped_session(self.sessions)  # the queue serves every tenant

    async def lease(self, worker_id: str, slot: WorkerSlot, now: datetime | None = None) -> Lease | None:
        now = now or _now()
        async with self._session() as session:
            try:
                await self._expire(session, now)
                await session.commit()
                passed_over: set[UUID] = set()
                for _ in range(_CLAIM_TRIES):
                    choice = await self._choose(session, slot, now, passed_over)
                    # The claim starts a transaction of its own with its write.
                    await session.rollback()
                    if choice is None:
                        return None
                    lease = await self._claim(session, choice, worker_id, now)
                    if lease is not None:
                        return lease
                    passed_over.add(choice.id)
            except OperationalError as exc:
                # SQLite refuses a write from a transaction whose snapshot another writer
                # has moved past; that is a lost race like any other: ask again next poll.
                if "locked" not in str(exc.orig):
                    raise
                await session.rollback()
        return None

    async def _choose(
        self, session: AsyncSession, slot: WorkerSlot, now: datetime, passed_over: set[UUID]
    ) -> QueuedJob | None:
        fitting = select(
            FineTuneJob.id,
            FineTuneJob.tenant_id,
            FineTuneJob.estimated_bytes,
            FineTuneJob.queued_at,
            func.row_number()
            .over(partition_by=FineTuneJob.tenant_id, order_by=(FineTuneJob.queued_at, FineTuneJob.id))
            .label("rank"),
        ).where(FineTuneJob.status == WorkStatus.QUEUED, FineTuneJob.estimated_bytes <= slot.free_bytes)
        if passed_over:
            fitting = fitting.where(FineTuneJob.id.not_in(passed_over))
        ranked = fitting.subquery()
        # Only a tenant's oldest fitting job can be its pick, so one candidate per tenant suffices.
        rows = (await session.execute(select(ranked).where(ranked.c.rank == 1))).all()
        if not rows:
            return None
        candidates = [QueuedJob(r.id, r.tenant_id, r.estimated_bytes, r.queued_at.timestamp()) for r in rows]
        tenants = await self._tenant_states(session, {c.tenant_id for c in candidates}, now)
        return pick_next(candidates, slot, tenants, now.timestamp())

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
                    concurrency_cap=compute.concurrency_cap if compute else None,
                )
            )
        return states

    async def _claim(
        self, session: AsyncSession, choice: QueuedJob, worker_id: str, now: datetime
    ) -> Lease | None:
        # SKIP LOCKED passes over a row another worker is claiming (PostgreSQL); the
        # conditional update is what guarantees one winner on every database.
        locked: UUID | None = choice.id
        if session.get_bind().dialect.name != "sqlite":  # SQLite has no row locks; its writers queue
            locked = await session.scalar(
                select(FineTuneJob.id)
                .where(FineTuneJob.id == choice.id, FineTuneJob.status == WorkStatus.QUEUED)
                .with_for_update(skip_locked=True)
            )
        claimed = False
        if locked is not None:
            result = await session.execute(
                update(FineTuneJob)
                .where(FineTuneJob.id == choice.id, FineTuneJob.status == WorkStatus.QUEUED)
                .values(
                    status=WorkStatus.RUNNING,
                    attempts=FineTuneJob.attempts + 1,
                    lease_owner=worker_id,
                    lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                    started_at=func.coalesce(FineTuneJob.started_at, now),
                )
                .execution_options(synchronize_session=False)
            )
            claimed = cast(CursorResult[Any], result).rowcount == 1
        if not claimed:
            await session.rollback()
            return None
        job = await session.get_one(FineTuneJob, choice.id, populate_existing=True)
        await JOB_EVENTS.record(
            session, job, "started", {"attempt": job.attempts, "worker": worker_id, "step": job.step}
        )
        await session.commit()
        return Lease(job.id, job.tenant_id, worker_id, job.attempts, job.estimated_bytes)

    async def _expire(self, session: AsyncSession, now: datetime) -> None:
        stale = (
            await session.scalars(
                select(FineTuneJob)
                .where(FineTuneJob.status == WorkStatus.RUNNING, FineTuneJob.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for job in stale:
            worker = job.lease_owner
            job.lease_owner = None
            job.lease_expires_at = None
            if job.attempts >= job.max_attempts:
                job.status = WorkStatus.FAILED
                job.finished_at = now
                job.failure_reason = (
                    f"The job's worker stopped responding {job.attempts} times (last on {worker}); "
                    "resume it to try again from its last checkpoint."
                )
                await JOB_EVENTS.record(session, job, "failed", {"reason": job.failure_reason})
            else:
                job.status = WorkStatus.QUEUED
                job.queued_at = now
                await JOB_EVENTS.record(
                    session, job, "requeued", {"reason": "lease expired", "worker": worker}
                )

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
            job = await self._held(session, lease)
            if job is None:
                return Beat(held=False, cancel=False)
            job.lease_expires_at = now + timedelta(seconds=self.settings.lease_seconds)
            if step is not None:  # None: a beat from before the first step
                job.step = step
            await self._charge(session, job, gpu_seconds, now)
            if data is not None:
                await JOB_EVENTS.record(session, job, "progress", {"step": step, **data})
            await session.commit()
            return Beat(held=True, cancel=job.cancel_requested)

    async def event(self, lease: Lease, type_: JobEventType, data: dict[str, Any]) -> bool:
        async with self._session() as session:
            job = await self._held(session, lease)
            if job is None:
                return False
            await JOB_EVENTS.record(session, job, type_, data)
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
            job = await self._held(session, lease)
            if job is None:
                return False
            await self._charge(session, job, gpu_seconds, now)
            if then is not None:
                data = {**(data or {}), **await then(session, job)}
            job.status = status
            job.finished_at = now
            job.lease_owner = None
            job.lease_expires_at = None
            job.failure_reason = reason
            final: JobEventType = cast(JobEventType, status.value)  # the final statuses are event types
            await JOB_EVENTS.record(
                session, job, final, {**(data or {}), **({"reason": reason} if reason else {})}
            )
            await session.commit()
            return True

    async def release(self, lease: Lease, *, gpu_seconds: float, now: datetime | None = None) -> bool:
        """Hand a job back without counting the attempt against it (a worker shutting down)."""
        now = now or _now()
        async with self._session() as session:
            job = await self._held(session, lease)
            if job is None:
                return False
            await self._charge(session, job, gpu_seconds, now)
            job.status = WorkStatus.QUEUED
            job.queued_at = now
            job.attempts -= 1
            job.lease_owner = None
            job.lease_expires_at = None
            await JOB_EVENTS.record(
                session, job, "requeued", {"reason": "worker shut down", "worker": lease.worker_id}
            )
            await session.commit()
            return True

    async def abandon(self, lease: Lease, now: datetime | None = None) -> None:
        """End a lease now because its worker process died: the attempt counts, as if it had expired."""
        async with self._session() as session:
            job = await self._held(session, lease)
            if job is not None:
                job.lease_expires_at = now or _now()
                await self._expire(session, job.lease_expires_at + timedelta(microseconds=1))
                await session.commit()

    async def _held(self, session: AsyncSession, lease: Lease) -> FineTuneJob | None:
        held: FineTuneJob | None = await session.scalar(
            select(FineTuneJob)
            .where(
                FineTuneJob.id == lease.job_id,
                FineTuneJob.status == WorkStatus.RUNNING,
                FineTuneJob.lease_owner == lease.worker_id,
                FineTuneJob.attempts == lease.attempt,
            )
            .with_for_update()
        )
        return held

    async def _charge(
        self, session: AsyncSession, job: FineTuneJob, gpu_seconds: float, now: datetime
    ) -> None:
        if gpu_seconds <= 0:
            return
        job.gpu_seconds += gpu_seconds
        compute = await session.scalar(
            select(TenantCompute).where(TenantCompute.tenant_id == job.tenant_id).with_for_update()
        )
        if compute is None:
            compute = TenantCompute(
                tenant_id=job.tenant_id, recent_gpu_seconds=0.0, recent_at=now.timestamp()
            )
            session.add(compute)
        compute.recent_gpu_seconds, compute.recent_at = add_decayed(
            compute.recent_gpu_seconds,
            compute.recent_at,
            gpu_seconds,
            now.timestamp(),
            self.settings.fair_share_half_life_seconds,
        )


__all__ = ["Beat", "JobQueue", "Lease", "Outcome"]
