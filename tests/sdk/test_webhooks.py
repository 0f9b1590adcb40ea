"""``client.webhooks`` against the real service, and ``rushes.webhooks.verify_signature`` against
real deliveries made by the dispatcher to a receiver on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import rushes
from litestar.testing import AsyncTestClient
from rushes import types
from rushes.webhooks import WebhookSignatureError, verify_signature

from core.settings import DatabaseSettings, Settings, StorageSettings, WebhookSettings
from core.storage import storage_from_settings
from service.app import create_app
from service.datasets.models import Dataset, DatasetVersion
from service.db.engine import create_engine, session_factory
from service.db.migrate import migrate
from service.db.tenancy import set_tenant
from service.jobs.models import FineTuneJob, JobEvent
from service.webhooks.dispatcher import dispatch_once
from tests.helpers import PASSWORD
from tests.sdk.conftest import LiveServer
from tests.webhook_receiver import Receiver, running_receiver

DOCS = Path(__file__).parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_test"
# A public address literal: accepted without a name lookup, and never called in these tests.
PUBLIC_URL = "https://93.184.215.14/rushes"


def docs_recipe() -> str:
    section = DOCS.read_text().split("## Verifying a delivery", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the verification section has no python block"
    return match.group(1)


def signed(body: bytes, timestamp: int, *secrets: str) -> str:
    signatures = [
        hmac.new(s.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets
    ]
    return ",".join([f"t={timestamp}", *(f"v1={s}" for s in signatures)])


BODY = b'{"id":"e1","type":"fine_tune.succeeded"}'
NOW = 1_800_000_000


def test_verify_signature_accepts_genuine_recent_payloads() -> None:
    verify_signature(BODY, signed(BODY, int(time.time()), SECRET), SECRET)
    verify_signature(BODY, signed(BODY, NOW, SECRET), SECRET, now=NOW + 300)
    verify_signature(BODY, signed(BODY, NOW, "whsec_new", SECRET), SECRET, now=NOW)  # during a rotation
    verify_signature(BODY, signed(BODY, NOW - 3600, SECRET), SECRET, tolerance=0)
    assert issubclass(WebhookSignatureError, rushes.RushesError)


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        pytest.param(BODY + b" ", signed(BODY, NOW, SECRET), id="tampered body"),
        pytest.param(BODY, signed(BODY, NOW, "whsec_other"), id="wrong secret"),
        pytest.param(BODY, signed(BODY, NOW - 301, SECRET), id="too old"),
        pytest.param(BODY, signed(BODY, NOW + 301, SECRET), id="from the future"),
        pytest.param(BODY, signed(BODY, NOW, SECRET).split(",", 1)[1], id="no timestamp"),
        pytest.param(BODY, f"t={NOW}", id="no signature"),
        pytest.param(BODY, signed(BODY, NOW, SECRET).replace("v1=", "v0="), id="unknown scheme only"),
        pytest.param(BODY, "", id="empty"),
    ],
)
def test_verify_signature_refuses(payload: bytes, header: str) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_signature(payload, header, SECRET, now=NOW)


def test_webhook_endpoints(live_server: LiveServer, api_key: str) -> None:
    with rushes.Client(api_key=api_key, base_url=live_server.url) as client:
        created = client.webhooks.create(
            url=PUBLIC_URL, description="ops", event_types=["fine_tune.failed", "fine_tune.succeeded"]
        )
        assert isinstance(created, types.WebhookWithSecret)
        assert created.secret.startswith("whsec_") and created.event_types == [
            "fine_tune.succeeded",
            "fine_tune.failed",
        ]
        assert [w.id for w in client.webhooks.list()] == [created.id]
        got = client.webhooks.get(created.id)
        assert isinstance(got, types.Webhook) and not hasattr(got, "secret") and got.url == PUBLIC_URL
        updated = client.webhooks.update(created.id, enabled=False, event_types=["generation.progress"])
        assert (updated.enabled, updated.event_types, updated.description) == (
            False,
            ["generation.progress"],
            "ops",
        )
        rotated = client.webhooks.rotate_secret(created.id)
        assert rotated.secret != created.secret and rotated.secret_version == 2 and rotated.secret_rotated_at
        assert client.webhooks.deliveries(created.id).first_page().total == 0
        with pytest.raises(rushes.NotFoundError):
            client.webhooks.redeliver(created.id, str(uuid4()))
        with pytest.raises(rushes.UnprocessableEntityError) as refused:
            client.webhooks.create(url="https://10.0.0.1/hook")
        assert "not a public address" in str(refused.value.body)
        client.webhooks.delete(created.id)
        with pytest.raises(rushes.NotFoundError):
            client.webhooks.get(created.id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'rushes.db'}"),
        storage=StorageSettings(backend="local", path=tmp_path / "storage"),
        webhooks=WebhookSettings(allow_http_loopback=True, poll_interval_seconds=3600),
    )
    migrate(settings.database_url)
    return settings


@pytest.fixture
async def local_http(local_settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """An app of its own, which may call loopback and whose dispatcher stays idle, so that the
    test decides when deliveries go."""
    async with AsyncTestClient(create_app(local_settings, storage_from_settings(local_settings))) as http:
        yield http


async def add_job_events(settings: Settings, tenant_id: UUID, user_id: UUID, *kinds: str) -> list[str]:
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session:
        set_tenant(session, tenant_id)
        dataset = Dataset(name="d", description="")
        session.add(dataset)
        await session.flush()
        version = DatasetVersion(dataset_id=dataset.id, number=1, items=[])
        session.add(version)
        await session.flush()
        job = FineTuneJob(
            dataset_version_id=version.id,
            base_id="tiny",
            config={},
            estimated_bytes=1,
            total_steps=1,
            queued_at=datetime.now(UTC),
            created_by=user_id,
        )
        session.add(job)
        await session.flush()
        events = [JobEvent(job_id=job.id, seq=n, type=kind, data={}) for n, kind in enumerate(kinds, 1)]
        session.add_all(events)
        await session.commit()
    await engine.dispose()
    return [str(e.id) for e in events]


async def test_deliveries_verify_and_show_in_the_log(
    local_settings: Settings, local_http: AsyncTestClient, receiver: Receiver
) -> None:
    settings, http = local_settings, local_http
    signed_up = await http.post(
        "/v1/auth/signup",
        json={"email": f"{uuid4().hex}@example.com", "password": PASSWORD, "tenant_name": "S"},
    )
    key = (await http.post("/v1/api-keys", json={"name": "sdk"})).json()["key"]
    http.cookies.clear()
    me = signed_up.json()
    client = rushes.AsyncClient(api_key=key, base_url=str(http.base_url), http_client=http)
    hook = await client.webhooks.create(url=receiver.url)
    receiver.fail_next = 1
    (event_id,) = await add_job_events(settings, UUID(me["tenant"]["id"]), UUID(me["user_id"]), "succeeded")
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    await dispatch_once(sessions, settings.webhooks, settings.data_dir)

    (failed,) = [d async for d in client.webhooks.deliveries(hook.id, status="pending")]
    assert isinstance(failed, types.WebhookDelivery) and failed.event_id == event_id
    assert failed.attempts == 1 and failed.last_status_code == 500 and failed.next_attempt_at is not None
    assert isinstance(failed.attempt_log[0], types.WebhookAttempt) and failed.attempt_log[0].error

    rotated = await client.webhooks.rotate_secret(hook.id)
    await dispatch_once(sessions, settings.webhooks, settings.data_dir, now=failed.next_attempt_at)
    await engine.dispose()
    (delivered,) = [d async for d in client.webhooks.deliveries(hook.id)]
    assert delivered.status == "succeeded" and [a.status_code for a in delivered.attempt_log] == [500, 200]
    request = receiver.requests[-1]
    verify_signature(request.body, request.headers["rushes-signature"], rotated.secret)
    verify_signature(request.body, request.headers["rushes-signature"], hook.secret)  # still, for a while
    assert json.loads(request.body)["id"] == event_id == request.headers["rushes-event-id"]
    assert json.loads(request.body) == delivered.payload

    again = await client.webhooks.redeliver(hook.id, delivered.id)
    assert again.status == "pending" and again.attempts == 0

    # The receiver recipe in docs/webhooks.md, as written, on the real delivery.
    recipe: dict[str, Any] = {"__name__": "__recipe__"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RUSHES_WEBHOOK_SECRET", rotated.secret)
        exec(compile(docs_recipe(), str(DOCS), "exec"), recipe)
    headers = {"Rushes-Signature": request.headers["rushes-signature"]}
    assert recipe["handle_webhook"](request.body, headers) == 200
    assert recipe["handle_webhook"](request.body, headers) == 200  # a repeat is acknowledged
    assert recipe["handled"] == {event_id}
    assert recipe["handle_webhook"](request.body + b"x", headers) == 400
    assert recipe["handle_webhook"](request.body, {}) == 400
