"""The database-backed job queue, on SQLite and PostgreSQL, with real concurrent leasers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import JobSettings, Settings
from core.work.status import WorkStatus
from service.accounts.models import Tenant, User
from service.datasets.models import Dataset, DatasetVersion
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.jobs.models import FineTuneJob, JobEvent, TenantCompute
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot

GiB = 1 << 30
BIG = WorkerSlot(free_bytes=80 * GiB, total_bytes=80 * GiB)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def queue(sessions: async_sessionmaker[AsyncSession]) -> JobQueue:
    return JobQueue(sessions, JobSettings(lease_seconds=30))


async def make_tenant(sessions: async_sessionmaker[AsyncSession], name: str) -> tuple[UUID, UUID, UUID]:
    async with sessions() as session:
        mark_unscoped(session)
        tenant = Tenant(name=name)
        user = User(email=f"{uuid4().hex}@example.com", password_hash="x", is_platform_admin=False)
        session.add_all([tenant, user])
        await session.flush()
        dataset = Dataset(tenant_id=tenant.id, name="d", description="")
        session.add(dataset)
        await session.flush()
        version = DatasetVersion(tenant_id=tenant.id, dataset_id=dataset.id, number=1, items=[])
        session.add(version)
        await session.commit()
        return tenant.id, user.id, version.id


async def enqueue(
    sessions: async_sessionmaker[AsyncSession],
    owner: tuple[UUID, UUID, UUID],
    n: int,
    size: int = 10 * GiB,
    start: int = 0,
) -> list[UUID]:
    tenant_id, user_id, version_id = owner
    base = datetime(2026, 1, 1, tzinfo=UTC)
    async with sessions() as session:
        mark_unscoped(session)
        jobs = [
            FineTuneJob(
                tenant_id=tenant_id,
                dataset_version_id=version_id,
                base_id="tiny",
                config={},
                estimated_bytes=size,
                total_steps=10,
                max_attempts=2,
                queued_at=base + timedelta(seconds=start + i),
                created_by=user_id,
            )
            for i in range(n)
        ]
        session.add_all(jobs)
        await session.commit()
        return [job.id for job in jobs]


async def job(sessions: async_sessionmaker[AsyncSession], job_id: UUID) -> FineTuneJob:
    async with sessions() as session:
        mark_unscoped(session)
        return await session.get_one(FineTuneJob, job_id)


async def test_concurrent_workers_never_share_a_job(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue
) -> None:
    owners = [await make_tenant(sessions, f"t{i}") for i in range(3)]
    queued = {j for owner in owners for j in await enqueue(sessions, owner, 4)}

    async def worker(name: str) -> list[Lease]:
        got = []
        while (lease := await queue.lease(name, BIG)) is not None:
            got.append(lease)
        return got

    results = await asyncio.gather(*(worker(f"w{i}") for i in range(6)))
    leased = [lease.job_id for leases in results for lease in leases]
    assert sorted(leased) == sorted(queued)  # every job once, none twice
    assert (await job(sessions, leased[0])).status is WorkStatus.RUNNING


async def test_fair_share_alternates_between_tenants(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue
) -> None:
    heavy, light = await make_tenant(sessions, "heavy"), await make_tenant(sessions, "light")
    await enqueue(sessions, heavy, 4, start=0)
    await enqueue(sessions, light, 4, start=100)  # queued later: FIFO would run all of heavy first
    order = []
    for _ in range(8):
        lease = await queue.lease("w", BIG)
        assert lease is not None
        order.append("heavy" if lease.tenant_id == heavy[0] else "light")
        # Each job's first minute of GPU time counts against its tenant.
        await queue.heartbeat(lease, step=1, gpu_seconds=60)
    assert order == ["heavy", "light"] * 4


async def test_memory_and_concurrency_caps(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue
) -> None:
    capped, other = await make_tenant(sessions, "capped"), await make_tenant(sessions, "other")
    big = await enqueue(sessions, other, 1, size=70 * GiB)
    await enqueue(sessions, capped, 3, size=8 * GiB, start=10)
    async with sessions() as session:
        mark_unscoped(session)
        session.add(TenantCompute(tenant_id=capped[0], concurrency_cap=1))
        await session.commit()
    small_slot = WorkerSlot(free_bytes=24 * GiB, total_bytes=24 * GiB)
    first = await queue.lease("w1", small_slot)
    assert first is not None and first.tenant_id == capped[0]  # the 70 GiB job does not fit
    assert await queue.lease("w2", small_slot) is None  # the capped tenant has one running
    assert (await queue.lease("w3", BIG)).job_id == big[0]  # type: ignore[union-attr]


async def test_lost_leases_requeue_then_fail(
    sessions: async_sessionmaker[AsyncSession], queue: JobQueue
) -> None:
    (job_id,) = await enqueue(sessions, await make_tenant(sessions, "t"), 1)
    t0 = datetime.now(UTC)
    first = await queue.lease("w1", BIG, now=t0)
    assert first is not None and first.attempt == 1
    assert (await queue.heartbeat(first, step=3, gpu_seconds=5, now=t0 + timedelta(seconds=20))).held
    # Thirty seconds after the last beat, the lease is gone and another worker takes over.
    second = await queue.lease("w2", BIG, now=t0 + timedelta(seconds=51))
    assert second is not None and (second.job_id, second.attempt) == (job_id, 2)
    stale = await queue.heartbeat(first, step=4, gpu_seconds=5, now=t0 + timedelta(seconds=52))
    assert stale == stale.__class__(held=False, cancel=False)
    assert (await job(sessions, job_id)).step == 3  # the stale worker's step was not recorded
    assert await queue.lease("w3", BIG, now=t0 + timedelta(seconds=200)) is None
    failed = await job(sessions, job_id)
    assert failed.status is WorkStatus.FAILED
    assert "stopped responding 2 times" in (failed.failure_reason or "")
    assert failed.gpu_seconds == pytest.approx(5)
    async with sessions() as session:
        mark_unscoped(session)
        events = (
            await session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        ).all()
    assert [e.type for e in events] == ["started", "requeued", "started", "failed"]
    assert [e.seq for e in events] == [1, 2, 3, 4]


async def test_release_finish_and_cancel(sessions: async_sessionmaker[AsyncSession], queue: JobQueue) -> None:
    (job_id,) = await enqueue(sessions, await make_tenant(sessions, "t"), 1)
    lease = await queue.lease("w1", BIG)
    assert lease is not None
    assert await queue.release(lease, gpu_seconds=2)
    again = await queue.lease("w2", BIG)
    assert again is not None and again.attempt == 1  # a clean hand-back costs no attempt
    async with sessions() as session:
        mark_unscoped(session)
        (await session.get_one(FineTuneJob, job_id)).cancel_requested = True
        await session.commit()
    assert (await queue.heartbeat(again, step=1, gpu_seconds=1)).cancel
    assert await queue.finish(again, WorkStatus.CANCELLED, gpu_seconds=1)
    done = await job(sessions, job_id)
    assert (done.status, done.gpu_seconds, done.lease_owner) == (WorkStatus.CANCELLED, pytest.approx(4), None)
    assert not await queue.finish(again, WorkStatus.SUCCEEDED, gpu_seconds=1)
