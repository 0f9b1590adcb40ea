"""Browser tests: Debian's Chromium, driven by Playwright, against a real ``rushes-server serve``.

The server runs as an operator runs it on loopback, on each database of the suite, with no
embedded worker: pages need none, and a journey that trains or renders starts real
``rushes-server worker`` processes (``workers``) on the same settings. Every page request the
browser makes is logged, so a test can prove that no page reaches another host.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from core.settings import DatabaseSettings, MiB, Settings, StorageSettings, UploadSettings, WorkerSettings
from tests.conftest import free_port, wait_for_http
from tests.helpers import settings_env, upload_body
from tests.web.wedge import BrowserWedged, DriverWatch, kill_family
from tests.workers import Workers

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
# Set RUSHES_SCREENSHOTS=1 to write docs/screenshots/*.png while the journeys run.
SCREENSHOTS = ROOT / "docs" / "screenshots" if os.environ.get("RUSHES_SCREENSHOTS") else None
PASSWORD = "correct horse battery staple"
# How long teardown waits for the browser to close before killing it and its driver.
CLOSE_SECONDS = 30


@pytest.fixture
def web_settings(tmp_path: Path, database_url: str, storage_settings: StorageSettings) -> Settings:
    """What the server and any workers run with: local storage, unless a test parametrizes
    ``storage_kind`` with ``s3`` (``tests/conftest.py``), where the browser uploads direct."""
    # Parts of 1 KiB, so that a small generated clip is sent in several, as a large one is;
    # S3 refuses parts under 5 MiB but the last.
    part = 5 * MiB if storage_settings.backend == "s3" else 1024
    return Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=database_url),
        storage=storage_settings,
        uploads=UploadSettings(default_part_size=part, min_part_size=part),
        worker=WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3),
    )


@pytest.fixture
def server(tmp_path: Path, web_settings: Settings) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, **settings_env(web_settings), "RUSHES_LOG__LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()  # no orphan, but a server that ignores SIGTERM still fails the test
            process.wait()
            raise
        finally:
            log.close()


@pytest.fixture
def workers(web_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    """Real ``rushes-server worker`` processes on the server's settings; start them with ``start()``."""
    pool = Workers(web_settings, tmp_path, roles="train,generate")
    yield pool
    pool.stop_all()


@dataclass
class Visit:
    """A browser context (one person's cookies) and every URL its pages asked for."""

    context: BrowserContext
    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def foreign_requests(self) -> list[str]:
        here = urlsplit(self.base).netloc
        return [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != here
        ]

    def shoot(self, name: str) -> None:
        if SCREENSHOTS is not None:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _is_fault(text: str, kind: str) -> bool:
    """A console error, other than the browser noting a 4xx page we meant to answer with."""
    return kind == "error" and not text.startswith(
        "Failed to load resource: the server responded with a status of 4"
    )


@pytest.fixture
def visit(server: str) -> Iterator[Callable[..., Visit]]:
    """Opens browser contexts on the server. Playwright's sync API runs an event loop of its
    own, so it starts only once the database fixtures (which use asyncio.run) are done."""
    # A failure, not a skip: .ci/run installs it, and a skipped journey would hide a broken page.
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: apt-get install -y chromium"
    visits: list[Visit] = []
    # Playwright's driver is Node; under heavy load on this kernel its libuv io_uring path was
    # seen spinning at full CPU without ever starting (the test then sat out its timeout).
    # The thread-pool file I/O it falls back to costs nothing measurable here.
    os.environ.setdefault("UV_USE_IO_URING", "0")
    before = {child.pid for child in psutil.Process().children()}
    driver = sync_playwright().start()
    (driver_process,) = [child for child in psutil.Process().children() if child.pid not in before]
    watch = DriverWatch(driver_process)
    browser: Browser | None = None
    try:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM))
        yield partial(_open_visit, browser, server, visits)
    finally:
        watch.stop()
        # A driver that stops answering would hold this teardown, and the whole run with it,
        # for ever (a test's timeout covers only the test): past CLOSE_SECONDS it is killed with
        # its browser, the closing calls fail, and the test reports that. After a wedge it is
        # dead already, and only the Python side is left to close.
        watchdog = threading.Timer(CLOSE_SECONDS, kill_family, args=(driver_process,))
        watchdog.start()
        try:
            if watch.wedged is None:
                for made in visits:
                    made.context.close()
                if browser is not None:
                    browser.close()
            driver.stop()
        finally:
            watchdog.cancel()


def _open_visit(
    browser: Browser, server: str, visits: list[Visit], width: int = 1280, height: int = 800
) -> Visit:
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(10_000)
    page = context.new_page()
    made = Visit(context, page, server)
    page.on("request", lambda request: made.requests.append(request.url))
    page.on(
        "console",
        lambda msg: made.console_errors.append(msg.text) if _is_fault(msg.text, msg.type) else None,
    )
    visits.append(made)
    return made


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests are rerun once, and only when their driver wedged (``tests/web/wedge.py``)."""
    for item in items:
        if "visit" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=[BrowserWedged]))


def new_email(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}@example.com"


def sign_up(visit: Visit, tenant: str, email: str) -> None:
    visit.goto("/signup")
    visit.page.get_by_label("Studio name").fill(tenant)
    visit.page.get_by_label("Email").fill(email)
    visit.page.get_by_label("Password").fill(PASSWORD)
    visit.page.get_by_role("button", name="Create account").click()
    visit.page.wait_for_url(f"{visit.base}/app")


def upload_clip(visit: Visit, clip: Path) -> dict[str, Any]:
    """Put a clip in the visitor's library through the JSON upload API, with their session
    cookie (as the footage page's script does, in one go); returns the asset."""
    request = visit.page.request
    base = f"{visit.base}/v1/uploads"
    made = request.post(base, data=upload_body(clip))
    assert made.status == 201, made.text()
    upload = made.json()
    data, size = clip.read_bytes(), upload["part_size"]
    for number in range(1, upload["part_count"] + 1):
        part = request.put(
            f"{base}/{upload['id']}/parts/{number}", data=data[(number - 1) * size : number * size]
        )
        assert part.status == 200, part.text()
    done = request.post(f"{base}/{upload['id']}/complete")
    assert done.status == 201, done.text()
    return dict(done.json())
