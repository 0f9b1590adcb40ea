"""The worker ``serve`` runs beside the API on embedded defaults, started again whenever it dies.

It is a process of its own (``python -m worker``), so the API's process never imports the
torch engine. It runs under a name of ``serve``'s (``RUSHES_WORKER__ID``), so when it is
started again it ends the leases its previous run held at once, and their work resumes from
its last checkpoint without waiting for the leases to run out.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time

from core.process import die_with_parent

logger = logging.getLogger("rushes.serve")

# Restarts back off from the first delay to the last, doubling; a run that lasted longer
# than the reset time starts the backoff over.
FIRST_DELAY_SECONDS = 1.0
LAST_DELAY_SECONDS = 60.0
RESET_AFTER_SECONDS = 60.0


class EmbeddedWorker:
    def __init__(self) -> None:
        self.name = f"embedded:{socket.gethostname()}:{os.getpid()}"
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._keep_running, name="embedded-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to hand its work back (SIGTERM) and wait for it to exit."""
        with self._lock:
            self._stopping.set()
            process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait()
        self._thread.join()

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env={**os.environ, "RUSHES_WORKER__ID": self.name},
                preexec_fn=die_with_parent,
            )
            return self.process

    def _keep_running(self) -> None:
        delay = FIRST_DELAY_SECONDS
        while (process := self._spawn()) is not None:
            started = time.monotonic()
            code = process.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > RESET_AFTER_SECONDS:
                delay = FIRST_DELAY_SECONDS
            logger.error(
                "embedded worker exited; starting it again", extra={"exit_code": code, "in_seconds": delay}
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, LAST_DELAY_SECONDS)
