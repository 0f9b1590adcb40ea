"""One race table, run against every kind of queued work on SQLite and PostgreSQL.

Every kind's queue delegates its leases to ``core.work.queue``, so every kind must give the
same answer to each race: these tests drive each kind through its own public queue (as its
workers do) and the API's cancel (``service.events.lifecycle.cancel``; for a webhook
delivery, disabling its endpoint), and read the row. Webhook deliveries keep no event log
and are not heartbeated (one request fits its lease): the heartbeat rows run on the kinds that are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import GenerationSettings, JobSettings, Settings, WebhookSettings
from core.work.lease import Leased
from core.work.queue import is_lost_race
from core.work.status import WorkStatus
from service.accounts.models import Tenant
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped, set_tenant
from service.events.lifecycle import cancel
from service.events.log import EventLog
from service.generations.events import GENERATION_EVENTS
from service.generations.models import Generation, GenerationEvent
from service.generations.queue import GenerationQueue
from service.jobs.events import JOB_EVENTS
from service.jobs.models import FineTuneJob, JobEvent
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot
from service.webhooks import service as webhooks
from service.webhooks.dispatcher import Claim, DeliveryQueue, Outcome
from service.webhooks.models import WebhookDelivery, WebhookEndpoint
from service.webhooks.schemas import WebhookUpdate
from tests.integration.test_generation_queue import enqueue as enqueue_generations
from tests.integration.test_generation_queue import make_owner
from tests.integration.test_job_queue import enqueue as enqueue_jobs
from tests.integration.test_job_queue import make_tenant

LEASE_SECONDS = 30
EXPIRED = timedelta(seconds=LEASE_SECONDS + 1)
SLOT = WorkerSlot(free_bytes=80 << 30, total_bytes=80 << 30)


@dataclass(frozen=True)
class Held:
    """A worker's hold on one row, as that kind's worker keeps it."""

    worker: str
    id: UUID
    attempt: int
    lease: Any  # the kind's own handle (a ``Lease`` for fine-tunes)


class Kind:
    """One kind of work, driven through its own queue."""

    name: str
    model: type[Leased]
    log: EventLog[Any, Any, Any]
    # Whether its workers heartbeat (and so can be told of a cancel before they finish).
    heartbeats = True

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def enqueue(self) -> UUID:
        raise NotImplementedError

    async def claim(self, worker: str, now: datetime) -> Held | None:
        """Claim the next row (sweeping expired leases first, as every claim does)."""
        raise NotImplementedError

    async def heartbeat(self, held: Held, now: datetime) -> tuple[bool, bool]:
        """(held, told to stop for a cancel)."""
        raise NotImplementedError

    async def succeed(self, held: Held, now: datetime) -> bool:
        raise NotImplementedError

    async def release(self, held: Held, now: datetime) -> bool:
        raise NotImplementedError

    async def abandon(self, held: Held, now: datetime) -> None:
        raise NotImplementedError

    async def events(self, row_id: UUID) -> list[str] | None:
        """The row's event log; None for a kind that keeps none."""
        raise NotImplementedError

    async def row(self, row_id: UUID) -> Any:
        async with self.sessions() as session:
            mark_unscoped(session)
            return await session.get_one(self.model, row_id)

    async def set(self, row_id: UUID, **values: Any) -> None:
        async with self.sessions() as session:
            mark_unscoped(session)
            await session.execute(
                update(self.model)
                .where(self.model.id == row_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def cancel(self, row_id: UUID) -> WorkStatus:
        """The API's cancel: a queued row ends, a running one is asked to stop."""
        async with self.sessions() as session:
            mark_unscoped(session)

            async def load() -> Any:
                return await session.get_one(self.model, row_id, populate_existing=True)

            row = await cancel(session, self.log, load, self.name)
            return WorkStatus(row.status)


class FineTunes(Kind):
    name, model, log = "job", FineTuneJob, JOB_EVENTS

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.queue = JobQueue(sessions, JobSettings(lease_seconds=LEASE_SECONDS))

    async def enqueue(self) -> UUID:
        (job_id,) = await enqueue_jobs(self.sessions, await make_tenant(self.sessions, "t"), 1)
        return job_id

    async def claim(self, worker: str, now: datetime) -> Held | None:
        lease = await self.queue.lease(worker, SLOT, now=now)
        return None if lease is None else Held(worker, lease.job_id, lease.attempt, lease)

    async def heartbeat(self, held: Held, now: datetime) -> tuple[bool, bool]:
        beat = await self.queue.heartbeat(held.lease, step=1, gpu_seconds=1.0, now=now)
        return beat.held, beat.cancel

    async def succeed(self, held: Held, now: datetime) -> bool:
        return await self.queue.finish(held.lease, WorkStatus.SUCCEEDED, gpu_seconds=0.0, now=now)

    async def release(self, held: Held, now: datetime) -> bool:
        return await self.queue.release(held.lease, gpu_seconds=1.0, now=now)

    async def abandon(self, held: Held, now: datetime) -> None:
        lease: Lease = held.lease
        await self.queue.abandon(lease, now=now)

    async def events(self, row_id: UUID) -> list[str]:
        async with self.sessions() as session:
            mark_unscoped(session)
            rows = await session.scalars(
                select(JobEvent).where(JobEvent.job_id == row_id).order_by(JobEvent.seq)
            )
            return [event.type for event in rows]


class Generations(Kind):
    name, model, log = "generation", Generation, GENERATION_EVENTS

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.queue = GenerationQueue(sessions, GenerationSettings(lease_seconds=LEASE_SECONDS))

    async def enqueue(self) -> UUID:
        (generation_id,) = await enqueue_generations(self.sessions, await make_owner(self.sessions, "t"), 1)
        return generation_id

    async def claim(self, worker: str, now: datetime) -> Held | None:
        batch = await self.queue.claim_batch(worker, ["tiny"], 1, now=now)
        return None if not batch else Held(worker, batch[0].id, batch[0].attempt, batch[0])

    async def heartbeat(self, held: Held, now: datetime) -> tuple[bool, bool]:
        # The queue answers the generations to stop: cancelled ones, and ones no longer held.
        stop = await self.queue.heartbeat(held.worker, [held.id], 1, now=now)
        row = await self.row(held.id)
        still = row.status is WorkStatus.RUNNING and row.lease_owner == held.worker
        return still, still and held.id in stop

    async def succeed(self, held: Held, now: datetime) -> bool:
        return await self.queue.finish_succeeded(
            held.worker, held.id, output_bytes=1, gpu_seconds=0.0, now=now
        )

    async def release(self, held: Held, now: datetime) -> bool:
        return held.id in await self.queue.release(held.worker, [held.id], now=now)

    async def abandon(self, held: Held, now: datetime) -> None:
        await self.queue.abandon(held.worker, now=now)

    async def events(self, row_id: UUID) -> list[str]:
        async with self.sessions() as session:
            mark_unscoped(session)
            rows = await session.scalars(
                select(GenerationEvent)
                .where(GenerationEvent.generation_id == row_id)
                .order_by(GenerationEvent.seq)
            )
            return [event.type for event in rows]


class Deliveries(Kind):
    """Webhook deliveries, driven through the dispatcher's queue; their cancel is disabling the endpoint."""

    name, model = "webhook delivery", WebhookDelivery
    heartbeats = False

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)
        self.queue = DeliveryQueue(sessions, WebhookSettings(), lease_seconds=LEASE_SECONDS)

    async def enqueue(self) -> UUID:
        now = datetime.now(UTC) - timedelta(minutes=1)
        async with self.sessions() as session:
            mark_unscoped(session)
            tenant = Tenant(name="t")
            session.add(tenant)
            await session.flush()
            endpoint = WebhookEndpoint(
                tenant_id=tenant.id,
                url="https://example.com/hook",
                event_types=["fine_tune.queued"],
                enabled_at=now,
            )
            session.add(endpoint)
            await session.flush()
            delivery = WebhookDelivery(
                tenant_id=tenant.id,
                endpoint_id=endpoint.id,
                event_id=uuid4(),
                event_type="queued",
                payload={},
                max_attempts=2,
                queued_at=now,
                not_before=now,
            )
            session.add(delivery)
            await session.commit()
            return delivery.id

    async def claim(self, worker: str, now: datetime) -> Held | None:
        claims = await self.queue.claim(worker, now, 1)
        return None if not claims else Held(worker, claims[0].delivery_id, claims[0].attempt, claims[0])

    async def heartbeat(self, held: Held, now: datetime) -> tuple[bool, bool]:
        raise NotImplementedError("deliveries are not heartbeated")

    async def succeed(self, held: Held, now: datetime) -> bool:
        claim: Claim = held.lease
        return await self.queue.record(claim, Outcome(200, None, 1), now) is WorkStatus.SUCCEEDED

    async def release(self, held: Held, now: datetime) -> bool:
        return held.id in await self.queue.release(held.worker, [held.id], now)

    async def abandon(self, held: Held, now: datetime) -> None:
        await self.queue.abandon(held.worker, now)

    async def events(self, row_id: UUID) -> list[str] | None:
        return None

    async def cancel(self, row_id: UUID) -> WorkStatus:
        """What an owner can do to a delivery: disable its endpoint."""
        delivery = await self.row(row_id)
        async with self.sessions() as session:
            set_tenant(session, delivery.tenant_id)
            await webhooks.update_endpoint(
                session, delivery.endpoint_id, WebhookUpdate(enabled=False), WebhookSettings()
            )
        return WorkStatus((await self.row(row_id)).status)

    async def enable(self, row_id: UUID) -> None:
        delivery = await self.row(row_id)
        async with self.sessions() as session:
            set_tenant(session, delivery.tenant_id)
            await webhooks.update_endpoint(
                session, delivery.endpoint_id, WebhookUpdate(enabled=True), WebhookSettings()
            )


KINDS: dict[str, Callable[[async_sessionmaker[AsyncSession]], Kind]] = {
    "fine-tune": FineTunes,
    "generation": Generations,
    "webhook delivery": Deliveries,
}


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession]) -> Kind:
    return KINDS[request.param](sessions)


@pytest.fixture(params=[name for name, make in KINDS.items() if getattr(make, "heartbeats", True)])
def heartbeating_kind(request: pytest.FixtureRequest, sessions: async_sessionmaker[AsyncSession]) -> Kind:
    """The kinds whose workers heartbeat: only they can be told of a cancel mid-run."""
    return KINDS[request.param](sessions)


async def claimed(kind: Kind, worker: str = "w1", now: datetime | None = None) -> Held:
    held = await kind.claim(worker, now or datetime.now(UTC))
    assert held is not None
    return held


async def assert_events(kind: Kind, row_id: UUID, expected: list[str]) -> None:
    """The row's event log is ``expected``, for a kind that keeps one."""
    events = await kind.events(row_id)
    assert events is None or events == expected


async def test_queued_and_cancelled_ends_cancelled(kind: Kind) -> None:
    row_id = await kind.enqueue()
    assert await kind.cancel(row_id) is WorkStatus.CANCELLED
    assert await kind.claim("w1", datetime.now(UTC)) is None
    assert (await kind.row(row_id)).finished_at is not None
    await assert_events(kind, row_id, ["cancelled"])


async def test_running_with_cancel_requested_and_lease_expired_ends_cancelled(kind: Kind) -> None:
    row_id = await kind.enqueue()
    t0 = datetime.now(UTC)
    await claimed(kind, now=t0)
    assert await kind.cancel(row_id) is WorkStatus.RUNNING  # asked to stop; its worker then dies
    # The next claim's sweep ends the lease: cancelled, not queued again for another attempt.
    assert await kind.claim("w2", t0 + EXPIRED) is None
    row = await kind.row(row_id)
    assert (row.status, row.lease_owner, row.lease_expires_at, row.attempts) == (
        WorkStatus.CANCELLED,
        None,
        None,
        1,
    )
    await assert_events(kind, row_id, ["started", "cancel_requested", "cancelled"])


async def test_running_with_lease_expired_and_attempts_left_is_requeued(kind: Kind) -> None:
    row_id = await kind.enqueue()  # two attempts allowed
    t0 = datetime.now(UTC)
    queued_at = (await kind.row(row_id)).queued_at
    await claimed(kind, now=t0)
    again = await kind.claim("w2", t0 + EXPIRED)
    assert again is not None and (again.id, again.attempt) == (row_id, 2)
    row = await kind.row(row_id)
    # It kept its place in the queue.
    assert (row.status, row.lease_owner, row.queued_at) == (WorkStatus.RUNNING, "w2", queued_at)
    await assert_events(kind, row_id, ["started", "requeued", "started"])


async def test_running_with_lease_expired_and_attempts_exhausted_fails(kind: Kind) -> None:
    row_id = await kind.enqueue()
    await kind.set(row_id, max_attempts=1)
    t0 = datetime.now(UTC)
    await claimed(kind, now=t0)
    assert await kind.claim("w2", t0 + EXPIRED) is None
    row = await kind.row(row_id)
    assert (row.status, row.lease_owner) == (WorkStatus.FAILED, None)
    assert f"{kind.name}'s worker stopped responding 1 times (last on w1)" in row.failure_reason
    await assert_events(kind, row_id, ["started", "failed"])


async def test_a_dead_process_with_cancel_requested_ends_cancelled(kind: Kind) -> None:
    row_id = await kind.enqueue()
    held = await claimed(kind)
    await kind.cancel(row_id)
    await kind.abandon(held, datetime.now(UTC))
    assert (await kind.row(row_id)).status is WorkStatus.CANCELLED
    await assert_events(kind, row_id, ["started", "cancel_requested", "cancelled"])


async def test_a_dead_process_counts_the_attempt(kind: Kind) -> None:
    row_id = await kind.enqueue()
    await kind.abandon(await claimed(kind), datetime.now(UTC))
    row = await kind.row(row_id)
    assert (row.status, row.attempts, row.lease_owner) == (WorkStatus.QUEUED, 1, None)
    again = await claimed(kind, "w2")
    await kind.abandon(again, datetime.now(UTC))
    assert (await kind.row(row_id)).status is WorkStatus.FAILED  # two lost leases of two


async def test_a_heartbeat_after_the_lease_moved_to_another_worker_is_not_held(kind: Kind) -> None:
    row_id = await kind.enqueue()
    t0 = datetime.now(UTC)
    first = await claimed(kind, "w1", t0)
    if kind.heartbeats:
        assert await kind.heartbeat(first, t0 + timedelta(seconds=10)) == (True, False)
    second = await claimed(kind, "w2", t0 + timedelta(seconds=10) + EXPIRED)
    assert second.attempt == 2
    if kind.heartbeats:
        assert (await kind.heartbeat(first, t0 + timedelta(seconds=45)))[0] is False
    assert not await kind.succeed(first, t0 + timedelta(seconds=46))  # nor can it finish
    assert not await kind.release(first, t0 + timedelta(seconds=46))
    row = await kind.row(row_id)
    assert (row.status, row.lease_owner, row.attempts) == (WorkStatus.RUNNING, "w2", 2)
    assert await kind.succeed(second, t0 + timedelta(seconds=47))


async def test_a_heartbeat_reports_a_cancel_request(heartbeating_kind: Kind) -> None:
    kind = heartbeating_kind
    row_id = await kind.enqueue()
    held = await claimed(kind)
    await kind.cancel(row_id)
    assert await kind.heartbeat(held, datetime.now(UTC)) == (True, True)


async def test_release_with_cancel_requested_ends_cancelled(kind: Kind) -> None:
    row_id = await kind.enqueue()
    held = await claimed(kind)
    await kind.cancel(row_id)
    assert await kind.release(held, datetime.now(UTC))
    row = await kind.row(row_id)
    assert (row.status, row.lease_owner) == (WorkStatus.CANCELLED, None)
    assert await kind.claim("w2", datetime.now(UTC)) is None
    await assert_events(kind, row_id, ["started", "cancel_requested", "cancelled"])


async def test_release_requeues_without_counting_the_attempt(kind: Kind) -> None:
    row_id = await kind.enqueue()
    queued_at = (await kind.row(row_id)).queued_at
    held = await claimed(kind)
    assert await kind.release(held, datetime.now(UTC))
    row = await kind.row(row_id)
    assert (row.status, row.attempts, row.lease_owner, row.queued_at) == (
        WorkStatus.QUEUED,
        0,
        None,
        queued_at,
    )
    assert (await claimed(kind, "w2")).attempt == 1
    await assert_events(kind, row_id, ["started", "requeued", "started"])


async def test_two_workers_claiming_one_row_one_wins(kind: Kind) -> None:
    row_id = await kind.enqueue()
    now = datetime.now(UTC)
    results = await asyncio.gather(*(kind.claim(f"w{i}", now) for i in range(4)))
    winners = [held for held in results if held is not None]
    assert [(held.id, held.attempt) for held in winners] == [(row_id, 1)]
    row = await kind.row(row_id)
    assert (row.attempts, row.lease_owner) == (1, winners[0].worker)


async def test_the_core_claim_takes_a_row_once_across_sessions(kind: Kind) -> None:
    """The claim statement itself, from two sessions at once, without each queue's choosing."""
    row_id = await kind.enqueue()
    work = kind.queue.work  # type: ignore[attr-defined]
    now = datetime.now(UTC)

    async def claim(worker: str) -> list[Any]:
        async with kind.sessions() as session:
            mark_unscoped(session)
            try:
                rows = await work.claim(session, worker, [row_id], now)
                await session.commit()
                return list(rows)
            except OperationalError as exc:  # SQLite may refuse the loser outright: a lost race
                if not is_lost_race(exc):
                    raise
                return []

    results: list[list[Any]] = await asyncio.gather(claim("a"), claim("b"))
    assert sorted(len(rows) for rows in results) == [0, 1]


# Deliveries only: a refused attempt ends through ``WorkQueue.retry``, which gives a lost
# lease's answer and, otherwise, waits out the backoff (``Deferrable.not_before``).

REFUSED = Outcome(500, "HTTP 500", 1)


@pytest.fixture
def deliveries(sessions: async_sessionmaker[AsyncSession]) -> Deliveries:
    return Deliveries(sessions)


async def test_a_refused_delivery_waits_out_its_backoff_then_fails(deliveries: Deliveries) -> None:
    row_id = await deliveries.enqueue()  # two attempts allowed
    t0 = datetime.now(UTC)
    held = await claimed(deliveries, now=t0)
    assert await deliveries.queue.record(held.lease, REFUSED, t0) is WorkStatus.QUEUED
    row = await deliveries.row(row_id)
    assert (row.status, row.attempts, row.lease_owner, row.lease_expires_at) == (
        WorkStatus.QUEUED,
        1,
        None,
        None,
    )
    assert t0 + timedelta(seconds=30) <= row.not_before <= t0 + timedelta(seconds=60)  # 60 s, jittered
    assert await deliveries.claim("w2", t0 + timedelta(seconds=29)) is None  # not due yet
    again = await claimed(deliveries, "w2", row.not_before)
    assert again.attempt == 2
    assert await deliveries.queue.record(again.lease, REFUSED, row.not_before) is WorkStatus.FAILED
    row = await deliveries.row(row_id)
    assert (row.status, row.failure_reason, row.last_status_code) == (WorkStatus.FAILED, "HTTP 500", 500)


async def test_a_delivery_cancelled_by_disabling_its_endpoint_is_queued_again_on_enabling(
    deliveries: Deliveries,
) -> None:
    row_id = await deliveries.enqueue()
    t0 = datetime.now(UTC)
    held = await claimed(deliveries, now=t0)
    assert await deliveries.cancel(row_id) is WorkStatus.RUNNING
    # The attempt in flight is still recorded; refused, it ends cancelled rather than waiting.
    assert await deliveries.queue.record(held.lease, REFUSED, t0) is WorkStatus.CANCELLED
    assert len((await deliveries.row(row_id)).attempt_log) == 1
    await deliveries.enable(row_id)
    row = await deliveries.row(row_id)
    assert (row.status, row.attempts, row.cancel_requested, row.finished_at) == (
        WorkStatus.QUEUED,
        1,
        False,
        None,
    )
    assert (await claimed(deliveries, "w2", row.not_before)).attempt == 2
