"""Webhooks end to end: the API, the dispatcher and a real receiver on loopback, on SQLite and
PostgreSQL. Job events are written straight into the database, as the queue writes them."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import stat
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from rushes.webhooks import WebhookSignatureError, verify_signature
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from uuid_utils.compat import uuid7

from core.errors import Conflict, Invalid
from core.settings import Settings, WebhookSettings
from core.work.status import WorkStatus
from service.datasets.models import Dataset, DatasetVersion
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped, set_tenant
from service.generations.models import Generation, GenerationEvent
from service.jobs.models import FineTuneJob, JobEvent
from service.quotas.limits import Quota
from service.quotas.notices import notice_use
from service.webhooks import service
from service.webhooks.dispatcher import DispatchReport, dispatch_once, http_client, post_pinned
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from service.webhooks.schemas import WebhookCreate
from service.webhooks.signing import KEY_FILE, endpoint_secret, signing_key
from service.webhooks.urls import parse_endpoint_url, refusal, resolve_endpoint
from tests.helpers import Caller, sign_up
from tests.webhook_receiver import Receiver, running_receiver, tls_contexts

Client = AsyncTestClient[Litestar]

HOOKS = WebhookSettings(
    signing_key="k" * 40,  # type: ignore[arg-type]
    allow_http_loopback=True,
    request_timeout_seconds=2,
    max_attempts=3,
    retry_base_seconds=10,
    retry_max_seconds=60,
    # The app's own dispatcher runs once at start-up and then stays out of the tests' way.
    poll_interval_seconds=3600,
)
LATER = timedelta(minutes=2)  # past any retry's backoff under HOOKS


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks": HOOKS})


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def make_job(sessions: async_sessionmaker[AsyncSession], caller: Caller) -> UUID:
    async with sessions() as session:
        set_tenant(session, UUID(caller.tenant_id))
        dataset = Dataset(name=uuid4().hex, description="")
        session.add(dataset)
        await session.flush()
        version = DatasetVersion(dataset_id=dataset.id, number=1, items=[])
        session.add(version)
        await session.flush()
        job = FineTuneJob(
            dataset_version_id=version.id,
            base_id="tiny",
            config={},
            estimated_bytes=1 << 30,
            total_steps=10,
            queued_at=datetime.now(UTC),
            created_by=UUID(caller.user_id),
        )
        session.add(job)
        await session.commit()
        return job.id


async def add_events(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, job_id: UUID, *types: str
) -> list[UUID]:
    async with sessions() as session:
        set_tenant(session, UUID(tenant_id))
        start = await session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id))
        events = [
            JobEvent(job_id=job_id, seq=(start or 0) + n + 1, type=t, data={"step": n})
            for n, t in enumerate(types)
        ]
        session.add_all(events)
        await session.commit()
        return [e.id for e in events]


async def make_generation(sessions: async_sessionmaker[AsyncSession], caller: Caller) -> UUID:
    async with sessions() as session:
        set_tenant(session, UUID(caller.tenant_id))
        generation = Generation(
            base_id="tiny",
            prompt="a harbour at dusk",
            width=64,
            height=64,
            frames=9,
            steps=4,
            guidance=1.0,
            seed=1,
            adapter_strength=1.0,
            queued_at=datetime.now(UTC),
            created_by=UUID(caller.user_id),
        )
        session.add(generation)
        await session.commit()
        return generation.id


async def add_generation_events(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, generation_id: UUID, *types: str
) -> list[UUID]:
    async with sessions() as session:
        set_tenant(session, UUID(tenant_id))
        events = [
            GenerationEvent(generation_id=generation_id, seq=n + 1, type=t, data={"step": n})
            for n, t in enumerate(types)
        ]
        session.add_all(events)
        await session.commit()
        return [e.id for e in events]


async def dispatch(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], **kwargs: Any
) -> DispatchReport:
    return await dispatch_once(sessions, settings.webhooks, settings.data_dir, **kwargs)


async def create_hook(client: Client, caller: Caller, url: str, **body: Any) -> dict[str, Any]:
    created = await client.post("/v1/webhooks", json={"url": url, **body}, headers=caller.headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


async def deliveries(client: Client, caller: Caller, hook: dict[str, Any], query: str = "") -> dict[str, Any]:
    listed = await client.get(f"/v1/webhooks/{hook['id']}/deliveries{query}", headers=caller.headers)
    assert listed.status_code == 200, listed.text
    return dict(listed.json())


async def test_deliveries_are_signed_with_the_secret_shown_once(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url, description="CI")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["secret_version"] == 1
    # Every type but progress, unless asked.
    assert "fine_tune.progress" not in hook["event_types"] and "fine_tune.succeeded" in hook["event_types"]
    assert "generation.progress" not in hook["event_types"] and "generation.succeeded" in hook["event_types"]
    got = (await client.get(f"/v1/webhooks/{hook['id']}", headers=owner.headers)).json()
    assert "secret" not in got and got["url"] == receiver.url
    job_id = await make_job(sessions, owner)
    queued, _progress, succeeded = await add_events(
        sessions, owner.tenant_id, job_id, "queued", "progress", "succeeded"
    )

    report = await dispatch(settings, sessions)
    assert (report.queued, report.sent, report.succeeded) == (2, 2, 2)
    assert sorted(receiver.event_ids()) == sorted([str(queued), str(succeeded)])
    for request in receiver.requests:
        verify_signature(request.body, request.headers["rushes-signature"], secret)
        body = json.loads(request.body)
        assert body["id"] == request.headers["rushes-event-id"]
        assert body["tenant_id"] == owner.tenant_id and body["job_id"] == str(job_id)
        assert request.headers["content-type"] == "application/json"
        timestamp = int(request.headers["rushes-timestamp"])
        assert abs(time.time() - timestamp) < 60
        assert request.headers["rushes-signature"].startswith(f"t={timestamp},v1=")
        assert request.path == "/hook"
    first = json.loads(next(r.body for r in receiver.requests if r.headers["rushes-event-id"] == str(queued)))
    assert first["type"] == "fine_tune.queued" and first["seq"] == 1 and first["data"] == {"step": 0}
    assert datetime.fromisoformat(first["created_at"]).tzinfo is not None
    with pytest.raises(WebhookSignatureError):
        verify_signature(
            receiver.requests[0].body + b" ", receiver.requests[0].headers["rushes-signature"], secret
        )
    # The secret is derived, never stored.
    async with sessions() as session:
        mark_unscoped(session)
        for model in (WebhookEndpoint, WebhookDelivery, WebhookAttempt):
            rows = (await session.execute(select(model.__table__))).all()
            assert rows and secret not in repr(rows) and secret.removeprefix("whsec_") not in repr(rows)


async def test_generation_events_are_delivered_under_their_own_names(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    everything = await create_hook(client, owner, receiver.url)
    videos = await create_hook(
        client, owner, f"{receiver.url}?videos", event_types=["generation.succeeded", "generation.progress"]
    )
    job_id, generation_id = await make_job(sessions, owner), await make_generation(sessions, owner)
    (job_done,) = await add_events(sessions, owner.tenant_id, job_id, "succeeded")
    started, progress, done = await add_generation_events(
        sessions, owner.tenant_id, generation_id, "started", "progress", "succeeded"
    )

    assert (await dispatch(settings, sessions)).succeeded == 5
    sent = [(r.path, json.loads(r.body)) for r in receiver.requests]
    by_type = {(path, body["type"]): body for path, body in sent}
    # The default takes every kind's events but progress; the other endpoint what it chose.
    assert sorted(by_type) == [
        ("/hook", "fine_tune.succeeded"),
        ("/hook", "generation.started"),
        ("/hook", "generation.succeeded"),
        ("/hook?videos", "generation.progress"),
        ("/hook?videos", "generation.succeeded"),
    ]
    finished = by_type[("/hook", "generation.succeeded")]
    assert (finished["id"], finished["generation_id"], finished["seq"]) == (str(done), str(generation_id), 3)
    assert "job_id" not in finished
    assert by_type[("/hook", "fine_tune.succeeded")]["job_id"] == str(job_id)
    assert by_type[("/hook?videos", "generation.progress")]["id"] == str(progress)
    assert by_type[("/hook", "generation.started")]["id"] == str(started)
    listed = await deliveries(client, owner, videos)
    assert sorted(d["event_type"] for d in listed["items"]) == ["generation.progress", "generation.succeeded"]
    assert str(job_done) in receiver.event_ids() and everything["id"] != videos["id"]


async def test_quota_notices_reach_webhooks_as_the_tenants_own_events(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner, other = await sign_up(client), await sign_up(client)
    await create_hook(client, owner, receiver.url, event_types=["quota.warning", "quota.exhausted"])
    await create_hook(client, other, f"{receiver.url}?other")
    now = datetime.now(UTC)
    async with sessions() as session:
        set_tenant(session, UUID(owner.tenant_id))
        await notice_use(session, UUID(owner.tenant_id), Quota.STORAGE_BYTES, 900.0, 1000, now)
        # Seen again by another request: one notice per level and month.
        await notice_use(session, UUID(owner.tenant_id), Quota.STORAGE_BYTES, 950.0, 1000, now)
        await session.commit()

    assert (await dispatch(settings, sessions)).succeeded == 1
    (request,) = receiver.requests
    body = json.loads(request.body)
    assert request.path == "/hook"
    assert (body["type"], body["tenant_id"]) == ("quota.warning", owner.tenant_id)
    assert body["data"] == {
        "quota": "storage_bytes",
        "level": 80,
        "limit": 1000,
        "used": 900.0,
        "resets_at": None,
    }
    assert "seq" not in body and "job_id" not in body


async def test_retries_back_off_then_succeed_and_every_attempt_is_logged(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    job_id = await make_job(sessions, owner)
    (event_id,) = await add_events(sessions, owner.tenant_id, job_id, "started")
    receiver.fail_next = 2
    now = datetime.now(UTC)

    assert (await dispatch(settings, sessions, now=now)).sent == 1
    (pending,) = (await deliveries(client, owner, hook))["items"]
    assert pending["status"] == "pending" and pending["attempts"] == 1
    assert pending["last_status_code"] == 500 and "receiver says no" in pending["last_error"]
    wait = datetime.fromisoformat(pending["next_attempt_at"]) - now
    assert timedelta(seconds=5) <= wait <= timedelta(seconds=10)  # base 10 s, jittered down by up to half
    assert (await dispatch(settings, sessions, now=now + timedelta(seconds=1))).sent == 0  # not due yet

    assert (await dispatch(settings, sessions, now=now + LATER)).succeeded == 0
    assert (await dispatch(settings, sessions, now=now + 2 * LATER)).succeeded == 1
    assert receiver.event_ids() == [str(event_id)] * 3
    (done,) = (await deliveries(client, owner, hook))["items"]
    assert done["status"] == "succeeded" and done["attempts"] == 3 and done["next_attempt_at"] is None
    assert done["last_status_code"] == 200 and done["last_error"] is None and done["delivered_at"]
    assert done["event_id"] == str(event_id) and done["event_type"] == "fine_tune.started"
    assert done["payload"]["id"] == str(event_id)
    log = done["attempt_log"]
    assert [a["number"] for a in log] == [1, 2, 3]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert [a["error"] is None for a in log] == [False, False, True]
    assert all(a["duration_ms"] >= 0 and a["url"] == receiver.url for a in log)
    assert (await dispatch(settings, sessions, now=now + 3 * LATER)).sent == 0


async def test_a_delivery_fails_after_max_attempts_and_can_be_redelivered(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    job_id = await make_job(sessions, owner)
    await add_events(sessions, owner.tenant_id, job_id, "failed")
    receiver.fail_next = 100
    now = datetime.now(UTC)
    reports = [await dispatch(settings, sessions, now=now + n * LATER) for n in range(5)]
    assert [r.sent for r in reports] == [1, 1, 1, 0, 0]  # max_attempts is 3
    assert reports[2].failed == 1
    (failed,) = (await deliveries(client, owner, hook, "?status=failed"))["items"]
    assert failed["attempts"] == 3 and failed["next_attempt_at"] is None
    assert (await deliveries(client, owner, hook, "?status=pending"))["total"] == 0

    receiver.fail_next = 0
    url = f"/v1/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver"
    again = await client.post(url, headers=owner.headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending" and again.json()["attempts"] == 0
    assert (await client.post(url, headers=owner.headers)).status_code == 409  # already queued
    assert (await dispatch(settings, sessions, now=now + 5 * LATER)).succeeded == 1
    (redelivered,) = (await deliveries(client, owner, hook))["items"]
    assert redelivered["status"] == "succeeded" and redelivered["attempts"] == 1
    assert [a["status_code"] for a in redelivered["attempt_log"]] == [500, 500, 500, 200]
    # A succeeded delivery may be sent again too, e.g. after the receiver lost it.
    assert (await client.post(url, headers=owner.headers)).status_code == 202
    assert (await dispatch(settings, sessions, now=now + 6 * LATER)).succeeded == 1
    assert len(receiver.requests) == 5 and len(set(receiver.event_ids())) == 1


async def test_each_event_is_delivered_once_however_many_dispatchers_run(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    await create_hook(client, owner, receiver.url, event_types=["fine_tune.checkpoint", "fine_tune.sample"])
    job_id = await make_job(sessions, owner)
    events = await add_events(sessions, owner.tenant_id, job_id, *(["checkpoint", "sample"] * 15))
    now = datetime.now(UTC)
    # Several dispatchers at once, as several API replicas run them, each with its own pool.
    engines = [create_engine(settings.database_url) for _ in range(3)]
    try:
        for _ in range(4):
            await asyncio.gather(
                *(
                    dispatch_once(session_factory(e), settings.webhooks, settings.data_dir, now=now)
                    for e in engines
                )
            )
    finally:
        for engine in engines:
            await engine.dispose()
    while (await dispatch(settings, sessions, now=now)).sent:
        pass
    assert sorted(receiver.event_ids()) == sorted(str(e) for e in events)
    async with sessions() as session:
        mark_unscoped(session)
        sent = (await session.execute(select(WebhookDelivery.status, WebhookDelivery.attempts))).all()
        assert sorted(sent) == [(WorkStatus.SUCCEEDED, 1)] * len(events)


async def test_events_committed_out_of_order_are_not_skipped(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    await create_hook(client, owner, receiver.url)
    job_id = await make_job(sessions, owner)
    # A slow transaction made its event (id and time) first but commits after a later one
    # has already been dispatched.
    made_early = JobEvent(
        id=uuid7(), created_at=datetime.now(UTC), job_id=job_id, seq=2, type="checkpoint", data={}
    )
    await asyncio.sleep(0.01)
    (later,) = await add_events(sessions, owner.tenant_id, job_id, "queued")
    assert (await dispatch(settings, sessions)).sent == 1
    assert made_early.id < later
    async with sessions() as session:
        set_tenant(session, UUID(owner.tenant_id))
        session.add(made_early)
        await session.commit()
    assert (await dispatch(settings, sessions)).sent == 1
    assert receiver.event_ids() == [str(later), str(made_early.id)]


async def test_tenants_only_receive_their_own_events(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    with running_receiver() as other_receiver:
        mine, theirs = await sign_up(client, "Mine"), await sign_up(client, "Theirs")
        my_hook = await create_hook(client, mine, receiver.url)
        await create_hook(client, theirs, other_receiver.url)
        my_events = await add_events(
            sessions, mine.tenant_id, await make_job(sessions, mine), "queued", "started"
        )
        their_events = await add_events(
            sessions, theirs.tenant_id, await make_job(sessions, theirs), "queued"
        )
        await dispatch(settings, sessions)
        assert sorted(receiver.event_ids()) == sorted(str(e) for e in my_events)
        assert other_receiver.event_ids() == [str(e) for e in their_events]
        for request in other_receiver.requests:
            assert json.loads(request.body)["tenant_id"] == theirs.tenant_id
        # Their owner cannot see or touch my endpoint or its deliveries.
        delivery_id = (await deliveries(client, mine, my_hook))["items"][0]["id"]
        base = f"/v1/webhooks/{my_hook['id']}"
        for method, path, body in [
            ("GET", base, None),
            ("PATCH", base, {"description": "mine now"}),
            ("DELETE", base, None),
            ("POST", f"{base}/rotate-secret", None),
            ("GET", f"{base}/deliveries", None),
            ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ]:
            response = await client.request(method, path, json=body, headers=theirs.headers)
            assert response.status_code == 404, (method, path, response.text)
        assert (await client.get("/v1/webhooks", headers=theirs.headers)).json()["total"] == 1
        # Nor reach one of my deliveries through their own endpoint.
        their_hook = (await client.get("/v1/webhooks", headers=theirs.headers)).json()["items"][0]
        stolen = f"/v1/webhooks/{their_hook['id']}/deliveries/{delivery_id}/redeliver"
        assert (await client.post(stolen, headers=theirs.headers)).status_code == 404


async def test_rotating_the_secret_changes_the_signature(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    old = hook["secret"]
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=owner.headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old and rotated.json()["secret_version"] == 2
    job_id = await make_job(sessions, owner)
    await add_events(sessions, owner.tenant_id, job_id, "queued")
    await dispatch(settings, sessions)
    request = receiver.requests[-1]
    signature = request.headers["rushes-signature"]
    # For a while after a rotation the old secret still verifies, so receivers can switch over.
    assert signature.count("v1=") == 2
    verify_signature(request.body, signature, new)
    verify_signature(request.body, signature, old)

    settings = settings.model_copy(
        update={"webhooks": HOOKS.model_copy(update={"rotation_overlap_seconds": 0})}
    )
    await add_events(sessions, owner.tenant_id, job_id, "started")
    await dispatch(settings, sessions)
    request = receiver.requests[-1]
    signature = request.headers["rushes-signature"]
    assert signature.count("v1=") == 1
    verify_signature(request.body, signature, new)
    with pytest.raises(WebhookSignatureError):
        verify_signature(request.body, signature, old)


async def test_endpoints_are_managed_by_owners(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(
        client,
        owner,
        receiver.url,
        event_types=["fine_tune.succeeded", "fine_tune.failed", "fine_tune.failed"],
    )
    assert hook["event_types"] == ["fine_tune.succeeded", "fine_tune.failed"]
    base = f"/v1/webhooks/{hook['id']}"
    unknown = await client.post(
        "/v1/webhooks", json={"url": receiver.url, "event_types": ["succeeded"]}, headers=owner.headers
    )
    assert unknown.status_code == 400
    assert "fine_tune.succeeded" in unknown.text  # the names it could have meant
    changed = await client.patch(
        base, json={"description": "alerts", "event_types": ["fine_tune.progress"]}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] == "alerts"
    assert changed.json()["event_types"] == ["fine_tune.progress"]

    # A disabled endpoint is sent nothing, not even later what happened while it was off.
    off = await client.patch(base, json={"enabled": False}, headers=owner.headers)
    assert off.json()["enabled"] is False
    job_id = await make_job(sessions, owner)
    await add_events(sessions, owner.tenant_id, job_id, "progress")
    assert (await dispatch(settings, sessions)).sent == 0
    await client.patch(base, json={"enabled": True}, headers=owner.headers)
    assert (await dispatch(settings, sessions)).sent == 0
    (after,) = await add_events(sessions, owner.tenant_id, job_id, "progress")
    assert (await dispatch(settings, sessions)).sent == 1
    assert receiver.event_ids() == [str(after)]

    listed = await client.get("/v1/webhooks?limit=1", headers=owner.headers)
    assert listed.json()["total"] == 1 and listed.json()["items"][0]["id"] == hook["id"]
    assert (await client.delete(base, headers=owner.headers)).status_code == 204
    assert (await client.get(base, headers=owner.headers)).status_code == 404
    async with sessions() as session:
        mark_unscoped(session)
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0

    crowded = settings.model_copy(
        update={"webhooks": HOOKS.model_copy(update={"max_endpoints_per_tenant": 1})}
    )
    async with sessions() as session:
        set_tenant(session, UUID(owner.tenant_id))
        await service.create_endpoint(
            session, WebhookCreate(url=receiver.url), crowded.webhooks, settings.data_dir
        )
        with pytest.raises(Conflict, match="at most 1 webhook"):
            await service.create_endpoint(
                session, WebhookCreate(url=receiver.url), crowded.webhooks, settings.data_dir
            )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/hook", "https"),
        ("/relative/hook", "https"),
        ("https://user:password@127.0.0.1/hook", "user name or password"),
        ("https://127.0.0.1/hook#frag", "fragment"),
        ("http://10.1.2.3/hook", "not a public address"),
        ("https://192.168.0.10/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://0.0.0.0/hook", "not a public address"),
        ("https://[fd00::1]/hook", "not a public address"),
        ("https://[::ffff:10.0.0.1]/hook", "not a public address"),
        ("https://224.0.0.1/hook", "not a public address"),
        # IPv6 forms that embed an IPv4 address, and the ranges Python's is_global misses.
        ("https://[64:ff9b::a9fe:a9fe]/latest/meta-data", "NAT64"),
        ("https://[64:ff9b:1::808:808]/hook", "NAT64"),
        ("https://[2002:a9fe:a9fe::1]/hook", "6to4 for 169.254.169.254"),
        ("https://[2002:0a00:0001::]/hook", "6to4 for 10.0.0.1"),
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "Teredo"),
        ("https://[::a9fe:a9fe]/hook", "IPv4-compatible"),
        ("https://192.88.99.1/hook", "6to4 relay"),
        ("https://198.18.0.1/hook", "benchmarking"),
        ("https://[2001:db8::1]/hook", "documentation"),
        ("https://[fec0::1]/hook", "site-local"),
    ],
)
async def test_bad_urls_are_refused(client: Client, url: str, reason: str) -> None:
    owner = await sign_up(client)
    refused = await client.post("/v1/webhooks", json={"url": url}, headers=owner.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert reason in refused.json()["detail"]
    hook = await create_hook(client, owner, "http://127.0.0.1:9/hook")
    moved = await client.patch(f"/v1/webhooks/{hook['id']}", json={"url": url}, headers=owner.headers)
    assert moved.status_code == 422 and reason in moved.json()["detail"]


async def test_loopback_and_plain_http_need_the_development_switch() -> None:
    with pytest.raises(Invalid, match="must use https"):
        parse_endpoint_url("http://example.com/hook", allow_http_loopback=False)
    for url in ["https://127.0.0.1/hook", "https://[::1]/hook", "https://localhost/hook"]:
        parsed = parse_endpoint_url(url, allow_http_loopback=False)
        with pytest.raises(Invalid, match="not a public address"):
            await resolve_endpoint(parsed, allow_http_loopback=False)
    # With the switch, loopback is fine, over http too, but nothing else private is.
    local = parse_endpoint_url("http://localhost:8080/hook", allow_http_loopback=True)
    assert "127.0.0.1" in await resolve_endpoint(local, allow_http_loopback=True)
    public = parse_endpoint_url("https://93.184.215.14:8443/hook?x=1", allow_http_loopback=False)
    assert await resolve_endpoint(public, allow_http_loopback=False) == ["93.184.215.14"]


async def test_the_address_is_checked_again_when_sending(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    await add_events(sessions, owner.tenant_id, await make_job(sessions, owner), "queued")
    strict = HOOKS.model_copy(update={"allow_http_loopback": False})
    assert (await dispatch_once(sessions, strict, settings.data_dir)).sent == 1
    assert receiver.requests == []
    (refused,) = (await deliveries(client, owner, hook))["items"]
    assert refused["status"] == "pending" and refused["last_status_code"] is None
    assert "must use https" in refused["last_error"]


async def test_a_name_that_resolves_elsewhere_at_send_time_is_refused(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Saved while the name pointed at the receiver; by the time of sending, DNS answers with
    # the cloud metadata service's address behind NAT64. Nothing is sent anywhere.
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    await add_events(sessions, owner.tenant_id, await make_job(sessions, owner), "queued")

    async def rebound(host: str, port: int, **_: Any) -> list[Any]:
        return [(10, 1, 6, "", ("64:ff9b::a9fe:a9fe", port, 0, 0))]

    monkeypatch.setattr("service.webhooks.urls.anyio.getaddrinfo", rebound)
    assert (await dispatch(settings, sessions)).succeeded == 0
    assert receiver.requests == []
    (refused,) = (await deliveries(client, owner, hook))["items"]
    assert refused["status"] == "pending" and "NAT64" in refused["last_error"]


def test_public_addresses_are_allowed_including_6to4_of_a_public_one() -> None:
    for address in ["93.184.215.14", "2606:4700:4700::1111", "2002:808:808::1", "::ffff:8.8.8.8"]:
        assert refusal(ipaddress.ip_address(address)) is None, address


async def test_redirects_and_timeouts_are_failures_with_reasons(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client)
    hook = await create_hook(client, owner, receiver.url)
    job_id = await make_job(sessions, owner)
    await add_events(sessions, owner.tenant_id, job_id, "queued")
    receiver.status, receiver.headers = 302, {"Location": receiver.url + "/elsewhere"}
    await dispatch(settings, sessions)
    assert [r.path for r in receiver.requests] == ["/hook"]  # the redirect is not followed
    (redirected,) = (await deliveries(client, owner, hook))["items"]
    assert redirected["last_status_code"] == 302 and "redirects are not followed" in redirected["last_error"]

    receiver.status, receiver.headers, receiver.delay = 200, {}, 1.5
    quick = HOOKS.model_copy(update={"request_timeout_seconds": 0.5})
    await add_events(sessions, owner.tenant_id, job_id, "started")
    await dispatch_once(sessions, quick, settings.data_dir)
    slow = next(
        d for d in (await deliveries(client, owner, hook))["items"] if d["event_type"] == "fine_tune.started"
    )
    assert slow["status"] == "pending" and "No answer within 0.5 s" in slow["last_error"]
    assert slow["last_duration_ms"] >= 450


@pytest.mark.parametrize(
    ("certificate_host", "delivered"), [("localhost", True), ("elsewhere.example", False)]
)
async def test_https_is_verified_against_the_host_name_not_the_address(
    client: Client,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    certificate_host: str,
    delivered: bool,
) -> None:
    server_tls, trusting = tls_contexts(tmp_path, certificate_host)
    owner = await sign_up(client)
    with running_receiver(tls=server_tls) as secure:
        hook = await create_hook(client, owner, secure.url)
        await add_events(sessions, owner.tenant_id, await make_job(sessions, owner), "queued")
        # The dispatcher's own client, trusting the test CA instead of the system's.
        async with httpx.AsyncClient(verify=trusting, follow_redirects=False, trust_env=False) as http:
            report = await dispatch(settings, sessions, http=http)
        (delivery,) = (await deliveries(client, owner, hook))["items"]
        if delivered:
            # Connected to an address, yet the certificate was checked against "localhost".
            assert report.succeeded == 1 and delivery["status"] == "succeeded"
            assert secure.requests[0].headers["host"] == hook["url"].split("/")[2]
        else:
            assert report.succeeded == 0 and secure.requests == []
            assert "certificate" in delivery["last_error"].lower()


async def test_each_checked_address_is_tried_in_turn(receiver: Receiver) -> None:
    # As for a host whose first address (often IPv6) is unreachable from here: nothing
    # listens on 127.0.0.2, the receiver is on 127.0.0.1.
    url = httpx.URL(receiver.url)
    async with http_client(HOOKS) as http:
        response = await post_pinned(http, url, ["127.0.0.2", "127.0.0.1"], b"{}", {"Host": "example"})
        await response.aclose()
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):
            await post_pinned(http, url, ["127.0.0.2"], b"{}", {})
    assert [r.headers["host"] for r in receiver.requests] == ["example"]


def test_signing_key_is_generated_once_and_private(tmp_path: Path) -> None:
    generated = WebhookSettings()
    key = signing_key(generated, tmp_path)
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_key(generated, tmp_path) == key == path.read_text().strip().encode()
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no staging file left behind
    endpoint_id = uuid4()
    secret = endpoint_secret(key, endpoint_id, 1)
    assert secret == endpoint_secret(key, endpoint_id, 1)
    assert secret != endpoint_secret(key, endpoint_id, 2) != endpoint_secret(key, uuid4(), 1)
    configured = WebhookSettings(signing_key="s" * 32)  # type: ignore[arg-type]
    assert signing_key(configured, tmp_path) == b"s" * 32
    with pytest.raises(ValueError, match="at least 32"):
        WebhookSettings(signing_key="short")  # type: ignore[arg-type]
