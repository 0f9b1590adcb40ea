"""A live Rushes server for the SDK tests: the real app under uvicorn, on loopback, in a thread.

One server per test session (SQLite and local storage in a temporary folder); each test
signs up its own tenant, so tests never see each other's data. Upload parts are 64 KiB
here so that small files have many parts. ``s3_live_server`` is a second one, started only
for the tests that ask for it, whose storage is S3 (moto), so downloads redirect to signed
URLs as in production.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import rushes
import uvicorn
from PIL import Image

from core.settings import DatabaseSettings, Settings, StorageSettings, UploadSettings
from core.storage import ObjectStorage, storage_from_settings
from service.accounts.bootstrap import make_platform_admin
from service.app import create_app
from service.db.migrate import migrate
from tests.conftest import free_port
from tests.helpers import PASSWORD

PART = 64 << 10


@dataclass(frozen=True)
class LiveServer:
    url: str
    settings: Settings
    #: The server's own storage, for tests that play a worker.
    storage: ObjectStorage

    def new_api_key(self, name: str = "Studio") -> str:
        """Signs up a fresh tenant and returns an API key for it."""
        email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
        with httpx.Client(base_url=self.url) as http:
            signed_up = http.post(
                "/v1/auth/signup", json={"email": email, "password": PASSWORD, "tenant_name": name}
            )
            assert signed_up.status_code == 201, signed_up.text
            return self._key(http)

    def admin_api_key(self) -> str:
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        asyncio.run(make_platform_admin(self.settings, email, PASSWORD, "Platform"))
        with httpx.Client(base_url=self.url) as http:
            logged_in = http.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert logged_in.status_code == 200, logged_in.text
            return self._key(http)

    @staticmethod
    def _key(http: httpx.Client) -> str:
        key = http.post("/v1/api-keys", json={"name": "sdk tests"})
        assert key.status_code == 201, key.text
        return str(key.json()["key"])


@contextmanager
def _serve(settings: Settings) -> Iterator[LiveServer]:
    migrate(settings.database_url)
    storage = storage_from_settings(settings)
    app = create_app(settings, storage)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, name="rushes-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", settings, storage)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("sdk-server")
    settings = Settings(
        data_dir=data,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{data / 'rushes.db'}"),
        storage=StorageSettings(backend="local", path=data / "storage"),
        uploads=UploadSettings(default_part_size=PART, min_part_size=PART),
    )
    with _serve(settings) as server:
        yield server


@pytest.fixture(scope="session")
def s3_live_server(tmp_path_factory: pytest.TempPathFactory, s3_server: str) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("sdk-s3-server")
    settings = Settings(
        data_dir=data,
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{data / 'rushes.db'}"),
        storage=StorageSettings(
            backend="s3",
            s3_endpoint=s3_server,
            s3_bucket=f"rushes-sdk-{uuid.uuid4().hex[:12]}",
            s3_access_key="testing",
            s3_secret_key="testing",  # type: ignore[arg-type]
            s3_secure=False,
            s3_region="us-east-1",
            s3_create_bucket=True,
        ),
        # S3 (and moto) refuse parts under 5 MiB, except the last.
        uploads=UploadSettings(default_part_size=5 << 20, min_part_size=5 << 20),
    )
    with _serve(settings) as server:
        yield server


@pytest.fixture
def api_key(live_server: LiveServer) -> str:
    return live_server.new_api_key()


@pytest.fixture
def client(live_server: LiveServer, api_key: str) -> Iterator[rushes.Client]:
    with rushes.Client(api_key=api_key, base_url=live_server.url) as sdk_client:
        yield sdk_client


@pytest.fixture(scope="session")
def noise_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~480 KB PNG of noise: eight 64 KiB parts."""
    path = tmp_path_factory.mktemp("media") / "plate.png"
    pixels = np.random.default_rng(11).integers(0, 256, size=(400, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=1)
    assert 7 * PART < path.stat().st_size <= 8 * PART
    return path
