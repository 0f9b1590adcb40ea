"""``rushes-server`` as an operator runs it: real processes, a real HTTP server on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for_http
from tests.helpers import PASSWORD, file_sha256
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
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    with httpx.Client(base_url=server) as http:
        signed = http.post(
            "/v1/auth/signup", json={"email": "op@example.com", "password": PASSWORD, "tenant_name": "Op"}
        )
        assert signed.status_code == 201
        clip = make_clip(tmp_path / "a.mp4")
        body = {
            "filename": "a.mp4",
            "size": clip.stat().st_size,
            "sha256": file_sha256(clip),
            "content_type": "video/mp4",
            "rights": {"kind": "owned"},
        }
        upload = http.post("/v1/uploads", json=body).json()

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
