"""Workers as operators run them: real ``rushes-server worker`` processes training the tiny base.

Jobs are made through the API (in-process app, same database and storage); workers are
separate processes that find them in the database, exactly as on a cluster.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import JobSettings, Settings, WorkerSettings
from core.storage import ObjectStorage, TenantKeys
from tests.helpers import Caller, fine_tune_body, sign_up, trainable_dataset
from tests.media_samples import make_clip
from tests.workers import Workers

Client = AsyncTestClient[Litestar]
# Short leases so a killed worker's job moves on in seconds, and frequent beats so a test
# sees progress between two checkpoints. No look measured after training: that is
# test_look_metrics.py's, and here it only lengthened each job (four in a row outlasted the
# test's 300 s on a loaded CI machine).
FAST = {
    "jobs": JobSettings(lease_seconds=4.0, max_attempts=3),
    "worker": WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3, look_renders=0),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(settings, tmp_path, roles="train")
    yield pool
    pool.stop_all()


async def _job(client: Client, caller: Caller, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/fine-tunes/{job_id}", headers=caller.headers)
    assert response.status_code == 200
    return dict(response.json())


async def _events(client: Client, caller: Caller, job_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/fine-tunes/{job_id}/events?limit=200", headers=caller.headers)
    return list(response.json()["items"])


async def _until(client: Client, caller: Caller, job_id: str, done: Any, within: float = 120.0) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job = await _job(client, caller, job_id)
        events = await _events(client, caller, job_id)
        if done(job, events):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out; job {job}, events {[e['type'] for e in events]}")


def _final(job: dict, events: list) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


def _checkpointed(job: dict, events: list) -> bool:
    return any(e["type"] == "checkpoint" for e in events)


@pytest.fixture
async def tenant(client: Client, tmp_path: Path) -> tuple[Caller, str, int]:
    caller = await sign_up(client, "Film Co")
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"), name="Rain")
    return caller, dataset_id, number


async def _create(client: Client, caller: Caller, dataset_id: str, number: int, **hyper: Any) -> str:
    body = fine_tune_body(dataset_id, number)
    body["hyperparameters"] = {**body["hyperparameters"], **hyper}
    response = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_kill_9_mid_training_resumes_from_the_checkpoint_on_another_worker(
    client: Client, tenant: tuple[Caller, str, int], workers: Workers
) -> None:
    caller, dataset_id, number = tenant
    job_id = await _create(client, caller, dataset_id, number, steps=40, checkpoint_every=5)

    first_started = time.monotonic()
    first = workers.start()
    await _until(client, caller, job_id, _checkpointed)
    first.send_signal(signal.SIGKILL)
    first.wait()
    first_ran = time.monotonic() - first_started
    killed_at_step = (await _job(client, caller, job_id))["step"]

    second_started = time.monotonic()
    workers.start()
    job = await _until(client, caller, job_id, _final, within=180)
    second_ran = time.monotonic() - second_started

    assert job["status"] == "succeeded", job
    events = await _events(client, caller, job_id)
    types = [e["type"] for e in events]
    assert types.count("started") == 2 and "requeued" in types
    requeue = next(e for e in events if e["type"] == "requeued")
    assert requeue["data"]["reason"] == "lease expired"
    started = [e for e in events if e["type"] == "started"]
    assert started[1]["data"]["attempt"] == 2 and started[0]["data"]["worker"] != started[1]["data"]["worker"]
    # The second run picked up from a checkpoint, not from step 0.
    resumed = [e for e in events if e["type"] == "progress" and e["seq"] > started[1]["seq"]]
    first_checkpoint = min(e["data"]["step"] for e in events if e["type"] == "checkpoint")
    assert resumed and resumed[0]["data"]["step"] > first_checkpoint
    # It restarts right after a whole checkpoint (every 5 steps), at most one checkpoint past
    # the last beat: the kill may land between writing a checkpoint and reporting it.
    assert (resumed[0]["data"]["step"] - 1) % 5 == 0
    assert resumed[0]["data"]["step"] <= killed_at_step + 5 + 1
    # GPU time is charged by beats: time after the kill's last beat is never billed.
    assert 0 < job["gpu_seconds"] <= first_ran + second_ran
    version = (await client.get(f"/v1/models/{job['model_id']}/versions/1", headers=caller.headers)).json()
    assert version["job_id"] == job_id and version["steps"] == 40
    assert job["model_version"] == 1


async def test_sigterm_checkpoints_and_hands_the_job_back(
    client: Client, tenant: tuple[Caller, str, int], workers: Workers, storage: ObjectStorage
) -> None:
    caller, dataset_id, number = tenant
    job_id = await _create(client, caller, dataset_id, number, steps=400, checkpoint_every=1000)

    worker = workers.start()
    await _until(client, caller, job_id, lambda job, events: job["step"] >= 2)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0

    job = await _job(client, caller, job_id)
    assert job["status"] == "queued" and job["attempts"] == 0
    events = await _events(client, caller, job_id)
    assert events[-1]["type"] == "requeued" and events[-1]["data"]["reason"] == "worker shut down"
    requeued_seq = events[-1]["seq"]
    # No scheduled checkpoint was due (every 1000 steps): this one was written on the way out.
    prefix = TenantKeys(uuid.UUID(caller.tenant_id)).checkpoints(uuid.UUID(job_id))
    written = sorted(info.key for info in storage.list_objects(prefix) if info.key.endswith("/meta.json"))
    assert len(written) == 1
    stopped_at = int(written[0].split("step-")[1][:8])
    assert 2 <= stopped_at <= job["step"] + 1
    assert job["gpu_seconds"] > 0

    # The next worker continues from that checkpoint.
    workers.start()

    def progressed(job: dict, events: list) -> bool:
        return any(e["type"] == "progress" and e["seq"] > requeued_seq for e in events)

    await _until(client, caller, job_id, progressed)
    events = await _events(client, caller, job_id)
    progress = [e for e in events if e["type"] == "progress" and e["seq"] > requeued_seq]
    assert progress[0]["data"]["step"] > stopped_at


async def test_cancel_stops_the_run_within_seconds_and_frees_the_slot(
    client: Client, tenant: tuple[Caller, str, int], workers: Workers
) -> None:
    caller, dataset_id, number = tenant
    long_job = await _create(client, caller, dataset_id, number, steps=2000, checkpoint_every=1000)
    next_job = await _create(client, caller, dataset_id, number, steps=2)

    workers.start("--max-jobs", "1")
    await _until(client, caller, long_job, lambda job, events: job["step"] >= 1)
    assert (await _job(client, caller, next_job))["status"] == "queued"
    asked = time.monotonic()
    cancelled = await client.post(f"/v1/fine-tunes/{long_job}/cancel", headers=caller.headers)
    assert cancelled.json()["cancel_requested"] is True

    job = await _until(client, caller, long_job, _final, within=30)
    assert job["status"] == "cancelled"
    assert time.monotonic() - asked < 10
    assert job["step"] < 2000
    # The slot it held goes to the next job.
    after = await _until(client, caller, next_job, _final)
    assert after["status"] == "succeeded"


async def test_two_tenants_queued_jobs_alternate_on_one_worker(
    client: Client, tenant: tuple[Caller, str, int], tmp_path: Path, workers: Workers
) -> None:
    a, a_dataset, a_number = tenant
    b = await sign_up(client, "Other Co")
    b_dataset, b_number = await trainable_dataset(client, b, make_clip(tmp_path / "b.mp4", pattern_seed=3))
    # Tenant A queues all of its jobs first; fair share still alternates.
    # B's jobs are longer, so after one job each B has used more GPU time and A goes next:
    # the alternation does not hang on two runs taking the same time to the millisecond.
    a_jobs = [await _create(client, a, a_dataset, a_number, steps=2) for _ in range(2)]
    # Long enough that B's run outweighs A's preparation (caching, loading) even on a busy machine.
    b_jobs = [await _create(client, b, b_dataset, b_number, steps=120) for _ in range(2)]

    workers.start("--max-jobs", "1")
    for caller, job_id in [*((a, j) for j in a_jobs), *((b, j) for j in b_jobs)]:
        assert (await _until(client, caller, job_id, _final, within=180))["status"] == "succeeded"

    started = []
    for caller, job_id in [*((a, j) for j in a_jobs), *((b, j) for j in b_jobs)]:
        events = await _events(client, caller, job_id)
        first = next(e for e in events if e["type"] == "started")
        started.append((first["created_at"], "a" if caller is a else "b"))
    assert [who for _, who in sorted(started)] == ["a", "b", "a", "b"]
