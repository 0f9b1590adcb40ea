"""Installs into a bare virtualenv, as a user's ``pip install`` would, for packaging tests."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path


def install_fresh(source: Path, env_dir: Path) -> set[str]:
    """Install ``source`` into a new venv at ``env_dir``; the names of every package it holds then.

    No pip inside the new venv: this interpreter's pip installs into it (``pip --python``), which is faster.
    """
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return {line.split("==")[0].lower() for line in installed.stdout.splitlines()}
