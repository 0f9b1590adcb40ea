"""Prometheus metrics: the API's ``/metrics`` (requests by route, the queues, upload bytes, the
token) and a worker's endpoint, which adds up what every process of the worker recorded (real
workers' GPU seconds and adapter cache included)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import (
    DatabaseSettings,
    GenerationSettings,
    MetricsSettings,
    Settings,
    WebhookSettings,
    WorkerSettings,
)
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.app import create_app
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.jobs.models import FineTuneJob
from service.uploads.models import UploadSession, UploadStatus
from service.webhooks.dispatcher import dispatch_once
from tests.adapters import random_adapter
from tests.conftest import free_port, fresh_database, wait_for_http
from tests.helpers import (
    Caller,
    fine_tune_body,
    make_model_version,
    settings_env,
    sign_up,
    trainable_dataset,
    upload_body,
    upload_file,
)
from tests.media_samples import make_clip
from tests.workers import Workers
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
    for kind in ("fine_tune", "generation", "webhook_delivery", "upload_check"):
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
    dataset_id, number = await trainable_dataset(
        client, caller, make_clip(tmp_path / "b.mp4", pattern_seed=1)
    )
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


async def test_uploads_waiting_for_the_ingest_role_are_counted(
    client: Client, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    caller = await sign_up(client)
    created = await client.post(
        "/v1/uploads", json=upload_body(make_clip(tmp_path / "a.mp4")), headers=caller.headers
    )
    upload_id = uuid.UUID(created.json()["id"])

    async def change(**values: Any) -> None:
        async with sessions() as session:
            mark_unscoped(session)
            await session.execute(update(UploadSession).where(UploadSession.id == upload_id).values(**values))
            await session.commit()

    # Whole in storage an hour ago, and no worker with the ingest role has taken it since.
    await change(status=UploadStatus.VERIFYING, updated_at=datetime.now(UTC) - timedelta(hours=1))
    waiting = await scrape(client)
    assert value(waiting, "rushes_work_items", kind="upload_check", status="queued") == 1
    assert value(waiting, "rushes_work_items", kind="upload_check", status="running") == 0
    assert (
        3600 - 15 < value(waiting, "rushes_work_oldest_queued_age_seconds", kind="upload_check") < 3600 + 60
    )
    await change(verify_owner="w:1/ingest", verify_until=datetime.now(UTC) + timedelta(minutes=5))
    checking = await scrape(client)
    assert value(checking, "rushes_work_items", kind="upload_check", status="queued") == 0
    assert value(checking, "rushes_work_items", kind="upload_check", status="running") == 1
    assert value(checking, "rushes_work_oldest_queued_age_seconds", kind="upload_check") == 0


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


async def test_upload_bytes_count_the_parts_received(client: Client, tmp_path: Path) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    before = value(await scrape(client), "rushes_upload_bytes_total", transfer="api")
    await upload_file(client, caller, clip)
    # A part of the wrong length is refused, and not counted.
    other = await client.post(
        "/v1/uploads", json=upload_body(clip, sha256="0" * 64, filename="b.mp4"), headers=caller.headers
    )
    assert other.status_code == 201, other.text
    refused = await client.put(
        f"/v1/uploads/{other.json()['id']}/parts/1", content=b"too short", headers=caller.headers
    )
    assert refused.status_code == 422, refused.text
    after = value(await scrape(client), "rushes_upload_bytes_total", transfer="api")
    assert after - before == clip.stat().st_size


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
    metrics.gpu_seconds("fine_tune", 2.5)
    stats = types.SimpleNamespace(
        device_hits=3, device_loads=2, device_evictions=1, host_hits=1, storage_loads=1, host_evictions=0
    )
    metrics.adapter_cache("tiny", stats)
    stats.device_hits = 5
    metrics.adapter_cache("tiny", stats)  # adds only what changed since
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
    assert value(second, "rushes_worker_gpu_seconds_total", kind="fine_tune") == 5.0
    assert value(second, "rushes_worker_gpu_seconds_total", kind="generation") == 3.0
    cache = {
        (name, tier): value(second, f"rushes_worker_adapter_cache_{name}_total", base="tiny", tier=tier)
        for name in ("hits", "misses", "evictions")
        for tier in ("device", "host")
    }
    assert cache == {
        ("hits", "device"): 10,
        ("misses", "device"): 4,
        ("evictions", "device"): 2,
        ("hits", "host"): 2,
        ("misses", "host"): 2,
        ("evictions", "host"): 0,
    }


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


def test_a_fine_tunes_device_time_is_counted_as_it_is_charged() -> None:
    from prometheus_client import REGISTRY

    from worker.run_job import Pulse

    def counted() -> float:
        return REGISTRY.get_sample_value("rushes_worker_gpu_seconds_total", {"kind": "fine_tune"}) or 0.0

    before = counted()
    # Ten seconds since the last beat, on half of the device.
    pulse = Pulse(share=0.5, last=time.monotonic() - 10)
    charged = pulse.take() + pulse.take()
    assert charged == pytest.approx(5, abs=1)
    assert counted() - before == pytest.approx(charged)


async def test_a_training_worker_counts_the_device_time_its_fine_tunes_are_charged(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    training = settings.model_copy(
        update={
            "worker": WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3, look_renders=0),
            "metrics": settings.metrics.model_copy(update={"worker_port": port}),
        }
    )
    caller = await sign_up(client)
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"))
    body = fine_tune_body(dataset_id, number)
    body["hyperparameters"] = {**body["hyperparameters"], "steps": 2}
    created = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)
    assert created.status_code == 201, created.text
    workers = Workers(training, tmp_path, roles="train")
    workers.start()
    try:
        job = await _until_final(client, caller, f"/v1/fine-tunes/{created.json()['id']}")
        async with httpx.AsyncClient() as http:
            samples = parse((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    finally:
        workers.stop_all()
    assert job["status"] == "succeeded", job
    # Every beat's charge, as the worker measured it.
    assert job["gpu_seconds"] > 0
    counted = value(samples, "rushes_worker_gpu_seconds_total", kind="fine_tune")
    assert counted == pytest.approx(job["gpu_seconds"])


async def _until_final(client: Client, caller: Caller, path: str, within: float = 180) -> dict[str, Any]:
    """A fine-tune or generation, once it has ended."""
    deadline = time.monotonic() + within
    while True:
        shown = (await client.get(path, headers=caller.headers)).json()
        if shown["status"] not in ("queued", "running"):
            return dict(shown)
        assert time.monotonic() < deadline, f"{path} is still {shown['status']} after {within} s"
        await asyncio.sleep(0.2)


def _tiny_sizes(rank: int) -> tuple[int, int]:
    """The bytes of one LoRA row of the tiny base on the accelerator, and of one rank-``rank``
    adapter of it in host memory."""
    import torch

    from core.bases.quantization import Quantization
    from trainer.models import load_specification
    from trainer.serving import AdapterKey, AdapterPool
    from trainer.serving.adapters import unpack

    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    transformer = spec.load_transformer(Quantization.FP32)
    pool = AdapterPool(transformer, spec.default_lora_targets, budget_bytes=1 << 30, dtype=torch.float32)
    adapter = unpack(
        AdapterKey("t", "v"),
        random_adapter(0, rank=rank),
        pool.shapes,
        max_rank=256,
        dtype=torch.float32,
        pin_memory=False,
    )
    return pool.row_bytes, adapter.nbytes


async def test_a_generation_worker_counts_its_adapter_cache_and_device_time(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    port = free_port()
    row_bytes, adapter_bytes = _tiny_sizes(rank=160)
    rendering = settings.model_copy(
        update={
            "worker": WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3),
            # One rank-160 adapter fits in either tier, two do not; the accelerator must hold
            # at least one of the largest rank, 256.
            "generations": GenerationSettings(
                device_cache_bytes=300 * row_bytes, host_cache_bytes=adapter_bytes * 3 // 2
            ),
            "metrics": settings.metrics.model_copy(update={"worker_port": port}),
        }
    )
    caller = await sign_up(client)
    models = [
        await make_model_version(
            client,
            caller,
            settings,
            storage,
            make_clip(tmp_path / f"{i}.mp4", pattern_seed=i),
            adapter=adapter,
        )
        for i, adapter in enumerate([random_adapter(1, rank=160), random_adapter(2, rank=160)])
    ]
    workers = Workers(rendering, tmp_path, roles="generate")
    workers.start()
    try:
        done = [
            await _render(client, caller, models[0]["model_id"]),
            await _render(client, caller, models[0]["model_id"]),
            await _render(client, caller, models[1]["model_id"]),
        ]
        async with httpx.AsyncClient() as http:
            samples = parse((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    finally:
        workers.stop_all()

    base = done[0]["base_id"]

    def cache(name: str, tier: str) -> float:
        return value(samples, f"rushes_worker_adapter_cache_{name}_total", base=base, tier=tier)

    # The second render of the first adapter found it on the accelerator; the other two
    # were read from storage, and the third pushed the first out of both tiers.
    assert (cache("hits", "device"), cache("misses", "device"), cache("evictions", "device")) == (1, 2, 1)
    assert (cache("hits", "host"), cache("misses", "host"), cache("evictions", "host")) == (0, 2, 1)
    # One render a batch: the worker's device time is what the generations were charged.
    charged = sum(generation["gpu_seconds"] for generation in done)
    assert charged > 0
    assert value(samples, "rushes_worker_gpu_seconds_total", kind="generation") == pytest.approx(charged)


async def _render(client: Client, caller: Caller, model_id: str) -> dict[str, Any]:
    """Queue a generation and wait for it to succeed; the worker renders it alone."""
    created = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": "rain", "seed": 1}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    shown = await _until_final(client, caller, f"/v1/generations/{created.json()['id']}")
    assert shown["status"] == "succeeded", shown
    return shown
