"""``rushes-server worker``: lease jobs that fit this machine and run each in a child process.

The supervisor holds no job state of its own: the database does. It leases while it has
room (job count and accelerator memory), starts ``service.worker.run_job`` for each lease,
and reaps children. A child that dies without ending its job gives its lease up at once,
so the job resumes elsewhere from its last checkpoint without waiting for the lease to
run out. On SIGTERM it stops leasing, asks every child to checkpoint and hand its job
back, and exits when they have.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass

import anyio
import anyio.to_thread

import service.db.models  # noqa: F401  (every mapper is known before the first query)
from service.db.engine import create_engine, session_factory
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot
from service.settings import Settings
from service.worker.run_job import EXIT_DONE, EXIT_LEASE_LOST

logger = logging.getLogger("rushes.worker")
_PR_SET_PDEATHSIG = 1
# How long children get to checkpoint after SIGTERM before they are killed.
SHUTDOWN_GRACE_SECONDS = 120.0


def die_with_parent() -> None:
    """Run in a child before exec: the kernel kills it if its parent dies, even by SIGKILL.

    Without this a job's child would outlive a killed worker and keep heartbeating, and the
    job would never move to another worker.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the lease still expires
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class WorkerOptions:
    device: str | None
    memory_bytes: int
    max_jobs: int
    poll_seconds: float

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Child:
    lease: Lease
    process: subprocess.Popen[bytes]


def device_memory(device: str | None) -> int:
    """Bytes the device offers, when not given: the accelerator's total, or the host's RAM."""
    import torch

    if (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda"):
        return int(torch.cuda.get_device_properties(torch.device(device or "cuda")).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class Supervisor:
    def __init__(self, settings: Settings, options: WorkerOptions) -> None:
        self.settings = settings
        self.options = options
        self.worker_id = f"{options.worker_id}:{uuid.uuid4().hex[:8]}"
        self.children: list[Child] = []
        self.stopping = anyio.Event()

    async def run(self) -> None:
        engine = create_engine(self.settings.database_url)
        queue = JobQueue(session_factory(engine), self.settings.jobs)
        logger.info(
            "worker started",
            extra={
                "worker": self.worker_id,
                "memory_bytes": self.options.memory_bytes,
                "device": self.options.device,
            },
        )
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._watch_signals)
                while not self.stopping.is_set():
                    await self._reap(queue)
                    if await self._lease(queue) is None:
                        with anyio.move_on_after(self.options.poll_seconds):
                            await self.stopping.wait()
                tasks.cancel_scope.cancel()
            await self._shut_down(queue)
        finally:
            await engine.dispose()

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stopping.set()
                return

    async def _lease(self, queue: JobQueue) -> Lease | None:
        if len(self.children) >= self.options.max_jobs:
            return None
        used = sum(child.lease.estimated_bytes for child in self.children)
        slot = WorkerSlot(free_bytes=self.options.memory_bytes - used, total_bytes=self.options.memory_bytes)
        lease = await queue.lease(self.worker_id, slot)
        if lease is not None:
            self.children.append(Child(lease, self._start(lease)))
            logger.info("job started", extra={"job_id": str(lease.job_id), "attempt": lease.attempt})
        return lease

    def _start(self, lease: Lease) -> subprocess.Popen[bytes]:
        share = (
            min(1.0, lease.estimated_bytes / self.options.memory_bytes) if self.options.max_jobs > 1 else 1.0
        )
        command = [
            sys.executable,
            "-m",
            "service.worker.run_job",
            f"--job={lease.job_id}",
            f"--tenant={lease.tenant_id}",
            f"--worker-id={lease.worker_id}",
            f"--attempt={lease.attempt}",
            f"--estimated-bytes={lease.estimated_bytes}",
            f"--share={share}",
        ]
        if self.options.device:
            command.append(f"--device={self.options.device}")
        return subprocess.Popen(command, preexec_fn=die_with_parent)  # noqa: S603

    async def _reap(self, queue: JobQueue) -> None:
        for child in list(self.children):
            code = child.process.poll()
            if code is None:
                continue
            self.children.remove(child)
            if code not in (EXIT_DONE, EXIT_LEASE_LOST):
                logger.error("job process died", extra={"job_id": str(child.lease.job_id), "exit_code": code})
                await queue.abandon(child.lease)

    async def _shut_down(self, queue: JobQueue) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
            for child in self.children:
                await anyio.to_thread.run_sync(child.process.wait, abandon_on_cancel=True)
        for child in self.children:
            if child.process.poll() is None:
                child.process.kill()
                child.process.wait()
        await self._reap(queue)
        logger.info("worker stopped", extra={"worker": self.worker_id})
