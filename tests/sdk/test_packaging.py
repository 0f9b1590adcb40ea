"""The SDK installs into a bare virtualenv on its own: no torch, a working ``rushes`` command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.venvs import install_fresh

SDK = Path(__file__).parents[2] / "sdk"


def test_installs_without_torch(tmp_path: Path) -> None:
    # A clean copy, so the build leaves nothing in the checkout and sees no stale build/ there.
    source = shutil.copytree(
        SDK,
        tmp_path / "sdk",
        ignore=shutil.ignore_patterns("build", "*.egg-info", ".mypy_cache", "__pycache__"),
    )
    env_dir = tmp_path / "venv"
    names = install_fresh(source, env_dir)
    python = env_dir / "bin" / "python"

    help_text = subprocess.run(
        [env_dir / "bin" / "rushes", "--help"], capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0, help_text.stderr
    assert "upload" in help_text.stdout and "login" in help_text.stdout

    probe = "import importlib.util as u, rushes; print(u.find_spec('torch') is None, rushes.__version__)"
    checked = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60)
    assert checked.stdout.split() == ["True", "0.1.0"], checked.stderr
    assert "torch" not in names and {"rushes", "httpx", "tqdm"} <= names
