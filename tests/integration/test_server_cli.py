"""``rushes-server`` as an operator runs it: real processes, a real HTTP server on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, wait_for_http
from tests.helpers import (
    PASSWORD,
    TINY_HYPERPARAMETERS,
    file_sha256,
    fine_tune_body,
    trainable_dataset_over_http,
    upload_body,
)
from tests.media_samples import make_clip

SERVER = [sys.executable, "-m", "service.cli"]


def env_for(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RUSHES_DATA_DIR": str(data_dir),
        "RUSHES_DATABASE__URL": database_url,
        "RUSHES_LOG__LEVEL": "WARNING",
        **extra,
    }


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [*SERVER, "serve", "--port", str(port)],
        env=env_for(tmp_path, database_url),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/healthz")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_serve_migrates_and_answers(server: str, tmp_path: Path) -> None:
    assert httpx.get(f"{server}/readyz", timeout=30).json()["status"] == "ready"
    # Generous timeouts: probing shares two cores with the embedded worker starting up.
    with httpx.Client(base_url=server, timeout=30) as http:
        signed = http.post(
            "/v1/auth/signup", json={"email": "op@example.com", "password": PASSWORD, "tenant_name": "Op"}
        )
        assert signed.status_code == 201
        clip = make_clip(tmp_path / "a.mp4")
        upload = http.post("/v1/uploads", json=upload_body(clip)).json()

        def too_long() -> Iterator[bytes]:
            yield clip.read_bytes()
            yield b"x" * 100

        # Chunked, no Content-Length: the size is found out as bytes arrive.
        refused = http.put(f"/v1/uploads/{upload['id']}/parts/1", content=too_long())
        assert refused.status_code == 413
        assert "larger than" in refused.json()["detail"]
        assert http.get(f"/v1/uploads/{upload['id']}/parts").json() == []
        sent = http.put(f"/v1/uploads/{upload['id']}/parts/1", content=iter([clip.read_bytes()]))
        assert sent.status_code == 200
        assert http.post(f"/v1/uploads/{upload['id']}/complete").status_code == 201


def test_migrate_create_admin_and_cleanup(tmp_path: Path, database_url: str) -> None:
    env = env_for(tmp_path, database_url, RUSHES_ADMIN_PASSWORD=PASSWORD)
    migrated = subprocess.run([*SERVER, "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrated.returncode == 0, migrated.stderr
    made = subprocess.run(
        [*SERVER, "create-admin", "Boss@Example.com"], env=env, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    assert "boss@example.com is a platform admin (new account)" in made.stdout
    cleaned = subprocess.run([*SERVER, "cleanup"], env=env, capture_output=True, text=True, check=False)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "expired upload sessions removed: 0" in cleaned.stdout
    assert "deleted tenants swept: 0; outputs of lost leases removed: 0" in cleaned.stdout


def test_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "RUSHES_DATA_DIR": str(tmp_path), "RUSHES_STORAGE__BACKEND": "s3"}
    result = subprocess.run([*SERVER, "migrate"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "RUSHES_STORAGE__S3_ENDPOINT is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_passes_through_to_the_trainer(tmp_path: Path) -> None:
    helped = subprocess.run([*SERVER, "train", "--help"], capture_output=True, text=True, check=False)
    assert helped.returncode == 0 and "--quantization" in helped.stdout
    missing = subprocess.run(
        [*SERVER, "train", str(tmp_path / "nowhere"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == [
        f"error: clips folder {tmp_path / 'nowhere'} does not exist"
    ]


def _stream_events(http: httpx.Client, source: str) -> list[dict[str, Any]]:
    """Follow a job's or generation's live stream to its end, as a browser's EventSource would."""
    events: list[dict[str, Any]] = []
    with http.stream("GET", f"{source}/events/stream", timeout=180) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line == "":
                # As EventSource does, an event with no data (litestar's keep-alive carries an
                # empty data line after its comment) is not dispatched.
                if fields.get("data"):
                    events.append({"sse_id": int(fields["id"]), **json.loads(fields["data"])})
                fields = {}
            elif not line.startswith(":") and ": " in line:
                name, value = line.split(": ", 1)
                fields[name] = value
    return events


def test_the_embedded_system_trains_a_model_and_renders_with_it(server: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        clip = make_clip(tmp_path / "rain.mp4")
        dataset_id = trainable_dataset_over_http(http, clip, "dp@example.com")
        created = http.post(
            "/v1/fine-tunes",
            json=fine_tune_body(
                dataset_id,
                1,
                hyperparameters={
                    **TINY_HYPERPARAMETERS,
                    "validation_every": 2,
                    "validation_prompts": ["rain"],
                },
            ),
            headers={"Idempotency-Key": "first-model"},
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        events = _stream_events(http, f"/v1/fine-tunes/{job_id}")

        types = [e["type"] for e in events]
        assert types[0] == "queued" and types[-1] == "succeeded", types
        assert "started" in types and "progress" in types and "checkpoint" in types
        assert [e["sse_id"] for e in events] == list(range(1, len(events) + 1))
        last = next(e for e in reversed(events) if e["type"] == "progress")
        assert last["data"]["step"] == 4 and last["data"]["loss"] > 0
        job = http.get(f"/v1/fine-tunes/{job_id}").json()
        assert job["status"] == "succeeded" and job["model_version"] == 1 and job["gpu_seconds"] > 0

        version = f"/v1/models/{job['model_id']}/versions/1"
        adapter = http.get(f"{version}/adapter")
        assert adapter.status_code == 200
        digest = base64.b64encode(hashlib.sha256(adapter.content).digest()).decode()
        assert adapter.headers["repr-digest"] == f"sha-256=:{digest}:"
        (header_length,) = struct.unpack("<Q", adapter.content[:8])
        tensors = json.loads(adapter.content[8 : 8 + header_length])
        assert any("lora_A" in name for name in tensors) and any("lora_B" in name for name in tensors)
        samples = http.get(f"/v1/fine-tunes/{job_id}/samples").json()
        assert [(x["step"], x["index"]) for x in samples] == [(2, 0), (4, 0)]
        assert [e["data"] for e in events if e["type"] == "sample"] == [
            {"step": 2, "indexes": [0]},
            {"step": 4, "indexes": [0]},
        ]
        sample = http.get(f"/v1/fine-tunes/{job_id}/samples/4/0")
        assert sample.headers["content-type"] == "video/mp4" and sample.content[4:8] == b"ftyp"
        assert http.get(f"/v1/fine-tunes/{job_id}/samples/3/0").status_code == 404
        record = http.get(f"{version}/record").json()
        assert [a["sha256"] for a in record["assets"]] == [file_sha256(clip)]
        # The worker wrote the model card beside the adapter; the API serves that file.
        card = http.get(f"{version}/card").text
        (written,) = tmp_path.rglob(f"adapters/{http.get(version).json()['id']}/README.md")
        assert written.read_text() == card
        assert card.startswith('---\nbase_model: "tiny"\nlibrary_name: diffusers\n')
        assert f"`{file_sha256(clip)}` | owned" in card and 'instance_prompt: "sks"' in card

        generated = http.post(
            "/v1/generations", json={"model_id": job["model_id"], "prompt": "sks, rain at night", "seed": 3}
        )
        assert generated.status_code == 201, generated.text
        generation = f"/v1/generations/{generated.json()['id']}"
        types = [e["type"] for e in _stream_events(http, generation)]
        assert types[:2] == ["queued", "started"] and types[-1] == "succeeded", types
        outputs = http.get(generation).json()["outputs"]
        assert http.get(outputs["video.mp4"]).content[4:8] == b"ftyp"
        assert http.get(outputs["poster.jpg"]).content[:3] == b"\xff\xd8\xff"
        preview = http.get(outputs["preview.webp"])
        assert preview.headers["content-type"] == "image/webp" and preview.content[8:12] == b"WEBP"
