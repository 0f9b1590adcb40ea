"""Leases on queued work, the same for every kind: claim, heartbeat, finish, release, expiry.

``WorkQueue`` is parametrised by the row class (a ``Leased`` table) and the callback that
appends an event to a row's log in the caller's transaction. The kind's own queue decides
what to claim (fair share for fine-tunes, compatible batches for generations) and owns the
session and its transaction; everything that touches a lease is here, so every kind gives
the same answer to every race:

- a claim is one conditional update (``WHERE id IN (... FOR UPDATE SKIP LOCKED) AND status
  = 'queued'``; SQLite has no row locks and serialises writers), so one worker wins;
- a worker holds a row while it is running under its name (and, where the worker knows
  it, the attempt it claimed); a beat, an event or a finish from anyone else changes nothing;
- a lease that ends without a finish, whether it ran out, was abandoned by a dead process
  or was released by a worker shutting down, ends **cancelled** if a cancel was requested;
  otherwise an expired or abandoned lease **fails** the work once ``max_attempts`` leases
  were lost and puts it back in its place in the queue before that, and a release puts it
  back without counting the attempt;
- an attempt that ended without success but may be tried again (``retry``: a webhook
  delivery the receiver refused) ends the same way: cancelled if a cancel was requested,
  failed once ``max_attempts`` were made, otherwise queued again not before the time given
  (``Deferrable`` work only; a claim passes over such work until then).

Operations on held rows write before they read (an ``UPDATE ... RETURNING`` first), so on
SQLite their transaction takes the write lock at once and is never refused as overtaken.
A claim reads first (to choose), so SQLite can refuse it: ``ignore_lost_race`` is the one
place that recognises that refusal as a lost race.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from core.work.lease import Deferrable, Leased
from core.work.status import WorkStatus

RowT = TypeVar("RowT", bound=Leased)

# The events the core writes itself; every kind's event log takes these names.
WorkEvent = Literal["requeued", "failed", "cancelled"]
# Appends an event to a row's log in the caller's transaction (``EventLog.record``).
Recorder = Callable[[AsyncSession, RowT, WorkEvent, dict[str, Any]], Awaitable[object]]

# The event that ends work in each final status.
FINAL_EVENTS: dict[WorkStatus, Literal["succeeded", "failed", "cancelled"]] = {
    WorkStatus.SUCCEEDED: "succeeded",
    WorkStatus.FAILED: "failed",
    WorkStatus.CANCELLED: "cancelled",
}

LEASE_EXPIRED = "lease expired"
PROCESS_DIED = "worker process died"
SHUT_DOWN = "worker shut down"


def is_lost_race(exc: BaseException) -> bool:
    """SQLite refuses a write from a transaction whose snapshot another writer has moved past
    ("database is locked"): a lost race like any other, to be asked again."""
    return isinstance(exc, OperationalError) and "locked" in str(exc.orig)


@asynccontextmanager
async def ignore_lost_race(session: AsyncSession) -> AsyncIterator[None]:
    """Roll back and carry on after the block when it lost a race on SQLite; anything else propagates."""
    try:
        yield
    except OperationalError as exc:
        if not is_lost_race(exc):
            raise
        await session.rollback()


@dataclass(frozen=True, slots=True)
class WorkKind(Generic[RowT]):
    """What the core needs to know about one kind of work."""

    model: type[RowT]
    record: Recorder[RowT]
    # How failure reasons name the work ("job", "generation") and what its owner can do.
    noun: str
    retry_hint: str


class WorkQueue(Generic[RowT]):
    """The lease operations for one kind of work; each runs in the caller's session and transaction."""

    def __init__(self, kind: WorkKind[RowT], lease_seconds: float) -> None:
        self.kind = kind
        self.model = kind.model
        self.lease_seconds = lease_seconds

    def expiry(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)

    def due(self, now: datetime) -> list[ColumnElement[bool]]:
        """What a claim at ``now`` asks of queued work: nothing, unless its kind defers (``not_before``)."""
        if not issubclass(self.model, Deferrable):
            return []
        deferrable: type[Deferrable] = self.model
        return [deferrable.not_before <= now]

    def held(
        self, owner: str, ids: Collection[UUID], attempt: int | None = None
    ) -> list[ColumnElement[bool]]:
        """The rows of ``ids`` this owner holds: running under its name (and in ``attempt``, if named)."""
        model = self.model
        conditions = [model.id.in_(ids), model.status == WorkStatus.RUNNING, model.lease_owner == owner]
        if attempt is not None:
            conditions.append(model.attempts == attempt)
        return conditions

    async def claim(
        self,
        session: AsyncSession,
        owner: str,
        ids: Sequence[UUID],
        now: datetime,
        *conditions: ColumnElement[bool],
    ) -> list[RowT]:
        """Claim those of ``ids`` still queued and due (and meeting ``conditions``); returns them in
        ``ids``' order.

        SKIP LOCKED passes over rows another worker is claiming (PostgreSQL; SQLite's compiler
        leaves it out and runs one writer at a time); the status condition makes each claim win once.
        """
        model = self.model
        conditions = (*conditions, *self.due(now))
        claimable = (
            select(model.id)
            .where(model.id.in_(ids), model.status == WorkStatus.QUEUED, *conditions)
            .with_for_update(skip_locked=True)
        )
        claimed = set(
            await session.scalars(
                update(model)
                .where(model.id.in_(claimable), model.status == WorkStatus.QUEUED, *conditions)
                .values(
                    status=WorkStatus.RUNNING,
                    attempts=model.attempts + 1,
                    lease_owner=owner,
                    lease_expires_at=self.expiry(now),
                    started_at=func.coalesce(model.started_at, now),
                )
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
        )
        rows = await self.load(session, claimed)
        return sorted(rows, key=lambda row: list(ids).index(row.id))

    async def update_held(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        *conditions: ColumnElement[bool],
        attempt: int | None = None,
        **values: Any,
    ) -> list[RowT]:
        """Change the rows this owner holds (and that meet ``conditions``); returns them, changed."""
        model = self.model
        # A write with nothing to change still takes the row (and SQLite's write lock).
        values = values or {"lease_owner": model.lease_owner}
        changed = set(
            await session.scalars(
                update(model)
                .where(*self.held(owner, ids, attempt), *conditions)
                .values(**values)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
        )
        return await self.load(session, changed)

    async def heartbeat(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        now: datetime,
        *,
        attempt: int | None = None,
        **values: Any,
    ) -> list[RowT]:
        """Extend the leases this owner still holds (setting ``values`` too); returns those rows.

        The caller reads ``cancel_requested`` on them; ids missing from the answer are no
        longer held, and nothing more may be written for them.
        """
        return await self.update_held(
            session, owner, ids, attempt=attempt, lease_expires_at=self.expiry(now), **values
        )

    async def finish(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        status: WorkStatus,
        now: datetime,
        *,
        gpu_seconds: float = 0.0,
        reason: str | None = None,
        attempt: int | None = None,
        **values: Any,
    ) -> list[RowT]:
        """End held rows in a final status, adding ``gpu_seconds``; returns them. The caller
        writes the final event (its data is the kind's), in the same transaction."""
        if not status.is_final:
            raise ValueError(f"{status} is not a final status")
        return await self.update_held(
            session,
            owner,
            ids,
            attempt=attempt,
            **self._ended(status, now),
            gpu_seconds=self.model.gpu_seconds + gpu_seconds,
            failure_reason=reason,
            **values,
        )

    async def release(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        now: datetime,
        *,
        reason: str = SHUT_DOWN,
        attempt: int | None = None,
        **values: Any,
    ) -> list[RowT]:
        """Hand held rows back without counting the attempt; returns the rows released.

        One whose cancel was requested ends cancelled instead; the rest keep their place in
        the queue. ``values`` are set on both (GPU time charged up to the release).
        """
        return await self._hand_back(
            session,
            owner,
            ids,
            now,
            reason=reason,
            attempt=attempt,
            requeue={"attempts": self.model.attempts - 1},
            values=values,
        )

    async def retry(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        now: datetime,
        not_before: datetime,
        *,
        reason: str,
        attempt: int | None = None,
        **values: Any,
    ) -> list[RowT]:
        """End held attempts that did not succeed, for another try from ``not_before``; returns the rows.

        The same answer as a lost lease, for ``Deferrable`` work: one whose cancel was
        requested ends cancelled; one that made ``max_attempts`` attempts ends failed with
        ``reason``; the rest go back to the queue (the attempt counted) and wait until
        ``not_before``. ``values`` are set on all of them (what the attempt came to).
        """
        if not issubclass(self.model, Deferrable):
            raise TypeError(f"{self.model.__name__} cannot wait between attempts (it is not Deferrable)")
        model = self.model
        failed = await self.update_held(
            session,
            owner,
            ids,
            model.cancel_requested.is_(False),
            model.attempts >= model.max_attempts,
            attempt=attempt,
            **self._ended(WorkStatus.FAILED, now),
            failure_reason=reason,
            **values,
        )
        for row in failed:
            await self.kind.record(session, row, "failed", {"reason": reason})
        return failed + await self._hand_back(
            session,
            owner,
            ids,
            now,
            reason=reason,
            attempt=attempt,
            requeue={"not_before": not_before},
            values=values,
        )

    async def _hand_back(
        self,
        session: AsyncSession,
        owner: str,
        ids: Collection[UUID],
        now: datetime,
        *,
        reason: str,
        attempt: int | None,
        requeue: dict[str, Any],
        values: dict[str, Any],
    ) -> list[RowT]:
        """End held leases without a finish: cancelled if a cancel was requested, else queued
        again with ``requeue`` set. ``values`` are set on both."""
        model = self.model
        cancelled = await self.update_held(
            session,
            owner,
            ids,
            model.cancel_requested.is_(True),
            attempt=attempt,
            **self._ended(WorkStatus.CANCELLED, now),
            **values,
        )
        for row in cancelled:
            await self.kind.record(session, row, "cancelled", {"step": row.step})
        requeued = await self.update_held(
            session,
            owner,
            ids,
            attempt=attempt,
            status=WorkStatus.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            **requeue,
            **values,
        )
        for row in requeued:
            await self.kind.record(session, row, "requeued", {"reason": reason, "worker": owner})
        return cancelled + requeued

    async def abandon(
        self,
        session: AsyncSession,
        owner: str,
        now: datetime,
        *,
        ids: Collection[UUID] | None = None,
        attempt: int | None = None,
    ) -> list[RowT]:
        """End now the leases a dead process held (all of this owner's, or those of ``ids``), as
        if they had run out: the attempts count. Returns the rows ended."""
        model = self.model
        conditions = (
            self.held(owner, ids, attempt)
            if ids is not None
            else [model.status == WorkStatus.RUNNING, model.lease_owner == owner]
        )
        ended = set(
            await session.scalars(
                update(model)
                .where(*conditions)
                .values(lease_expires_at=now)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
        )
        if not ended:
            return []
        return await self.expire(session, now + timedelta(microseconds=1), reason=PROCESS_DIED, ids=ended)

    async def expire(
        self,
        session: AsyncSession,
        now: datetime,
        *,
        reason: str = LEASE_EXPIRED,
        ids: Collection[UUID] | None = None,
    ) -> list[RowT]:
        """End every lease that ran out before ``now`` (of ``ids`` only, if named); returns the rows.

        The one answer: a cancel requested ends it cancelled; ``max_attempts`` leases lost
        fails it; otherwise it goes back to its place in the queue.
        """
        model = self.model
        stale = select(model).where(model.status == WorkStatus.RUNNING, model.lease_expires_at < now)
        if ids is not None:
            stale = stale.where(model.id.in_(ids))
        stale = stale.with_for_update(skip_locked=True).execution_options(populate_existing=True)
        rows = list((await session.scalars(stale)).all())
        for row in rows:
            worker = row.lease_owner
            row.lease_owner = None
            row.lease_expires_at = None
            if row.cancel_requested:
                row.status = WorkStatus.CANCELLED
                row.finished_at = now
                await self.kind.record(session, row, "cancelled", {"step": row.step})
            elif row.attempts >= row.max_attempts:
                row.status = WorkStatus.FAILED
                row.finished_at = now
                row.failure_reason = (
                    f"The {self.kind.noun}'s worker stopped responding {row.attempts} times "
                    f"(last on {worker}); {self.kind.retry_hint}."
                )
                await self.kind.record(session, row, "failed", {"reason": row.failure_reason})
            else:
                # It keeps its place in the queue: it has waited longest, through no fault of its own.
                row.status = WorkStatus.QUEUED
                await self.kind.record(session, row, "requeued", {"reason": reason, "worker": worker})
        return rows

    async def load(self, session: AsyncSession, ids: Collection[UUID]) -> list[RowT]:
        if not ids:
            return []
        model = self.model
        rows = await session.scalars(
            select(model).where(model.id.in_(ids)).execution_options(populate_existing=True)
        )
        return list(rows.all())

    def _ended(self, status: WorkStatus, now: datetime) -> dict[str, Any]:
        return {"status": status, "finished_at": now, "lease_owner": None, "lease_expires_at": None}


__all__ = [
    "FINAL_EVENTS",
    "LEASE_EXPIRED",
    "PROCESS_DIED",
    "SHUT_DOWN",
    "Recorder",
    "WorkEvent",
    "WorkKind",
    "WorkQueue",
    "ignore_lost_race",
    "is_lost_race",
]
