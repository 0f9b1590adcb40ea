"""The database-backed generation queue, on SQLite and PostgreSQL, with real concurrent claimers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import GenerationSettings, Settings
from core.work.status import WorkStatus
from service.accounts.models import Tenant, User
from service.datasets.models import Dataset, DatasetVersion
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.generations.models import Generation, GenerationEvent
from service.generations.queue import ClaimedGeneration, GenerationQueue, Waiting, batch_key, pick_batch
from service.jobs.models import FineTuneJob
from service.models.models import Model, ModelVersion

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SHAPE: dict[str, Any] = {"width": 64, "height": 64, "frames": 9, "steps": 8, "guidance": 5.0}


@dataclass(frozen=True)
class Owner:
    tenant_id: UUID
    user_id: UUID
    model_id: UUID
    version_id: UUID


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def queue(sessions: async_sessionmaker[AsyncSession]) -> GenerationQueue:
    return GenerationQueue(sessions, GenerationSettings(lease_seconds=30, max_attempts=2))


async def make_owner(sessions: async_sessionmaker[AsyncSession], name: str) -> Owner:
    """A tenant with one model version (rows only: nothing here is rendered)."""
    async with sessions() as session:
        mark_unscoped(session)
        tenant = Tenant(name=name)
        user = User(email=f"{uuid4().hex}@example.com", password_hash="x", is_platform_admin=False)
        session.add_all([tenant, user])
        await session.flush()
        dataset = Dataset(tenant_id=tenant.id, name="d", description="")
        session.add(dataset)
        await session.flush()
        dataset_version = DatasetVersion(tenant_id=tenant.id, dataset_id=dataset.id, number=1, items=[])
        model = Model(tenant_id=tenant.id, name="m", base_id="tiny", created_by=user.id, version_count=1)
        session.add_all([dataset_version, model])
        await session.flush()
        job = FineTuneJob(
            tenant_id=tenant.id,
            dataset_version_id=dataset_version.id,
            base_id="tiny",
            model_id=model.id,
            config={},
            status=WorkStatus.SUCCEEDED,
            estimated_bytes=1,
            total_steps=1,
            queued_at=T0,
            created_by=user.id,
        )
        session.add(job)
        await session.flush()
        version = ModelVersion(
            id=job.model_version_id,
            tenant_id=tenant.id,
            model_id=model.id,
            number=1,
            job_id=job.id,
            dataset_version_id=dataset_version.id,
            base_id="tiny",
            config={},
            adapter_sha256="0" * 64,
            adapter_bytes=1,
            steps=1,
        )
        session.add(version)
        await session.commit()
        return Owner(tenant.id, user.id, model.id, version.id)


async def enqueue(
    sessions: async_sessionmaker[AsyncSession], owner: Owner, n: int, start: int = 0, **shape: Any
) -> list[UUID]:
    async with sessions() as session:
        mark_unscoped(session)
        generations = [
            Generation(
                tenant_id=owner.tenant_id,
                model_id=owner.model_id,
                model_version_id=owner.version_id,
                base_id="tiny",
                prompt=f"clip {start + i}",
                seed=start + i,
                adapter_strength=1.0,
                max_attempts=2,
                queued_at=T0 + timedelta(seconds=start + i),
                created_by=owner.user_id,
                **{**SHAPE, **shape},
            )
            for i in range(n)
        ]
        session.add_all(generations)
        await session.commit()
        return [generation.id for generation in generations]


async def fetch(sessions: async_sessionmaker[AsyncSession], generation_id: UUID) -> Generation:
    async with sessions() as session:
        mark_unscoped(session)
        return await session.get_one(Generation, generation_id)


async def event_types(sessions: async_sessionmaker[AsyncSession], generation_id: UUID) -> list[str]:
    async with sessions() as session:
        mark_unscoped(session)
        events = await session.scalars(
            select(GenerationEvent)
            .where(GenerationEvent.generation_id == generation_id)
            .order_by(GenerationEvent.seq)
        )
        return [event.type for event in events]


def test_pick_batch_takes_tenants_in_turns_among_compatible_generations() -> None:
    a, b, c = uuid4(), uuid4(), uuid4()
    key, other = batch_key("tiny", 64, 64, 9, 8, 5.0), batch_key("tiny", 64, 64, 9, 8, 1.0)
    assert key == batch_key("tiny", 64, 64, 9, 8, 7.5)  # guidance on, whatever its scale
    waiting = [
        *(Waiting(uuid4(), a, key) for _ in range(5)),
        Waiting(uuid4(), b, other),
        Waiting(uuid4(), c, key),
        Waiting(uuid4(), b, key),
    ]
    batch = pick_batch(waiting, 4)
    owners = {item.id: item.tenant_id for item in waiting}
    assert [owners[i] for i in batch] == [a, c, b, a]
    assert batch[0] == waiting[0].id and waiting[5].id not in batch
    assert pick_batch([], 4) == []


async def test_a_batch_is_compatible_with_its_head_and_fair_across_tenants(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    flood, small = await make_owner(sessions, "flood"), await make_owner(sessions, "small")
    flooded = await enqueue(sessions, flood, 6, start=0)
    (wide,) = await enqueue(sessions, small, 1, start=10, width=128)
    (fits,) = await enqueue(sessions, small, 1, start=20)
    (unguided,) = await enqueue(sessions, small, 1, start=30, guidance=1.0)

    batch = await queue.claim_batch("w1", ["tiny"], max_batch=3)

    assert [g.id for g in batch] == [flooded[0], fits, flooded[1]]
    first = batch[0]
    assert first == ClaimedGeneration(
        id=flooded[0],
        tenant_id=flood.tenant_id,
        model_id=flood.model_id,
        model_version_id=flood.version_id,
        model_version=1,
        base_id="tiny",
        prompt="clip 0",
        negative_prompt="",
        seed=0,
        adapter_strength=1.0,
        attempt=1,
        **SHAPE,
    )
    row = await fetch(sessions, fits)
    assert (row.status, row.lease_owner, row.attempts) == (WorkStatus.RUNNING, "w1", 1)
    assert await event_types(sessions, fits) == ["started"]
    # Other bases are not this worker's; the wide and unguided ones wait for a batch of their own.
    assert await queue.claim_batch("w2", ["wan"], max_batch=4) == []
    assert {(await fetch(sessions, g)).status for g in (wide, unguided)} == {WorkStatus.QUEUED}
    assert await queue.peek(["tiny"], 2) == [(flood.tenant_id, flood.version_id)] * 2


async def test_concurrent_claimers_never_share_a_generation(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owners = [await make_owner(sessions, f"t{i}") for i in range(3)]
    queued = {g for i, owner in enumerate(owners) for g in await enqueue(sessions, owner, 5, start=i * 10)}

    async def worker(name: str) -> list[UUID]:
        got: list[UUID] = []
        while batch := await queue.claim_batch(name, ["tiny"], max_batch=2):
            got += [g.id for g in batch]
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
    claimed = [g for batch in results for g in batch]
    assert sorted(claimed) == sorted(queued)  # every generation once, none twice


async def test_lost_leases_requeue_then_fail(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owner = await make_owner(sessions, "t")
    (generation_id,) = await enqueue(sessions, owner, 1)
    t0 = datetime.now(UTC)
    await queue.claim_batch("w1", ["tiny"], 4, now=t0)
    assert await queue.heartbeat("w1", [generation_id], 3, now=t0 + timedelta(seconds=20)) == set()
    # Thirty seconds after the last beat the lease is gone, and another worker takes over.
    (second,) = await queue.claim_batch("w2", ["tiny"], 4, now=t0 + timedelta(seconds=51))
    assert (second.id, second.attempt) == (generation_id, 2)
    # The first worker no longer holds it: told to stop, and it can no longer finish it.
    assert await queue.heartbeat("w1", [generation_id], 4, now=t0 + timedelta(seconds=52)) == {generation_id}
    assert not await queue.finish_succeeded("w1", generation_id, output_bytes=1, gpu_seconds=1)
    assert (await fetch(sessions, generation_id)).step == 3

    assert await queue.claim_batch("w3", ["tiny"], 4, now=t0 + timedelta(seconds=200)) == []
    failed = await fetch(sessions, generation_id)
    assert failed.status is WorkStatus.FAILED
    assert "stopped responding 2 times (last on w2)" in (failed.failure_reason or "")
    assert await event_types(sessions, generation_id) == [
        "started",
        "progress",
        "requeued",
        "started",
        "failed",
    ]


async def test_a_dead_workers_batch_is_abandoned_at_once_and_counts_the_attempt(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owner = await make_owner(sessions, "t")
    ids = await enqueue(sessions, owner, 2)
    await queue.claim_batch("w1", ["tiny"], 4)
    await queue.claim_batch("w2", ["tiny"], 4)  # nothing left: w2 holds nothing
    await queue.abandon("w1")
    for generation_id in ids:
        requeued = await fetch(sessions, generation_id)
        assert (requeued.status, requeued.lease_owner, requeued.attempts) == (WorkStatus.QUEUED, None, 1)
        assert await event_types(sessions, generation_id) == ["started", "requeued"]
    # Well before any lease would have run out, another worker has them; a second death fails them.
    assert {c.id for c in await queue.claim_batch("w2", ["tiny"], 4)} == set(ids)
    await queue.abandon("w2")
    assert {(await fetch(sessions, i)).status for i in ids} == {WorkStatus.FAILED}


async def test_cancel_requests_reach_the_worker_and_release_keeps_the_attempt(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owner = await make_owner(sessions, "t")
    ids = await enqueue(sessions, owner, 3)
    batch = await queue.claim_batch("w1", ["tiny"], 3)
    assert [g.id for g in batch] == ids
    async with sessions() as session:
        mark_unscoped(session)
        (await session.get_one(Generation, ids[0])).cancel_requested = True
        (await session.get_one(Generation, ids[1])).cancel_requested = True
        await session.commit()

    assert await queue.heartbeat("w1", ids, 2) == {ids[0], ids[1]}
    assert await queue.finish_cancelled("w1", ids[0], gpu_seconds=1.5)
    # A worker shutting down hands the rest back: the one asked to stop ends, the other waits again.
    assert await queue.release("w1", ids[1:]) == {ids[1], ids[2]}
    cancelled, requeued = await fetch(sessions, ids[1]), await fetch(sessions, ids[2])
    assert (cancelled.status, requeued.status, requeued.attempts) == (
        WorkStatus.CANCELLED,
        WorkStatus.QUEUED,
        0,
    )
    (again,) = await queue.claim_batch("w2", ["tiny"], 3)
    assert (again.id, again.attempt) == (ids[2], 1)
    assert await queue.finish_succeeded("w2", ids[2], output_bytes=1234, gpu_seconds=2.0)
    assert not await queue.finish_failed("w2", ids[2], "too late")
    done = await fetch(sessions, ids[2])
    assert (done.status, done.output_bytes, done.gpu_seconds, done.step, done.lease_owner) == (
        WorkStatus.SUCCEEDED,
        1234,
        2.0,
        8,
        None,
    )
    assert (await fetch(sessions, ids[0])).gpu_seconds == 1.5
    assert await event_types(sessions, ids[2]) == ["started", "progress", "requeued", "started", "succeeded"]


async def test_a_running_generation_whose_lease_expires_after_a_cancel_request_ends_cancelled(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owner = await make_owner(sessions, "t")
    (generation_id,) = await enqueue(sessions, owner, 1)
    t0 = datetime.now(UTC)
    await queue.claim_batch("w1", ["tiny"], 1, now=t0)
    async with sessions() as session:
        mark_unscoped(session)
        (await session.get_one(Generation, generation_id)).cancel_requested = True
        await session.commit()
    assert await queue.claim_batch("w2", ["tiny"], 1, now=t0 + timedelta(seconds=31)) == []
    assert (await fetch(sessions, generation_id)).status is WorkStatus.CANCELLED


async def test_a_generation_whose_model_was_deleted_fails_rather_than_waiting_forever(
    sessions: async_sessionmaker[AsyncSession], queue: GenerationQueue
) -> None:
    owner = await make_owner(sessions, "t")
    (generation_id,) = await enqueue(sessions, owner, 1)
    async with sessions() as session:
        mark_unscoped(session)
        await session.delete(await session.get_one(Model, owner.model_id))
        await session.commit()
    assert await queue.claim_batch("w1", ["tiny"], 1) == []
    orphan = await fetch(sessions, generation_id)
    assert orphan.status is WorkStatus.FAILED and "deleted" in (orphan.failure_reason or "")
