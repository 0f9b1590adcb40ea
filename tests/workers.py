"""Real ``rushes-server worker`` processes, started with the test's settings, killed at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import Settings
from tests.helpers import settings_env


class Workers:
    def __init__(self, settings: Settings, tmp: Path, *, roles: str) -> None:
        self.env = {**os.environ, **settings_env(settings), "RUSHES_LOG__LEVEL": "WARNING"}
        self.tmp = tmp
        self.roles = roles
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker-{len(self.processes)}.log").open("w")
        command = [sys.executable, "-m", "service.cli", "worker", "--device", "cpu", "--memory", "8GiB"]
        process = subprocess.Popen(
            [*command, "--roles", self.roles, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
