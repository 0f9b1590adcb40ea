"""The database is the generation queue: compatible batches, fair across tenants, with leases.

A worker claims a batch. The oldest queued generation for the bases it serves fixes what
the batch can hold: one base, one shape and one number of steps, with classifier-free
guidance on for all or off for all, since a batch is one tensor through one denoising loop.
Compatible generations fill the rest in turns over tenants, each tenant's oldest first, so
one tenant's flood cannot fill every batch. The claim is one conditional update (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), so two workers never claim
the same generation. Everything about the leases (the claim itself, heartbeats, finishes,
release, expiry, abandon, and their one answer to every race) is ``core.work.queue``'s; this
module adds the batching and the generations orphaned by a deleted model. Every change of
state appends a numbered event in the same transaction.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import GenerationSettings
from core.work.queue import FINAL_EVENTS, SHUT_DOWN, WorkKind, WorkQueue, ignore_lost_race
from core.work.status import WorkStatus
from service.db.tenancy import unscoped_session
from service.generations.events import GENERATION_EVENTS
from service.generations.models import Generation
from service.generations.schemas import output_paths
from service.jobs.scheduling import DEFAULT_HALF_LIFE_SECONDS
from service.models.models import ModelVersion
from service.quotas.limits import limits_for
from service.usage import ledger
from service.usage.models import Charge

# How many of the oldest queued generations a claim considers when it fills a batch.
_WINDOW = 200
# Claims that lose every generation they chose to another worker look again, a bounded number of times.
_CLAIM_TRIES = 3

GENERATIONS: WorkKind[Generation] = WorkKind(
    Generation, GENERATION_EVENTS.record, noun="generation", retry_hint="request it again to retry"
)

# What generations must share to be rendered together: base, width, height, frames, steps,
# and whether classifier-free guidance is on (which doubles the batch inside the pipeline).
BatchKey = tuple[str, int, int, int, int, bool]


def batch_key(base_id: str, width: int, height: int, frames: int, steps: int, guidance: float) -> BatchKey:
    return (base_id, width, height, frames, steps, guidance > 1.0)


@dataclass(frozen=True, slots=True)
class Waiting:
    """A queued generation as batching sees it."""

    id: UUID
    tenant_id: UUID
    key: BatchKey


def pick_batch(waiting: Sequence[Waiting], max_batch: int) -> list[UUID]:
    """Up to ``max_batch`` generations compatible with the oldest, taken in turns over tenants.

    ``waiting`` is oldest first; tenants take turns in the order of their oldest compatible
    generation, so the oldest generation of all is always in the batch.
    """
    if not waiting:
        return []
    head = waiting[0].key
    lines: dict[UUID, deque[UUID]] = {}
    for item in waiting:
        if item.key == head:
            lines.setdefault(item.tenant_id, deque()).append(item.id)
    batch: list[UUID] = []
    while lines and len(batch) < max_batch:
        for tenant_id in list(lines):
            batch.append(lines[tenant_id].popleft())
            if not lines[tenant_id]:
                del lines[tenant_id]
            if len(batch) == max_batch:
                break
    return batch


@dataclass(frozen=True, slots=True)
class ClaimedGeneration:
    """One generation of a claimed batch: everything a worker needs to render it."""

    id: UUID
    tenant_id: UUID
    model_id: UUID | None
    model_version_id: UUID
    model_version: int  # its number, for the video's content credentials
    base_id: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    frames: int
    steps: int
    guidance: float
    seed: int
    adapter_strength: float
    attempt: int


def _now() -> datetime:
    return datetime.now(UTC)


class GenerationQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: GenerationSettings,
        *,
        fair_share_half_life: float = DEFAULT_HALF_LIFE_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        # Generations count toward a tenant's fair share of fine-tune scheduling too.
        self.fair_share_half_life = fair_share_half_life
        self.work = WorkQueue(GENERATIONS, settings.lease_seconds)

    def _session(self) -> AsyncSession:
        return unscoped_session(self.sessions)  # the queue serves every tenant

    async def claim_batch(
        self, worker_id: str, base_ids: Collection[str], max_batch: int, now: datetime | None = None
    ) -> list[ClaimedGeneration]:
        """Claim a batch of compatible generations on these bases, oldest first; empty when none wait."""
        now = now or _now()
        async with self._session() as session, ignore_lost_race(session):  # lost: ask again next poll
            await self._sweep(session, now)
            await session.commit()
            for _ in range(_CLAIM_TRIES):
                chosen = pick_batch(await self._waiting(session, base_ids), max_batch)
                # The claim starts a transaction of its own with its write.
                await session.rollback()
                if not chosen:
                    return []
                claimed = await self._claim(session, worker_id, chosen, now)
                if claimed:
                    return claimed
        return []

    async def peek(self, base_ids: Collection[str], limit: int) -> list[tuple[UUID, UUID]]:
        """(tenant, model version) of the next queued generations, oldest first, to prefetch adapters."""
        async with self._session() as session:
            rows = await session.execute(
                select(Generation.tenant_id, Generation.model_version_id)
                .where(*self._claimable(base_ids))
                .order_by(Generation.queued_at, Generation.id)
                .limit(limit)
            )
            return [
                (tenant_id, version_id) for tenant_id, version_id in rows.tuples() if version_id is not None
            ]

    @staticmethod
    def _claimable(base_ids: Collection[str]) -> list[ColumnElement[bool]]:
        return [
            Generation.status == WorkStatus.QUEUED,
            Generation.base_id.in_(base_ids),
            Generation.model_version_id.is_not(None),
        ]

    async def _waiting(self, session: AsyncSession, base_ids: Collection[str]) -> list[Waiting]:
        rows = await session.execute(
            select(
                Generation.id,
                Generation.tenant_id,
                Generation.base_id,
                Generation.width,
                Generation.height,
                Generation.frames,
                Generation.steps,
                Generation.guidance,
            )
            .where(*self._claimable(base_ids))
            .order_by(Generation.queued_at, Generation.id)
            .limit(_WINDOW)
        )
        waiting = [Waiting(row.id, row.tenant_id, batch_key(*row[2:])) for row in rows]
        return await self._within_caps(session, waiting)

    async def _within_caps(self, session: AsyncSession, waiting: list[Waiting]) -> list[Waiting]:
        """Drop each tenant's waiting generations beyond its plan's concurrent generations.

        Work beyond a concurrency cap waits its turn rather than being refused
        (``docs/billing.md``). Two workers claiming at once may each see the same room, so
        the cap can be passed by a batch while they race; the allowances that cost money are
        exact (``service.quotas.admission``).
        """
        caps = {
            tenant_id: limits.concurrent_generations
            for tenant_id, limits in (await limits_for(session, {w.tenant_id for w in waiting})).items()
            if limits.concurrent_generations is not None
        }
        if not caps:
            return waiting
        running = await session.execute(
            select(Generation.tenant_id, func.count())
            .where(Generation.status == WorkStatus.RUNNING, Generation.tenant_id.in_(caps))
            .group_by(Generation.tenant_id)
        )
        room = dict(caps)
        for tenant_id, count in running.tuples():
            room[tenant_id] -= count
        kept = []
        for item in waiting:
            if item.tenant_id in room:
                if room[item.tenant_id] <= 0:
                    continue
                room[item.tenant_id] -= 1
            kept.append(item)
        return kept

    async def _claim(
        self, session: AsyncSession, worker_id: str, chosen: list[UUID], now: datetime
    ) -> list[ClaimedGeneration]:
        claimed = await self.work.claim(
            session, worker_id, chosen, now, Generation.model_version_id.is_not(None)
        )
        if not claimed:
            await session.rollback()
            return []
        for generation in claimed:
            await GENERATION_EVENTS.record(
                session,
                generation,
                "started",
                {"attempt": generation.attempts, "worker": worker_id, "batch_size": len(claimed)},
            )
        numbers = dict(
            (
                await session.execute(
                    select(ModelVersion.id, ModelVersion.number).where(
                        ModelVersion.id.in_({generation.model_version_id for generation in claimed})
                    )
                )
            )
            .tuples()
            .all()
        )
        batch = [_claimed(generation, numbers) for generation in claimed]
        await session.commit()
        return batch

    async def abandon(self, worker_id: str, now: datetime | None = None) -> None:
        """End every lease a dead generation process held, now, rather than when they run out.

        The attempts count, as if the leases had expired.
        """
        async with self._session() as session:
            await self.work.abandon(session, worker_id, now or _now())
            await session.commit()

    async def _sweep(self, session: AsyncSession, now: datetime) -> None:
        """End leases that ran out, and fail queued generations whose model version was deleted."""
        await self.work.expire(session, now)
        # A model deleted between a request's check and its commit leaves it with no version.
        orphans = await session.scalars(
            select(Generation)
            .where(Generation.status == WorkStatus.QUEUED, Generation.model_version_id.is_(None))
            .with_for_update(skip_locked=True)
        )
        for generation in orphans.all():
            generation.status = WorkStatus.FAILED
            generation.finished_at = now
            generation.failure_reason = "The model version it was to render with has been deleted."
            await GENERATION_EVENTS.record(
                session, generation, "failed", {"reason": generation.failure_reason}
            )

    async def heartbeat(
        self,
        worker_id: str,
        ids: Collection[UUID],
        step: int,
        now: datetime | None = None,
        *,
        eta_seconds: float | None = None,
    ) -> set[UUID]:
        """Extend the leases this worker still holds and record ``step`` as progress.

        Returns the generations to stop rendering: those whose cancel was requested (end them
        with ``finish_cancelled``) and those the worker no longer holds (its lease ran out and
        the generation moved on; nothing more may be written for them).
        """
        now = now or _now()
        async with self._session() as session:
            generations = await self.work.heartbeat(session, worker_id, ids, now, step=step)
            for generation in generations:
                await GENERATION_EVENTS.record(
                    session,
                    generation,
                    "progress",
                    {"step": step, "total_steps": generation.steps, "eta_seconds": eta_seconds},
                )
            await session.commit()
        held = {generation.id for generation in generations}
        return {g.id for g in generations if g.cancel_requested} | (set(ids) - held)

    async def finish_succeeded(
        self,
        worker_id: str,
        generation_id: UUID,
        *,
        output_bytes: int,
        gpu_seconds: float,
        memorisation: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Record a rendered generation whose outputs are stored, with its memorisation
        verdict; False if the lease was lost."""
        return await self._finish(
            worker_id,
            generation_id,
            WorkStatus.SUCCEEDED,
            gpu_seconds,
            now,
            lambda g: {"outputs": output_paths(g.id), "gpu_seconds": g.gpu_seconds},
            step=Generation.steps,
            output_bytes=output_bytes,
            memorisation=memorisation,
        )

    async def finish_failed(
        self,
        worker_id: str,
        generation_id: UUID,
        reason: str,
        *,
        gpu_seconds: float = 0.0,
        memorisation: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Fail a generation with a reason its requester can act on (and, for one withheld as
        a near copy, its memorisation verdict); False if the lease was lost."""
        return await self._finish(
            worker_id,
            generation_id,
            WorkStatus.FAILED,
            gpu_seconds,
            now,
            lambda _: {"reason": reason},
            reason=reason,
            memorisation=memorisation,
        )

    async def finish_cancelled(
        self, worker_id: str, generation_id: UUID, *, gpu_seconds: float = 0.0, now: datetime | None = None
    ) -> bool:
        """End a generation stopped on its cancel request; False if the lease was lost."""
        return await self._finish(
            worker_id, generation_id, WorkStatus.CANCELLED, gpu_seconds, now, lambda g: {"step": g.step}
        )

    async def _finish(
        self,
        worker_id: str,
        generation_id: UUID,
        status: WorkStatus,
        gpu_seconds: float,
        now: datetime | None,
        event_data: Callable[[Generation], dict[str, Any]],
        **values: Any,
    ) -> bool:
        """End a held generation with its final event and its charges in one transaction; False if not held.

        A failed generation is never charged (``service.usage.ledger``).
        """
        now = now or _now()
        async with self._session() as session:
            changed = await self.work.finish(
                session, worker_id, [generation_id], status, now, gpu_seconds=gpu_seconds, **values
            )
            if not changed:
                return False
            (generation,) = changed
            if status != WorkStatus.FAILED:
                await ledger.charge_gpu(
                    session,
                    Charge.GENERATION_GPU_SECONDS,
                    tenant_id=generation.tenant_id,
                    work_id=generation.id,
                    attempt=generation.attempts,
                    seconds=gpu_seconds,
                    at=now,
                    half_life=self.fair_share_half_life,
                )
            if status == WorkStatus.SUCCEEDED and generation.output_bytes:
                ledger.charge_output(
                    session,
                    tenant_id=generation.tenant_id,
                    generation_id=generation.id,
                    size=generation.output_bytes,
                    at=now,
                )
            await GENERATION_EVENTS.record(session, generation, FINAL_EVENTS[status], event_data(generation))
            await session.commit()
            return True

    async def release(
        self,
        worker_id: str,
        ids: Collection[UUID],
        *,
        reason: str = SHUT_DOWN,
        now: datetime | None = None,
    ) -> set[UUID]:
        """Hand generations back without counting the attempt (a worker shutting down, or a
        batch-mate's adapter that could not be served).

        They return to their place in the queue; one whose cancel was requested ends
        cancelled instead. Returns the generations released.
        """
        now = now or _now()
        async with self._session() as session:
            released = await self.work.release(session, worker_id, ids, now, reason=reason)
            await session.commit()
        return {generation.id for generation in released}


def _claimed(generation: Generation, numbers: dict[UUID, int]) -> ClaimedGeneration:
    if generation.model_version_id is None:  # excluded by the claim's own condition
        raise RuntimeError(f"generation {generation.id} was claimed without a model version")
    return ClaimedGeneration(
        id=generation.id,
        tenant_id=generation.tenant_id,
        model_id=generation.model_id,
        model_version_id=generation.model_version_id,
        model_version=numbers[generation.model_version_id],
        base_id=generation.base_id,
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        width=generation.width,
        height=generation.height,
        frames=generation.frames,
        steps=generation.steps,
        guidance=generation.guidance,
        seed=generation.seed,
        adapter_strength=generation.adapter_strength,
        attempt=generation.attempts,
    )


__all__ = ["BatchKey", "ClaimedGeneration", "GenerationQueue", "Waiting", "batch_key", "pick_batch"]
