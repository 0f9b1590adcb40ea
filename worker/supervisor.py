"""``rushes-server worker``: lease work that fits this machine and run it in child processes.

The supervisor holds no job state of its own: the database does. With the ``train`` role it
leases while it has room (job count and accelerator memory), starts
``worker.run_job`` for each lease, and reaps children. With the ``generate`` role it
keeps one ``worker.generate`` process running, which holds the bases and adapters
resident; the memory that process plans to hold is not offered to fine-tunes. The
``webhooks``, ``billing``, ``cleanup`` and ``ingest`` roles run webhook delivery, sending usage
to Stripe, storage cleanup and the checks of uploads sent straight to storage as tasks of the
supervisor itself: they need no accelerator, so a small pod (or ``serve``'s embedded worker)
runs them, and API replicas do none of it.

A child that dies without ending its job gives its lease up at once,
so the job resumes elsewhere from its last checkpoint without waiting for the lease to
run out. On SIGTERM it stops leasing, asks every child to checkpoint and hand its job
back, and exits when they have.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

import service.db.models  # noqa: F401  (every mapper is known before the first query)
from core.bases.catalogue import load_catalogue
from core.bases.memory import estimate_serving_memory
from core.process import die_with_parent
from core.settings import Settings
from core.storage import storage_from_settings
from service.billing.sender import run_billing_sender
from service.db.engine import create_engine, session_factory
from service.generations.queue import GenerationQueue
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot
from service.uploads.cleanup import run_cleanup_forever
from service.uploads.ingest import run_ingest_forever
from service.webhooks.dispatcher import run_webhook_dispatcher
from worker.exit_codes import EXIT_DONE, EXIT_LEASE_LOST

logger = logging.getLogger("rushes.worker")
# How long children get to checkpoint after SIGTERM before they are killed.
SHUTDOWN_GRACE_SECONDS = 120.0
# The least time between two starts of the generation process.
GENERATOR_RESTART_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerOptions:
    device: str | None
    memory_bytes: int
    max_jobs: int
    poll_seconds: float
    roles: frozenset[str] = frozenset({"train"})
    # Exit once no fine-tune has run for this long (a worker started per burst of queued work).
    exit_when_idle: float | None = None

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
    def __init__(
        self, settings: Settings, options: WorkerOptions, asked_to_stop: threading.Event | None = None
    ) -> None:
        self.settings = settings
        self.options = options
        self.asked_to_stop = asked_to_stop or threading.Event()
        self.worker_id = settings.worker.id or f"{options.worker_id}:{uuid.uuid4().hex[:8]}"
        self.children: list[Child] = []
        self.generator: subprocess.Popen[bytes] | None = None
        self.generator_id = f"{self.worker_id}:generate"
        self.generator_started = 0.0
        self.generator_abandoned = False
        self.stopping = anyio.Event()
        self.busy_at = time.monotonic()
        self.training_bytes = options.memory_bytes
        if "generate" in options.roles:
            catalogue = load_catalogue(settings.bases)
            cache = settings.generations.device_cache_bytes
            self.training_bytes -= sum(
                estimate_serving_memory(entry.dims, adapter_cache_bytes=cache) for entry in catalogue
            )
            if "train" in options.roles and self.training_bytes <= 0:
                logger.error(
                    "the generation role plans to hold all of this device's memory; no fine-tune will fit",
                    extra={"memory_bytes": options.memory_bytes},
                )

    async def run(self) -> None:
        engine = create_engine(self.settings.database_url)
        sessions = session_factory(engine)
        queue = JobQueue(sessions, self.settings.jobs)
        generations = GenerationQueue(
            sessions,
            self.settings.generations,
            fair_share_half_life=self.settings.jobs.fair_share_half_life_seconds,
        )
        logger.info(
            "worker started",
            extra={
                "worker": self.worker_id,
                "memory_bytes": self.options.memory_bytes,
                "device": self.options.device,
            },
        )
        try:
            if self.settings.worker.id:
                # This worker's previous run died (it is restarting under its name): its
                # work goes back to the queue now, not when its leases run out.
                await queue.abandon_owner(self.worker_id)
                await generations.abandon(self.generator_id)
            async with anyio.create_task_group() as tasks:
                await tasks.start(self._watch_signals)
                if "webhooks" in self.options.roles:
                    # Named after this worker, so a restart under its name ends the
                    # deliveries its previous run had in flight at once.
                    dispatch = partial(run_webhook_dispatcher, owner=f"{self.worker_id}/webhooks")
                    tasks.start_soon(dispatch, sessions, self.settings.webhooks, self.settings.data_dir)
                if "billing" in self.options.roles:
                    tasks.start_soon(run_billing_sender, sessions, self.settings.billing)
                if "cleanup" in self.options.roles:
                    storage = storage_from_settings(self.settings)
                    tasks.start_soon(run_cleanup_forever, sessions, storage, self.settings.uploads)
                if "ingest" in self.options.roles:
                    # Named after this worker, so a restart under its name takes its checks up again at once.
                    ingest = partial(run_ingest_forever, owner=f"{self.worker_id}/ingest")
                    storage = storage_from_settings(self.settings)
                    tasks.start_soon(ingest, sessions, storage, self.settings.uploads)
                while not self.stopping.is_set():
                    await self._reap(queue)
                    await self._keep_generator(generations)
                    if self._idle_too_long():
                        logger.info("no work for a while; exiting", extra={"worker": self.worker_id})
                        break
                    if "train" not in self.options.roles or await self._lease(queue) is None:
                        with anyio.move_on_after(self.options.poll_seconds):
                            await self.stopping.wait()
                tasks.cancel_scope.cancel()
            await self._shut_down(queue)
        finally:
            await engine.dispose()

    def _idle_too_long(self) -> bool:
        if self.children:
            self.busy_at = time.monotonic()
        limit = self.options.exit_when_idle
        return limit is not None and time.monotonic() - self.busy_at > limit

    async def _watch_signals(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Set ``stopping`` on the first SIGTERM or SIGINT; a second one gets the default action."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            if self.asked_to_stop.is_set():  # while the worker was starting
                self.stopping.set()
            task_status.started()
            if self.stopping.is_set():
                return
            async for _ in signals:
                self.stopping.set()
                return

    async def _lease(self, queue: JobQueue) -> Lease | None:
        if len(self.children) >= self.options.max_jobs:
            return None
        used = sum(child.lease.estimated_bytes for child in self.children)
        slot = WorkerSlot(free_bytes=self.training_bytes - used, total_bytes=self.training_bytes)
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
            "worker.run_job",
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

    async def _keep_generator(self, generations: GenerationQueue) -> None:
        """Start the generation process, and start it again if it died.

        A dead process's batch goes back to the queue at once (``abandon``), not when its
        leases run out; only then may a new process take the same worker id.
        """
        if "generate" not in self.options.roles:
            return
        if self.generator is not None:
            code = self.generator.poll()
            if code is None:
                return
            if not self.generator_abandoned:
                logger.error("generation process died", extra={"exit_code": code})
                await generations.abandon(self.generator_id)
                self.generator_abandoned = True
            if time.monotonic() - self.generator_started < GENERATOR_RESTART_SECONDS:
                return  # a process that dies at start-up is not restarted in a tight loop
        self.generator_started = time.monotonic()
        self.generator_abandoned = False
        self.generator = self._start_generator()

    def _start_generator(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "worker.generate", f"--worker-id={self.generator_id}"]
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
        processes = [child.process for child in self.children]
        if self.generator is not None:
            processes.append(self.generator)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        with anyio.move_on_after(SHUTDOWN_GRACE_SECONDS):
            for process in processes:
                await anyio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        await self._reap(queue)
        logger.info("worker stopped", extra={"worker": self.worker_id})
