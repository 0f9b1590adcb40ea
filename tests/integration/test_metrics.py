"""Prometheus metrics: the API's ``/metrics`` (requests by route, the queues, the token) and a
worker's endpoint, which adds up what every process of the worker recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import DatabaseSettings, MetricsSettings, Settings, WebhookSettings
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.app import create_app
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.jobs.models import FineTuneJob
from service.webhooks.dispatcher import dispatch_once
from tests.conftest import free_port, fresh_database, wait_for_http
from tests.helpers import fine_tune_body, make_model_version, settings_env, sign_up, trainable_dataset
from tests.media_samples import make_clip
from worker.metrics import serving

Client = AsyncTestClient[Litestar]
TOKEN = "scrape-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    metrics = MetricsSettings(enabled=True, token=SecretStr(TOKEN), cache_seconds=0)
    # Webhooks to a closed loopback port, so that a delivery stays queued, waiting to retry.
    hooks = WebhookSettings(allow_http_loopback=True, request_timeout_seconds=2, retry_base_seconds=10)
    return settings.model_copy(update={"metrics": metrics, "webhooks": hooks})


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: Client) -> Samples:
    response = await client.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, path: str, status: str, method: str = "GET") -> float:
    labels = {"app_name": "rushes", "method": method, "path": path, "status_code": status}
    return value(samples, "rushes_http_requests_total", **labels)


# ------------------------------------------------------------------ the API --


async def test_metrics_are_not_served_unless_enabled(settings: Settings, storage: ObjectStorage) -> None:
    off = settings.model_copy(update={"metrics": MetricsSettings()})
    async with AsyncTestClient(create_app(off, storage)) as client:
        response = await client.get("/metrics", headers=AUTH)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "authorization", [None, f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer "]
)
async def test_metrics_need_the_token(client: Client, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
    assert "rushes_" not in response.text


async def test_an_api_key_does_not_open_the_metrics(client: Client) -> None:
    caller = await sign_up(client)
    assert (await client.get("/metrics", headers=caller.headers)).status_code == 401


async def test_without_a_token_setting_the_metrics_are_open(
    settings: Settings, storage: ObjectStorage
) -> None:
    open_metrics = settings.model_copy(update={"metrics": MetricsSettings(enabled=True)})
    async with AsyncTestClient(create_app(open_metrics, storage)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "rushes_work_items" in response.text


async def test_requests_are_counted_by_route_template_and_status(client: Client) -> None:
    caller = await sign_up(client)
    job = f"/v1/fine-tunes/{uuid.uuid4()}"
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(job, headers=caller.headers)).status_code == 404
    # Refused by the authentication middleware, before any handler runs.
    assert (await client.get(job)).status_code == 401
    assert (await client.get("/healthz")).status_code == 200
    # No route: not counted, so no label ever holds a path nobody routes.
    assert (await client.get(f"/nowhere/{uuid.uuid4()}")).status_code == 404
    after = await scrape(client)

    template = "/v1/fine-tunes/{job_id}"
    assert requests(after, template, "404") - requests(before, template, "404") == 3
    assert requests(after, template, "401") - requests(before, template, "401") == 1
    assert requests(after, "/healthz", "200") - requests(before, "/healthz", "200") == 1
    labels = {f"{key}={label}" for (_, pairs) in after for key, label in pairs}
    assert not any("nowhere" in label or job in label for label in labels)
    duration = {"app_name": "rushes", "method": "GET", "path": template, "status_code": "404"}
    counted = value(after, "rushes_http_request_duration_seconds_count", **duration)
    assert counted - value(before, "rushes_http_request_duration_seconds_count", **duration) == 3
    assert value(after, "rushes_http_request_duration_seconds_sum", **duration) > value(
        before, "rushes_http_request_duration_seconds_sum", **duration
    )


async def test_queue_gauges_follow_the_database(
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    empty = await scrape(client)
    for kind in ("fine_tune", "generation", "webhook_delivery"):
        for status in ("queued", "running"):
            assert (("rushes_work_items", frozenset({("kind", kind), ("status", status)}))) in empty
            assert value(empty, "rushes_work_items", kind=kind, status=status) == 0
        assert value(empty, "rushes_work_oldest_queued_age_seconds", kind=kind) == 0
        assert value(empty, "rushes_work_leases_expired", kind=kind) == 0

    caller = await sign_up(client)
    hook = await client.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/hook"}, headers=caller.headers
    )
    assert hook.status_code == 201, hook.text
    model = await make_model_version(client, caller, settings, storage, make_clip(tmp_path / "a.mp4"))
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "b.mp4"))
    jobs = []
    for _ in range(2):
        created = await client.post(
            "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
        )
        assert created.status_code == 201, created.text
        jobs.append(created.json()["id"])
    generation = await client.post(
        "/v1/generations", json={"model_id": model["model_id"], "prompt": "rain"}, headers=caller.headers
    )
    assert generation.status_code == 201, generation.text

    queued = await scrape(client)
    assert value(queued, "rushes_work_items", kind="fine_tune", status="queued") == 2
    assert value(queued, "rushes_work_items", kind="generation", status="queued") == 1
    assert value(queued, "rushes_work_oldest_queued_age_seconds", kind="fine_tune") > 0
    assert value(queued, "rushes_work_oldest_queued_age_seconds", kind="generation") > 0

    # A fine-tune whose worker went silent: running, its lease out, not swept yet.
    lapsed = datetime.now(UTC) - timedelta(minutes=5)
    async with sessions() as session:
        mark_unscoped(session)
        await session.execute(
            update(FineTuneJob)
            .where(FineTuneJob.id == uuid.UUID(jobs[0]))
            .values(status=WorkStatus.RUNNING, lease_owner="gone:1:x", lease_expires_at=lapsed)
        )
        await session.commit()
    # A webhook delivery that failed an hour ago (the receiver is down) and is due again.
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    report = await dispatch_once(sessions, settings.webhooks, settings.data_dir, now=hour_ago)
    assert report.sent >= 1 and report.succeeded == 0

    moved = await scrape(client)
    assert value(moved, "rushes_work_items", kind="fine_tune", status="queued") == 1
    assert value(moved, "rushes_work_items", kind="fine_tune", status="running") == 1
    assert value(moved, "rushes_work_leases_expired", kind="fine_tune") == 1
    assert value(moved, "rushes_work_leases_expired", kind="generation") == 0
    assert value(moved, "rushes_work_items", kind="webhook_delivery", status="queued") == report.sent
    # Due since its backoff (at most 10 s) ran out, nearly an hour ago.
    waited = value(moved, "rushes_work_oldest_queued_age_seconds", kind="webhook_delivery")
    assert 3600 - 15 < waited < 3600 + 60


async def test_a_webhook_delivery_waiting_out_its_backoff_is_not_late(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    caller = await sign_up(client)
    hook = await client.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/hook"}, headers=caller.headers
    )
    assert hook.status_code == 201, hook.text
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"))
    created = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
    )
    assert created.status_code == 201, created.text
    assert (await dispatch_once(sessions, settings.webhooks, settings.data_dir)).sent == 1

    samples = await scrape(client)
    assert value(samples, "rushes_work_items", kind="webhook_delivery", status="queued") == 1
    assert value(samples, "rushes_work_oldest_queued_age_seconds", kind="webhook_delivery") == 0


async def test_scrapes_within_cache_seconds_reuse_one_reading(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"))
    cached = settings.model_copy(
        update={"metrics": MetricsSettings(enabled=True, token=SecretStr(TOKEN), cache_seconds=3600)}
    )
    async with AsyncTestClient(create_app(cached, storage)) as other:
        first = await scrape(other)
        created = await client.post(
            "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
        )
        assert created.status_code == 201, created.text
        again = await scrape(other)
    assert value(first, "rushes_work_items", kind="fine_tune", status="queued") == 0
    assert value(again, "rushes_work_items", kind="fine_tune", status="queued") == 0
    assert value(await scrape(client), "rushes_work_items", kind="fine_tune", status="queued") == 1


async def test_a_database_that_cannot_answer_leaves_the_queue_gauges_out(
    settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    # A database with no tables: every query fails.
    broken = settings.model_copy(
        update={"database": DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")}
    )
    async with AsyncTestClient(create_app(broken, storage)) as client:
        samples = await scrape(client)
        assert (await client.get("/healthz")).status_code == 200
        after = await scrape(client)
    assert not [name for name, _ in samples if name.startswith("rushes_work_")]
    assert requests(after, "/healthz", "200") >= 1


# --------------------------------------------------------------- a worker --

RECORD = textwrap.dedent(
    """
    import sys, types
    from worker import metrics

    peak = int(sys.argv[1])
    metrics.finished("fine_tune", "succeeded")
    metrics.finished("generation", "cancelled", 2)
    clock = metrics.StepClock()
    for step in (1, 2, 3):
        report = dict(step=step, peak_memory_kind=metrics.CUDA_PEAK, peak_memory_bytes=peak)
        clock.report(types.SimpleNamespace(**report))
    metrics.rendered(1.5, types.SimpleNamespace(type="cpu"))
    """
)


def _record(peak: int) -> None:
    """A process that records as a fine-tune's or the generation process would, then ends."""
    subprocess.run([sys.executable, "-c", RECORD, str(peak)], check=True)


def test_a_workers_endpoint_adds_up_what_each_of_its_processes_recorded() -> None:
    port = free_port()
    with serving(MetricsSettings(worker_port=port)):
        _record(3 << 30)
        first = parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        _record(5 << 30)
        second = parse(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    finished = "rushes_worker_jobs_finished_total"
    assert value(first, finished, kind="fine_tune", outcome="succeeded") == 1
    # The processes have ended; their counts stay, and add up.
    assert value(second, finished, kind="fine_tune", outcome="succeeded") == 2
    assert value(second, finished, kind="generation", outcome="cancelled") == 4
    # Two steps timed per run: the first report only starts the clock.
    assert value(second, "rushes_worker_train_step_seconds_count") == 4
    assert value(second, "rushes_worker_generation_batch_seconds_count") == 2
    assert value(second, "rushes_worker_generation_batch_seconds_sum") == 3.0
    # The highest peak any process reached; a CPU render reports none.
    assert value(first, "rushes_worker_gpu_memory_peak_bytes", kind="fine_tune") == 3 << 30
    assert value(second, "rushes_worker_gpu_memory_peak_bytes", kind="fine_tune") == 5 << 30
    assert ("rushes_worker_gpu_memory_peak_bytes", frozenset({("kind", "generation")})) not in second


@pytest.fixture
def sqlite_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """One database is enough where nothing under test reads it."""
    with fresh_database(request, "sqlite", tmp_path) as url:
        yield Settings(data_dir=tmp_path, database=DatabaseSettings(url=url))


def test_a_worker_serves_metrics_on_its_port_until_it_stops(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {
        **os.environ,
        **settings_env(sqlite_settings),
        "RUSHES_METRICS__WORKER_PORT": str(port),
        "RUSHES_LOG__LEVEL": "WARNING",
        "TMPDIR": str(temporary),
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "worker", "--roles", "cleanup"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/metrics", timeout=120)  # it imports much on a busy machine
        response = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        # The folder its processes record into.
        assert [path.name[:15] for path in temporary.iterdir()] == ["rushes-metrics-"]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        finally:
            if worker.poll() is None:  # never leave a stuck worker behind the suite
                worker.kill()
            log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert list(temporary.iterdir()) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")
