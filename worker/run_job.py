"""One leased fine-tune, run by the trainer in a child process of the worker.

``python -m worker.run_job`` is started by the supervisor for each job it leases,
so jobs on one machine share nothing (torch's global state, allocator, a crash). The
training loop's progress callback is the job's heartbeat: it extends the lease, charges
GPU time, writes progress events and learns of cancellation. Until the first step a
bounded preparation beat keeps the lease while latents are cached.

The job's configuration is loaded by ``load_config``, the same ``TrainConfig`` the API built
and checked when the job was made. A run that fails by the platform's fault (an internal
error, running out of memory, a configuration the API accepted but the run refused) is not
charged: ``_finish_failed`` waives every GPU second charged to the job so far. A failure on
the tenant's input (footage the trainer cannot use) is charged like any other run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import FrameType
from typing import Any, TypeVar
from uuid import UUID

import anyio
import anyio.from_thread
import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import service.db.models  # noqa: F401  (every mapper is known before the first query)
from core.bases.catalogue import BaseEntry, load_catalogue
from core.logs import configure_logging
from core.settings import Settings, WorkerSettings, get_settings
from core.storage import ObjectStorage, TenantKeys, storage_from_settings
from core.training import TrainingConfigError
from core.work.status import WorkStatus
from service.datasets.models import DatasetVersion
from service.db.engine import create_engine, session_factory
from service.db.tenancy import set_tenant
from service.jobs.models import FineTuneJob
from service.jobs.queue import Beat, JobQueue, Lease
from service.models.service import add_version, write_card
from service.uploads.models import Asset
from service.usage import ledger
from trainer import (
    Control,
    RunStorage,
    StepReport,
    TrainConfig,
    Trainer,
    TrainerInputError,
    TrainingAsset,
    TrainingDataset,
    TrainingResult,
)
from trainer.look import LookPlan, measure_look, unmeasured
from trainer.process import flush_denormals
from worker import metrics
from worker.exit_codes import EXIT_DONE, EXIT_LEASE_LOST

T = TypeVar("T")
logger = logging.getLogger("rushes.worker")
# Preparation (caching latents, loading the base) may beat without steps for this long.
PREPARATION_LIMIT_SECONDS = 3600.0
# Measuring the look after the last step may; it takes seconds, so only a hang reaches this.
MEASURING_LIMIT_SECONDS = 600.0


class LeaseLost(Exception):
    """Another worker owns the job now; stop at once, without writing a checkpoint."""


@dataclass
class Pulse:
    """GPU time since the last beat, and the signals that stop a run."""

    share: float
    # Read through the module, as ``take`` reads it, so both use the same clock (tests swap it).
    last: float = field(default_factory=lambda: time.monotonic())
    shutdown: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    stepping: threading.Event = field(default_factory=threading.Event)

    def take(self) -> float:
        now = time.monotonic()
        spent, self.last = (now - self.last) * self.share, now
        metrics.gpu_seconds("fine_tune", spent)
        return spent


# Progress events at most this often: every step when steps are slow, a few a second when
# they are fast, so bars move smoothly without a write per step of a fast run.
PROGRESS_SECONDS = 0.5


class StepTimer:
    """Seconds per step (a moving average over recent steps) and the time left at that pace."""

    SMOOTHING = 0.3

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None
        self.step_seconds: float | None = None

    def report(self, step: int, now: float) -> None:
        # The first report after a start or resume includes preparation: it only sets the clock.
        if self._last is not None and step > self._last[0]:
            latest = (now - self._last[1]) / (step - self._last[0])
            previous = self.step_seconds
            self.step_seconds = (
                latest if previous is None else previous + self.SMOOTHING * (latest - previous)
            )
        self._last = (step, now)

    def eta_seconds(self, step: int, total_steps: int) -> float | None:
        return None if self.step_seconds is None else self.step_seconds * max(0, total_steps - step)


class Heartbeat:
    """The trainer's progress callback: beats (lease, charge, progress event) at most every
    ``interval`` seconds and on milestones, and between beats records progress events at most
    every ``PROGRESS_SECONDS``."""

    def __init__(self, queue: JobQueue, lease: Lease, pulse: Pulse, interval: float) -> None:
        self.queue, self.lease, self.pulse, self.interval = queue, lease, pulse, interval
        self._last_beat = 0.0
        self._last_progress = 0.0
        self.clock = metrics.StepClock()
        self.timer = StepTimer()

    def __call__(self, report: StepReport) -> Control | None:
        self.pulse.stepping.set()
        self.clock.report(report)
        now = time.monotonic()
        self.timer.report(report.step, now)
        if self.pulse.cancelled:
            return Control.STOP
        milestone = (
            report.checkpoint_key is not None or report.validation_keys or report.step == report.total_steps
        )
        progress = {
            "total_steps": report.total_steps,
            "loss": report.loss,
            "learning_rate": report.learning_rate,
            "samples_per_second": report.samples_per_second,
            "peak_memory_bytes": report.peak_memory_bytes,
            "step_seconds": self.timer.step_seconds,
            "eta_seconds": self.timer.eta_seconds(report.step, report.total_steps),
        }
        if not milestone and now - self._last_beat < self.interval and not self.pulse.shutdown.is_set():
            if now - self._last_progress >= PROGRESS_SECONDS:
                self._last_progress = now
                if not anyio.from_thread.run(
                    self.queue.event, self.lease, "progress", {"step": report.step, **progress}
                ):
                    raise LeaseLost(str(self.lease.job_id))
            return None
        self._last_beat = self._last_progress = now
        beat = anyio.from_thread.run(self._beat, report, progress)
        if not beat.held:
            raise LeaseLost(str(self.lease.job_id))
        if beat.cancel:
            self.pulse.cancelled = True
            return Control.STOP
        return Control.STOP if self.pulse.shutdown.is_set() else None

    async def _beat(self, report: StepReport, progress: dict[str, Any]) -> Beat:
        beat = await self.queue.heartbeat(
            self.lease, step=report.step, gpu_seconds=self.pulse.take(), data=progress
        )
        if beat.held and report.checkpoint_key is not None:
            await self.queue.event(self.lease, "checkpoint", {"step": report.step})
        if beat.held and report.validation_keys:
            # Keys end ``step-NNNNNNNN/II.mp4``; clients fetch them by step and index.
            indexes = [int(key.rsplit("/", 1)[1].removesuffix(".mp4")) for key in report.validation_keys]
            await self.queue.event(self.lease, "sample", {"step": report.step, "indexes": indexes})
        return beat


def load_config(record: dict[str, Any], base: BaseEntry, *, device: str | None) -> TrainConfig:
    """The job's stored configuration as the trainer will run it, checked against its base.

    The API built and checked the same ``TrainConfig`` when the job was made, so this raises
    ``TrainingConfigError`` only if that check was wrong or the base changed since: the
    platform's fault, not the tenant's. The trainer checks its specification again on load.
    """
    config = TrainConfig.from_record(record, device=device)
    config.check_base(base.dims)
    return config


async def _load(
    session: AsyncSession, lease: Lease, storage: ObjectStorage
) -> tuple[FineTuneJob, TrainingDataset]:
    set_tenant(session, lease.tenant_id)
    job = await session.get_one(FineTuneJob, lease.job_id)
    version = await session.get_one(DatasetVersion, job.dataset_version_id)
    assets = {
        a.id: a
        for a in await session.scalars(select(Asset).where(Asset.id.in_([i.asset_id for i in version.items])))
    }
    keys = TenantKeys(lease.tenant_id)
    training_assets = [
        TrainingAsset(
            key=keys.footage(item.asset_id),
            sha256=assets[item.asset_id].sha256,
            rights=_rights(assets[item.asset_id]),
            caption=item.caption,
            asset_id=str(item.asset_id),
        )
        for item in version.items
    ]
    return job, TrainingDataset(version=str(version.id), assets=training_assets, source=storage)


def _rights(asset: Asset) -> dict[str, Any]:
    return {
        "rights": str(asset.rights),
        "licence_ref": asset.licence_ref,
        "attested_by": str(asset.attested_by),
        "attested_at": asset.attested_at.isoformat(),
        "filename": asset.filename,
    }


async def _in_thread_beating(
    queue: JobQueue,
    lease: Lease,
    pulse: Pulse,
    interval: float,
    work: Callable[[], T],
    *,
    limit: float,
    done: Callable[[], bool] = lambda: False,
) -> T:
    """``work`` in a thread while the lease is kept by beats without steps (caching and loading
    before the first step, measuring the look after the last) until ``done``, for at most
    ``limit`` seconds. Raises what ``work`` raised, else LeaseLost when a beat found the lease
    gone: whatever ``work`` made is then another worker's to redo."""
    lost = False

    async def beat() -> None:
        nonlocal lost
        started = time.monotonic()
        while not done() and time.monotonic() - started < limit:
            beat = await queue.heartbeat(lease, step=None, gpu_seconds=pulse.take())
            if not beat.held:
                lost = True
                return
            # The loop cannot stop before its first step; it stops there. After the last, the
            # adapter is whole and the run succeeds anyway.
            pulse.cancelled = pulse.cancelled or beat.cancel
            await anyio.sleep(interval)

    outcome: T | Exception
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(beat)
        try:
            outcome = await anyio.to_thread.run_sync(work)
        except Exception as exc:  # raised below, outside the task group's exception group
            outcome = exc
        tasks.cancel_scope.cancel()
    if isinstance(outcome, Exception):
        raise outcome
    if lost:
        raise LeaseLost
    return outcome


async def run(settings: Settings, lease: Lease, *, device: str | None, share: float) -> int:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    queue = JobQueue(sessions, settings.jobs)
    storage = storage_from_settings(settings)
    pulse = Pulse(share=share)
    _on_shutdown(pulse)
    try:
        async with sessions() as session:
            job, dataset = await _load(session, lease, storage)
        base = load_catalogue(settings.bases).get(job.base_id)
        heartbeat = Heartbeat(queue, lease, pulse, settings.worker.heartbeat_seconds)
        try:
            config = load_config(job.config, base, device=device)
            run_storage = RunStorage.for_tenant(
                storage,
                TenantKeys(lease.tenant_id),
                dataset_version_id=job.dataset_version_id,
                job_id=job.id,
                model_version_id=job.model_version_id,
            )

            def run_trainer() -> tuple[Trainer, TrainingResult]:
                trainer = Trainer(
                    config,
                    base=base.source,
                    dataset=dataset,
                    storage=run_storage,
                    callback=heartbeat,
                    base_id=base.id,
                    resume=True,
                )
                return trainer, trainer.run()

            trainer, result = await _in_thread_beating(
                queue,
                lease,
                pulse,
                settings.worker.heartbeat_seconds,
                run_trainer,
                done=pulse.stepping.is_set,
                limit=PREPARATION_LIMIT_SECONDS,
            )
            look = None
            if result.status == "completed":
                look = await _measure_look(queue, lease, pulse, settings.worker, base, trainer)
        except LeaseLost:
            return _lease_lost(lease)
        except TrainingConfigError as exc:
            # The API accepted this configuration; refusing it now is a fault of ours.
            logger.error("an accepted configuration failed: %s", exc, extra={"job_id": str(lease.job_id)})
            await _finish_failed(queue, lease, pulse, _config_reason(exc), platform_fault=True)
            return EXIT_DONE
        except TrainerInputError as exc:
            await _finish_failed(queue, lease, pulse, str(exc), platform_fault=False)
            return EXIT_DONE
        except Exception as exc:
            logger.exception("fine-tune failed", extra={"job_id": str(lease.job_id)})
            await _finish_failed(queue, lease, pulse, _reason(exc), platform_fault=True)
            return EXIT_DONE
        if not await _conclude(queue, lease, pulse, storage, result, look):
            return _lease_lost(lease)
        return EXIT_DONE
    finally:
        await engine.dispose()


def _lease_lost(lease: Lease) -> int:
    logger.warning("lease lost; another worker owns the job now", extra={"job_id": str(lease.job_id)})
    metrics.finished("fine_tune", "lease_lost")
    return EXIT_LEASE_LOST


async def _measure_look(
    queue: JobQueue, lease: Lease, pulse: Pulse, settings: WorkerSettings, base: BaseEntry, trainer: Trainer
) -> dict[str, Any] | None:
    """The new version's look against the base's and the footage's (``trainer.look``), with
    the lease kept meanwhile; None when the deployment turned measuring off. A failure is
    logged and stored as its reason: the adapter is whole, so the fine-tune still succeeds."""
    if settings.look_renders == 0:
        return None
    plan = LookPlan(
        renders=settings.look_renders,
        max_side=settings.look_max_side,
        max_frames=settings.look_max_frames,
        steps=base.generation.steps,
        guidance=base.generation.guidance,
    )
    outcome: dict[str, Any] | Exception
    try:
        outcome = await _in_thread_beating(
            queue,
            lease,
            pulse,
            settings.heartbeat_seconds,
            partial(measure_look, trainer, plan),
            limit=MEASURING_LIMIT_SECONDS,
        )
    except LeaseLost:
        raise
    except Exception as exc:  # the measuring, or a beat that failed (the database)
        outcome = exc
    if not isinstance(outcome, Exception):
        logger.info("look measured in %.1f s", outcome["seconds"], extra={"job_id": str(lease.job_id)})
        return outcome
    logger.error(
        "measuring the look failed; the version is kept without it",
        exc_info=outcome,
        extra={"job_id": str(lease.job_id)},
    )
    if isinstance(outcome, TrainerInputError):
        return unmeasured(f"The look could not be measured: {outcome}")
    return unmeasured(
        f"The look could not be measured ({type(outcome).__name__}); the version itself is complete."
    )


async def _conclude(
    queue: JobQueue,
    lease: Lease,
    pulse: Pulse,
    storage: ObjectStorage,
    result: TrainingResult,
    look: dict[str, Any] | None,
) -> bool:
    """Ends the attempt as its result says; False when the lease was lost first (another
    worker owns the job, and nothing was recorded)."""
    if result.status == "stopped":
        outcome: metrics.Outcome = "cancelled" if pulse.cancelled else "released"
        if pulse.cancelled:
            ended = await queue.finish(
                lease, WorkStatus.CANCELLED, gpu_seconds=pulse.take(), data={"step": result.step}
            )
        else:
            ended = await queue.release(lease, gpu_seconds=pulse.take())
        if ended:
            metrics.finished("fine_tune", outcome)
        return ended
    assert result.export is not None  # a completed run always exports
    adapter = await anyio.to_thread.run_sync(storage.get_bytes, result.export.adapter_key)
    digest = hashlib.sha256(adapter).hexdigest()
    record = json.loads(await anyio.to_thread.run_sync(storage.get_bytes, result.export.record_key))

    async def make_version(session: AsyncSession, job: FineTuneJob) -> dict[str, Any]:
        version = await add_version(
            session,
            job,
            adapter_sha256=digest,
            adapter_bytes=len(adapter),
            final_loss=result.final_loss,
            look=look,
        )
        # Written before the commit, as the adapter was: a version never exists without its
        # card, and a lost commit leaves only files the version's id would have named.
        await write_card(session, storage, version, record)
        return {
            "model_id": str(version.model_id),
            "model_version": version.number,
            "final_loss": result.final_loss,
        }

    ended = await queue.finish(lease, WorkStatus.SUCCEEDED, gpu_seconds=pulse.take(), then=make_version)
    if ended:
        metrics.finished("fine_tune", "succeeded")
    return ended


async def _finish_failed(
    queue: JobQueue, lease: Lease, pulse: Pulse, reason: str, *, platform_fault: bool
) -> None:
    """End the job failed. By the platform's fault, every GPU second charged to it so far,
    this attempt's last ones included, is waived in the same transaction: a failed job costs
    the tenant nothing, and a resumed one is charged only from the resume."""

    async def waive(session: AsyncSession, job: FineTuneJob) -> dict[str, Any]:
        job.waived_gpu_seconds = job.gpu_seconds
        await ledger.credit_fine_tune(
            session,
            tenant_id=job.tenant_id,
            job_id=job.id,
            attempt=job.attempts,
            at=job.finished_at or datetime.now(UTC),
        )
        return {"waived_gpu_seconds": job.gpu_seconds}

    await queue.finish(
        lease,
        WorkStatus.FAILED,
        gpu_seconds=pulse.take(),
        reason=reason,
        then=waive if platform_fault else None,
    )
    metrics.finished("fine_tune", "failed")


def _config_reason(exc: TrainingConfigError) -> str:
    return (
        f"These settings cannot run on this base ({exc}). This fine-tune is not charged; start a "
        "new one with settings the base accepts."
    )


def _reason(exc: Exception) -> str:
    if type(exc).__name__ == "OutOfMemoryError":
        return (
            "The run ran out of accelerator memory. Lower the resolution, frames or rank, or use nf4 "
            "quantisation, then resume or start again. This run is not charged."
        )
    return (
        f"The trainer stopped with an internal error ({type(exc).__name__}); this run is not charged. "
        "Resume the fine-tune to continue from its last checkpoint; if it fails again, contact "
        "support with the job id."
    )


def _on_shutdown(pulse: Pulse) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        # The loop checkpoints at its next step and the job goes back to the queue.
        pulse.shutdown.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.run_job")
    parser.add_argument("--job", type=UUID, required=True)
    parser.add_argument("--tenant", type=UUID, required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--attempt", type=int, required=True)
    parser.add_argument("--estimated-bytes", type=int, required=True)
    parser.add_argument("--device", default=None)
    parser.add_argument("--share", type=float, default=1.0)
    args = parser.parse_args(argv)
    flush_denormals()
    settings = get_settings()
    configure_logging(settings.log)
    lease = Lease(args.job, args.tenant, args.worker_id, args.attempt, args.estimated_bytes)
    return anyio.run(lambda: run(settings, lease, device=args.device, share=args.share))


if __name__ == "__main__":
    sys.exit(main())
