"""Usage metering: exact sums and day buckets from the usage ledger and the work rows, the
default period, tenant isolation, the admin view and refused periods.

Work is made over the API; a worker's part (lease, heartbeats, end, each charging the ledger)
is played through the real ``JobQueue`` and ``GenerationQueue`` with the instants the test names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.settings import Settings
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.accounts.models import User
from service.db.engine import create_engine, session_factory
from service.generations.models import Generation
from service.generations.queue import GenerationQueue
from service.jobs.models import FineTuneJob
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot
from tests.helpers import Caller, add_member, fine_tune_body, make_model_version, sign_up
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
PROMPT = "rain on a window at night"
MARCH = "since=2024-03-01&until=2024-03-31"


FINE_TUNE, GENERATION = FineTuneJob, Generation
SUCCEEDED, FAILED, CANCELLED = WorkStatus.SUCCEEDED, WorkStatus.FAILED, WorkStatus.CANCELLED
NOW = "now"  # stands for the moment the world is built


def today() -> date:
    return datetime.now(UTC).date()


class Ended(NamedTuple):
    """A finished piece of work as a worker leaves it."""

    kind: type[FineTuneJob] | type[Generation]
    status: WorkStatus
    finished: str  # ISO 8601 in UTC, or NOW
    gpu_seconds: float
    output_bytes: int | None = None


# Tenant A's finished work. Only the first three fine-tunes and two generations end in March.
A_ENDED = [
    Ended(FINE_TUNE, SUCCEEDED, "2024-03-05 10:00:00", 100.5),
    Ended(FINE_TUNE, FAILED, "2024-03-05 23:59:59.999", 20.25),
    Ended(FINE_TUNE, CANCELLED, "2024-03-31 23:30:00", 3.0),
    Ended(FINE_TUNE, SUCCEEDED, "2024-04-01 00:00:00", 50.0),
    Ended(GENERATION, SUCCEEDED, "2024-03-05 12:00:00", 1.25, 1000),
    Ended(GENERATION, FAILED, "2024-03-20 00:00:00", 0.5),
    Ended(GENERATION, SUCCEEDED, "2024-02-29 23:59:59.999", 9.0, 500),
]
# Tenant B's, on the same days and today, far larger so that any of it in A's usage shows.
B_ENDED = [
    Ended(FINE_TUNE, SUCCEEDED, "2024-03-05 12:00:00", 10_000.0),
    Ended(GENERATION, SUCCEEDED, "2024-03-05 12:00:00", 777.0, 99_999),
    Ended(GENERATION, SUCCEEDED, NOW, 888.0, 88_888),
]


@dataclass
class Tenant:
    caller: Caller
    model_id: str
    dataset_id: str
    footage_bytes: int


@dataclass
class World:
    a: Tenant
    b: Tenant
    a_outputs: int


class Builder:
    """Makes work over the API, then plays a worker's part through the queues."""

    def __init__(self, client: Client, settings: Settings, storage: ObjectStorage, folder: Path) -> None:
        self.client, self.settings, self.storage, self.folder = client, settings, storage, folder
        self.engine = create_engine(settings.database_url)
        self.jobs = JobQueue(session_factory(self.engine), settings.jobs)
        self.generations = GenerationQueue(session_factory(self.engine), settings.generations)

    async def tenant(self, name: str, adapter: bytes) -> Tenant:
        """A tenant with one model version on one dataset; that fine-tune succeeded just now."""
        caller = await sign_up(self.client, name)
        clip = make_clip(self.folder / f"{uuid.uuid4().hex}.mp4")
        await make_model_version(self.client, caller, self.settings, self.storage, clip, adapter=adapter)
        models = await self.items(caller, "/v1/models")
        datasets = await self.items(caller, "/v1/datasets")
        assets = await self.items(caller, "/v1/assets")
        return Tenant(caller, models[0]["id"], datasets[0]["id"], sum(a["size"] for a in assets))

    async def items(self, caller: Caller, path: str) -> list[dict[str, Any]]:
        return list((await self.client.get(path, headers=caller.headers)).json()["items"])

    async def create(self, tenant: Tenant, kind: type[FineTuneJob] | type[Generation]) -> str:
        if kind is FINE_TUNE:
            path, body = "/v1/fine-tunes", fine_tune_body(tenant.dataset_id, 1, model_id=tenant.model_id)
        else:
            path, body = "/v1/generations", {"model_id": tenant.model_id, "prompt": PROMPT}
        created = await self.client.post(path, json=body, headers=tenant.caller.headers)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def lease(self, row_id: str, now: datetime) -> Lease:
        """Lease the job just made, as a worker would: it is the only one queued."""
        lease = await self.jobs.lease("usage-test", WorkerSlot(free_bytes=2**40), now=now)
        assert lease is not None and str(lease.job_id) == row_id
        return lease

    async def ended(self, tenant: Tenant, work: Ended) -> None:
        finished = datetime.now(UTC) if work.finished == NOW else datetime.fromisoformat(work.finished + "Z")
        row_id = await self.create(tenant, work.kind)
        started = finished - timedelta(minutes=5)
        if work.kind is FINE_TUNE:
            lease = await self.lease(row_id, started)
            assert await self.jobs.finish(lease, work.status, gpu_seconds=work.gpu_seconds, now=finished)
            return
        (claimed,) = await self.generations.claim_batch("usage-test", ["tiny"], 1, now=started)
        assert str(claimed.id) == row_id
        if work.status == SUCCEEDED:
            assert await self.generations.finish_succeeded(
                "usage-test",
                claimed.id,
                output_bytes=work.output_bytes or 0,
                gpu_seconds=work.gpu_seconds,
                now=finished,
            )
        else:
            assert await self.generations.finish_failed(
                "usage-test", claimed.id, "broken", gpu_seconds=work.gpu_seconds, now=finished
            )

    async def running(self, tenant: Tenant, gpu_seconds: float) -> None:
        """A fine-tune a worker is running, with the GPU seconds its heartbeats charged so far."""
        now = datetime.now(UTC)
        lease = await self.lease(await self.create(tenant, FINE_TUNE), now - timedelta(hours=1))
        beat = await self.jobs.heartbeat(lease, step=3, gpu_seconds=gpu_seconds, now=now)
        assert beat.held


@pytest.fixture
async def world(client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path) -> World:
    build = Builder(client, settings, storage, tmp_path)
    a = await build.tenant("Studio A", b"a" * 1000)
    b = await build.tenant("Studio B", b"b" * 5000)
    for tenant, ended in ((a, A_ENDED), (b, B_ENDED)):
        for work in ended:
            await build.ended(tenant, work)
        await build.running(tenant, 42.0 if tenant is a else 5555.0)
    # And one of A's fine-tunes ended forty days ago (in a month before this one).
    forty_days_ago = f"{today() - timedelta(days=40)} 12:00:00"
    await build.ended(a, Ended(FINE_TUNE, SUCCEEDED, forty_days_ago, 8.0))
    await build.create(a, FINE_TUNE)  # queued, never started: counts nowhere

    # A worker renders two of A's generations together: one succeeds, the other is still running.
    rendered, under_way = await build.create(a, GENERATION), await build.create(a, GENERATION)
    claimed = await build.generations.claim_batch("usage-test", ["tiny"], 2)
    assert {str(c.id) for c in claimed} == {rendered, under_way}
    assert await build.generations.heartbeat("usage-test", [c.id for c in claimed], step=4) == set()
    assert await build.generations.finish_succeeded(
        "usage-test", uuid.UUID(rendered), output_bytes=250, gpu_seconds=1.5
    )
    await build.create(a, GENERATION)  # queued: counts nowhere
    await build.engine.dispose()
    return World(a, b, a_outputs=1000 + 500 + 250)


async def _usage(client: Client, caller: Caller, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v1/usage{'?' + query if query else ''}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_month_sums_and_buckets_only_the_tenants_work(client: Client, world: World) -> None:
    usage = await _usage(client, world.a.caller, MARCH)

    assert (usage["since"], usage["until"]) == ("2024-03-01", "2024-03-31")
    # Fine-tunes ended on 5 March (twice, once a millisecond before midnight) and 31 March; not
    # at midnight on 1 April. Generations on 5 and 20 March, not just before midnight on 29
    # February. Work under way today is outside the period.
    assert usage["fine_tunes"] == {"count": 3, "succeeded": 1, "gpu_seconds": 123.75}
    # The failed generation on 20 March counts, and is not charged.
    assert usage["generations"] == {"count": 2, "succeeded": 1, "gpu_seconds": 1.25, "output_bytes": 1000}
    assert usage["days"] == [
        {
            "date": "2024-03-05",
            "fine_tune_gpu_seconds": 120.75,
            "generation_gpu_seconds": 1.25,
            "generations": 1,
        },
        {"date": "2024-03-20", "fine_tune_gpu_seconds": 0.0, "generation_gpu_seconds": 0.0, "generations": 1},
        {"date": "2024-03-31", "fine_tune_gpu_seconds": 3.0, "generation_gpu_seconds": 0.0, "generations": 0},
    ]
    # Storage is what the tenant holds now, whatever the period.
    assert usage["storage"] == {
        "footage_bytes": world.a.footage_bytes,
        "adapter_bytes": 1000,
        "output_bytes": world.a_outputs,
        "total_bytes": world.a.footage_bytes + 1000 + world.a_outputs,
    }

    one_day = await _usage(client, world.a.caller, "since=2024-03-05&until=2024-03-05")
    assert one_day["fine_tunes"] == {"count": 2, "succeeded": 1, "gpu_seconds": 120.75}
    assert one_day["generations"]["gpu_seconds"] == 1.25
    assert [d["date"] for d in one_day["days"]] == ["2024-03-05"]

    other = await _usage(client, world.b.caller, MARCH)
    assert other["fine_tunes"] == {"count": 1, "succeeded": 1, "gpu_seconds": 10_000.0}
    assert other["generations"] == {"count": 1, "succeeded": 1, "gpu_seconds": 777.0, "output_bytes": 99_999}
    assert other["storage"]["adapter_bytes"] == 5000
    assert other["storage"]["output_bytes"] == 99_999 + 88_888


async def test_the_default_period_is_this_month_with_work_under_way_on_today(
    client: Client, world: World
) -> None:
    usage = await _usage(client, world.a.caller)
    day = today()

    assert (usage["since"], usage["until"]) == (day.replace(day=1).isoformat(), day.isoformat())
    # The fine-tune that made the model (not run by a worker, so never charged) and the running
    # one (42 so far); the succeeded and the running generation. Queued work that never started
    # counts nowhere.
    assert usage["fine_tunes"] == {"count": 2, "succeeded": 1, "gpu_seconds": 42.0}
    assert usage["generations"] == {"count": 2, "succeeded": 1, "gpu_seconds": 1.5, "output_bytes": 250}
    assert usage["days"] == [
        {
            "date": day.isoformat(),
            "fine_tune_gpu_seconds": 42.0,
            "generation_gpu_seconds": 1.5,
            "generations": 2,
        }
    ]

    # A period from forty days ago to today holds the fine-tune that ended then, and today's work.
    since = day - timedelta(days=40)
    wider = await _usage(client, world.a.caller, f"since={since}&until={day}")
    assert [(d["date"], d["fine_tune_gpu_seconds"]) for d in wider["days"]] == [
        (since.isoformat(), 8.0),
        (day.isoformat(), 42.0),
    ]
    assert wider["fine_tunes"]["gpu_seconds"] == 50.0
    # until alone: since is the first day of until's month.
    assert (await _usage(client, world.a.caller, "until=2024-03-20"))["since"] == "2024-03-01"

    member = await add_member(client, world.a.caller)
    assert await _usage(client, member, MARCH) == await _usage(client, world.a.caller, MARCH)
    other = await _usage(client, world.b.caller)
    assert other["fine_tunes"] == {"count": 2, "succeeded": 1, "gpu_seconds": 5555.0}
    assert other["generations"] == {"count": 1, "succeeded": 1, "gpu_seconds": 888.0, "output_bytes": 88_888}


async def test_admins_read_any_tenants_usage(client: Client, world: World, settings: Settings) -> None:
    admin = await sign_up(client, "Platform")
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(User).where(User.email == admin.email).values(is_platform_admin=True))
    await engine.dispose()

    for tenant in (world.a, world.b):
        for query in ("", f"?{MARCH}"):
            seen = await client.get(
                f"/v1/admin/tenants/{tenant.caller.tenant_id}/usage{query}", headers=admin.headers
            )
            assert seen.status_code == 200, seen.text
            assert seen.json() == await _usage(client, tenant.caller, query.lstrip("?"))
    # Reading them leaves nothing of theirs in the admin's own tenant's usage.
    assert (await _usage(client, admin))["fine_tunes"]["count"] == 0

    missing = await client.get(f"/v1/admin/tenants/{uuid.uuid4()}/usage", headers=admin.headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "No such tenant."
    refused = await client.get(
        f"/v1/admin/tenants/{world.a.caller.tenant_id}/usage?since=2024-03-02&until=2024-03-01",
        headers=admin.headers,
    )
    assert refused.status_code == 422


async def test_a_new_tenant_has_no_usage(client: Client) -> None:
    caller = await sign_up(client, "Empty")
    usage = await _usage(client, caller, MARCH)
    assert usage == {
        "since": "2024-03-01",
        "until": "2024-03-31",
        "fine_tunes": {"count": 0, "succeeded": 0, "gpu_seconds": 0.0},
        "generations": {"count": 0, "succeeded": 0, "gpu_seconds": 0.0, "output_bytes": 0},
        "storage": {"footage_bytes": 0, "adapter_bytes": 0, "output_bytes": 0, "total_bytes": 0},
        "days": [],
    }


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("since=2024-03-02&until=2024-03-01", 422, "since (2024-03-02) is after until (2024-03-01)."),
        ("since=2099-01-01", 422, "until defaults to today"),
        ("since=2024-01-01&until=2025-01-01", 422, "at most 366 days; 2024-01-01 to 2025-01-01 is 367 days"),
        ("since=2024-13-01", 400, ""),
        ("until=yesterday", 400, ""),
    ],
)
async def test_bad_periods_are_refused_with_the_reason(
    client: Client, query: str, status: int, words: str
) -> None:
    caller = await sign_up(client, "Ranges")
    response = await client.get(f"/v1/usage?{query}", headers=caller.headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]


async def test_a_period_may_be_as_long_as_a_leap_year(client: Client) -> None:
    caller = await sign_up(client, "Leap")
    for since, until in (("2024-01-01", "2024-12-31"), ("2023-01-01", "2024-01-01")):
        usage = await _usage(client, caller, f"since={since}&until={until}")
        assert (usage["since"], usage["until"]) == (since, until)
