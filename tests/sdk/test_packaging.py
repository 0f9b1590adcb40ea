"""The SDK installs into a bare virtualenv on its own: no torch, a working ``rushes`` command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

SDK = Path(__file__).parents[2] / "sdk"


def test_installs_without_torch(tmp_path: Path) -> None:
    # A clean copy, so the build leaves nothing in the checkout and sees no stale build/ there.
    source = shutil.copytree(
        SDK,
        tmp_path / "sdk",
        ignore=shutil.ignore_patterns("build", "*.egg-info", ".mypy_cache", "__pycache__"),
    )
    env_dir = tmp_path / "venv"
    # No pip inside the new venv: this interpreter's pip installs into it (``pip --python``), which is faster.
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr

    help_text = subprocess.run(
        [env_dir / "bin" / "rushes", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "upload" in help_text.stdout and "login" in help_text.stdout

    probe = "import importlib.util as u, rushes; print(u.find_spec('torch') is None, rushes.__version__)"
    checked = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    assert checked.stdout.split() == ["True", "0.1.0"], checked.stderr
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = {line.split("==")[0].lower() for line in installed.stdout.splitlines()}
    assert "torch" not in names and {"rushes", "httpx", "tqdm"} <= names
