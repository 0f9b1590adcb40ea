"""The walls between processes: the API runs without torch, and the import graph keeps the lines.

docs/architecture.md draws them: ``service`` (the API) never imports ``worker`` or
``trainer``; ``trainer`` imports nothing of ``service`` or ``worker``; ``core`` imports
nothing of ours. An API replica therefore needs no GPU libraries at all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port, wait_for_http
from tests.venvs import install_fresh

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
# What only the worker's install brings; none of it may load into the API.
WORKER_ONLY = ("torch", "diffusers", "peft", "bitsandbytes", "transformers", "trainer", "worker")


def test_import_contracts_hold() -> None:
    checked = subprocess.run(
        [BIN / "lint-imports", "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 kept, 0 broken" in checked.stdout


def test_the_api_app_loads_no_worker_stack(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from core.settings import Settings\n"
        "from service.app import create_app\n"
        "import service.cli\n"
        f"create_app(Settings(data_dir={str(tmp_path)!r}))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(WORKER_ONLY)!r}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


def _maps_torch(process: psutil.Process) -> bool:
    return any("libtorch" in Path(region.path).name for region in process.memory_maps())


def test_serve_keeps_torch_in_the_worker_process(tmp_path: Path, database_url: str) -> None:
    """``serve`` with its embedded worker: the worker child maps libtorch, the API process never does."""
    port = free_port()
    env = {
        "PATH": str(BIN),
        "HOME": str(tmp_path),
        "RUSHES_DATA_DIR": str(tmp_path),
        "RUSHES_DATABASE__URL": database_url,
        "RUSHES_LOG__LEVEL": "WARNING",
    }
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [BIN / "rushes-server", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            api = psutil.Process(server.pid)
            # The worker child is the one that imports torch; wait until it has, so the
            # check below can tell the two processes apart.
            deadline = time.monotonic() + 120
            while not any(_maps_torch(child) for child in api.children(recursive=True)):
                assert time.monotonic() < deadline, "the embedded worker never loaded torch"
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code == 200
            assert not _maps_torch(api)
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_the_api_installs_without_torch(tmp_path: Path) -> None:
    """``pip install rushes-server`` (no ``[worker]`` extra) in a bare venv: the API runs, no torch."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("core", "service", "worker", "trainer", "web"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    env_dir = tmp_path / "venv"
    names = install_fresh(source, env_dir)
    assert names.isdisjoint({"torch", "diffusers", "peft", "bitsandbytes", "transformers"}), names
    assert {"rushes-server", "litestar", "sqlalchemy"} <= names

    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [env_dir / "bin" / "rushes-server", "serve", "--port", str(port)],
            env={
                "HOME": str(tmp_path),
                "RUSHES_DATA_DIR": str(tmp_path / "data"),
                "RUSHES_WORKER__EMBEDDED": "false",
            },
            stdout=log,
            stderr=log,
            cwd=tmp_path,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            bases = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30)
            assert bases.status_code == 200, (tmp_path / "serve.log").read_text()
        finally:
            server.terminate()
            server.wait(timeout=30)
