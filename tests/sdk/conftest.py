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
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import rushes
import uvicorn
from rushes.cli import main

from core.settings import DatabaseSettings, Settings, StorageSettings, UploadSettings
from core.storage import ObjectStorage, storage_from_settings
from service.accounts.bootstrap import make_platform_admin
from service.app import create_app
from service.db.engine import create_engine, session_factory
from service.db.migrate import migrate
from service.db.tenancy import mark_unscoped
from service.usage.ledger import charge_gpu, charge_output
from service.usage.models import Charge
from tests.conftest import free_port
from tests.helpers import PASSWORD, Caller, make_model_version
from tests.media_samples import make_clip, make_noise_png

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


@pytest.fixture
def cli_env(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment for the command line: no key in it, config under a temporary
    XDG_CONFIG_HOME (whose config file is returned), the live server as RUSHES_BASE_URL."""
    monkeypatch.delenv("RUSHES_API_KEY", raising=False)
    monkeypatch.setenv("RUSHES_BASE_URL", live_server.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "rushes" / "config.json"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``rushes`` command line in-process: its exit status, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def noise_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~480 KB PNG of noise: eight 64 KiB parts."""
    path = tmp_path_factory.mktemp("media") / "plate.png"
    make_noise_png(path, 400, seed=11)
    assert 7 * PART < path.stat().st_size <= 8 * PART
    return path


def make_model(server: LiveServer, api_key: str, folder: Path) -> str:
    """A model with one version in the key's tenant, as a succeeded fine-tune leaves it."""
    with rushes.Client(api_key=api_key, base_url=server.url) as sdk:
        me = sdk.me.get()
    caller = Caller(me.email, me.tenant.id, me.user_id, {"Authorization": f"Bearer {api_key}"})

    async def make() -> dict[str, Any]:
        # make_model_version drives the API with an httpx client, here the live server's.
        async with httpx.AsyncClient(base_url=server.url) as http:
            return await make_model_version(
                http, caller, server.settings, server.storage, make_clip(folder / "model.mp4")
            )

    return str(asyncio.run(make())["model_id"])


@pytest.fixture
def model_id(live_server: LiveServer, api_key: str, client: rushes.Client, tmp_path: Path) -> Iterator[str]:
    yield make_model(live_server, api_key, tmp_path)
    # Leave nothing queued: the next test's worker claims the oldest generation waiting.
    for generation in client.generations.list(status="queued"):
        client.generations.cancel(generation.id)


def charge(
    server: LiveServer, tenant_id: str, work_id: str, kind: Charge, quantity: float, at: datetime
) -> None:
    """Charge the usage ledger as a worker's heartbeat or end does (``service.usage.ledger``)."""

    async def write() -> None:
        engine = create_engine(server.settings.database_url)
        async with session_factory(engine)() as session:
            mark_unscoped(session)
            tenant, work = uuid.UUID(tenant_id), uuid.UUID(work_id)
            if kind is Charge.OUTPUT_BYTES:
                charge_output(session, tenant_id=tenant, generation_id=work, size=int(quantity), at=at)
            else:
                await charge_gpu(
                    session,
                    kind,
                    tenant_id=tenant,
                    work_id=work,
                    attempt=1,
                    seconds=quantity,
                    at=at,
                    half_life=server.settings.jobs.fair_share_half_life_seconds,
                )
            await session.commit()
        await engine.dispose()

    asyncio.run(write())
