"""``serve``'s embedded worker heals: killed with SIGKILL mid-fine-tune, it is started again and the
job finishes, with no other process started by hand."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import free_port, wait_for_http
from tests.helpers import fine_tune_body, trainable_dataset_over_http
from tests.integration.test_server_cli import env_for
from tests.media_samples import make_clip


@pytest.fixture
def serve(tmp_path: Path, database_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = env_for(
        tmp_path,
        database_url,
        RUSHES_WORKER__POLL_SECONDS="0.3",
        RUSHES_WORKER__HEARTBEAT_SECONDS="0.3",
        RUSHES_WORKER__DEVICE="cpu",
        RUSHES_WORKER__MEMORY_BYTES=str(8 << 30),
        RUSHES_WORKER__MAX_JOBS="1",
    )
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz")
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            process.wait(timeout=60)


def _worker_process(serve: subprocess.Popen[bytes]) -> psutil.Process:
    """The embedded worker's supervisor: ``serve``'s child running ``python -m worker``."""
    for child in psutil.Process(serve.pid).children():
        if child.cmdline()[-2:] == ["-m", "worker"]:
            return child
    raise AssertionError("serve has no worker process")


def _events(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    return list(http.get(f"/v1/fine-tunes/{job_id}/events?limit=200").json()["items"])


def test_a_killed_embedded_worker_is_started_again_and_the_job_finishes(
    serve: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base, server = serve
    with httpx.Client(base_url=base, timeout=30) as http:
        clip = make_clip(tmp_path / "rain.mp4")
        dataset_id = trainable_dataset_over_http(http, clip, "ops@example.com")
        body = fine_tune_body(dataset_id, 1)
        body["hyperparameters"] = {**body["hyperparameters"], "steps": 40, "checkpoint_every": 5}
        created = http.post("/v1/fine-tunes", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        # Kill at a known point: once the first checkpoint is recorded, and before the last step.
        deadline = time.monotonic() + 180
        while not any(e["type"] == "checkpoint" for e in _events(http, job_id)):
            assert time.monotonic() < deadline, _events(http, job_id)
            time.sleep(0.2)
        first = _worker_process(server)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

        deadline = time.monotonic() + 240
        while (job := http.get(f"/v1/fine-tunes/{job_id}").json())["status"] not in (
            "succeeded",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.3)
        assert job["status"] == "succeeded", job
        events = _events(http, job_id)
        types = [e["type"] for e in events]
        assert types.count("started") == 2, types
        # Ended by the restarted worker at once, not when the lease ran out (60 s by default).
        requeued = next(e for e in events if e["type"] == "requeued")
        assert requeued["data"]["reason"] == "worker process died"
        second = _worker_process(server)
        assert second.pid != first.pid and server.poll() is None
        # The second run picked up from a checkpoint, not from step 0.
        started = [e for e in events if e["type"] == "started"]
        resumed = [e for e in events if e["type"] == "progress" and e["seq"] > started[1]["seq"]]
        assert resumed and resumed[0]["data"]["step"] > 5
