"""Fixtures shared by the whole suite: real databases, real storage servers, the live app.

Every database test runs on SQLite, and on PostgreSQL too when ``RUSHES_TEST_POSTGRES_URL``
is set (``.ci/run`` sets it). Each test gets a fresh, migrated database cloned from a
template made once per run, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anyio.to_thread
import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from core.settings import DatabaseSettings, Settings, StorageSettings, UploadSettings
from core.storage import ObjectStorage, storage_from_settings
from service.app import create_app
from service.db.migrate import migrate

POSTGRES_URL = os.environ.get("RUSHES_TEST_POSTGRES_URL", "")
DATABASES = ["sqlite", *(["postgresql"] if POSTGRES_URL else [])]


def _ordinary_scheduling() -> None:
    """Run under the ordinary time-sharing policy. In a CI run the xdist workers, and all they
    started, were found under SCHED_FIFO at the highest real-time priority, set from outside
    this project: there a process that spins (a wedged Chromium and its Playwright driver, seen
    at full CPU) never yields its core, so the test process, its timeout and every watchdog
    starved and the run hung until CI's limit. Children inherit the policy of the thread that
    starts them, so resetting it before each test covers the browsers, servers and workers
    that test starts."""
    if os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def pytest_configure(config: pytest.Config) -> None:
    _ordinary_scheduling()


def pytest_runtest_setup(item: pytest.Item) -> None:
    _ordinary_scheduling()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _pg_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def _pg_admin(statement: str) -> None:
    async def run() -> None:
        dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    name = f"rushes_tmpl_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    migrate(_pg_url(name))
    yield name
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database(request: pytest.FixtureRequest, kind: str, folder: Path) -> Iterator[str]:
    """A migrated database of ``kind`` cloned from the run's template, dropped afterwards."""
    if kind == "sqlite":
        path = folder / "rushes.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"rushes_t_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(name)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with fresh_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone server: a real S3-protocol endpoint on loopback."""
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def storage_kind(request: pytest.FixtureRequest) -> str:
    """``local`` unless a test parametrizes it with ``indirect=True``."""
    return str(getattr(request, "param", "local"))


@pytest.fixture
def storage_settings(storage_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StorageSettings:
    if storage_kind == "s3":
        endpoint = request.getfixturevalue("s3_server")
        return StorageSettings(
            backend="s3",
            s3_endpoint=endpoint,
            s3_bucket=f"rushes-{uuid.uuid4().hex[:12]}",
            s3_access_key="testing",
            s3_secret_key="testing",  # type: ignore[arg-type]
            s3_secure=False,
            s3_region="us-east-1",
            s3_create_bucket=True,
        )
    return StorageSettings(backend="local", path=tmp_path / "storage")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, storage_settings: StorageSettings) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=database_url),
        storage=storage_settings,
        # Small parts keep multi-part tests fast; S3 itself enforces its 5 MiB floor
        # only at completion, and moto does too.
        uploads=UploadSettings(default_part_size=5 << 20, min_part_size=5 << 20),
    )


@pytest.fixture
def storage(storage_settings: StorageSettings, tmp_path: Path) -> ObjectStorage:
    return storage_from_settings(Settings(data_dir=tmp_path, storage=storage_settings))


@pytest.fixture
def app(settings: Settings, storage: ObjectStorage) -> Litestar:
    return create_app(settings, storage)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


Parallel = Callable[[Sequence[httpx.Request]], Awaitable[list[httpx.Response]]]


@pytest.fixture
def parallel(client: AsyncTestClient[Litestar]) -> Parallel:
    """Sends requests (``client.build_request(...)``) really at once, for races: Litestar's
    test client answers one request before it starts the next, so ``asyncio.gather`` over it
    runs them in turn. They go to the same app, on the event loop its lifespan (and so its
    database pool) runs on: the client's portal thread."""

    async def send(requests: Sequence[httpx.Request]) -> list[httpx.Response]:
        async def all_at_once() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport) as http:
                return list(await asyncio.gather(*(http.send(request) for request in requests)))

        return await anyio.to_thread.run_sync(client.blocking_portal.call, all_at_once)

    return send
