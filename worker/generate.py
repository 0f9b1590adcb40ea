"""``python -m worker.generate``: the inference role, one long-lived process per device.

It keeps every base it has served resident (a ``GenerationEngine`` each), claims batches of
compatible queued generations (any tenants), renders each batch in one denoising loop with
per-sample adapters, checks each video for near copies of its model's training footage
(``service.generations.memorisation``), writes the outputs and ends the generations. While
a batch renders, a second task looks at what is queued next and starts loading those
requests' adapters, so a cold adapter is usually resident before its batch begins. The
supervisor starts it and starts it again if it dies; a lost lease puts its generations back
in the queue.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import anyio
import anyio.from_thread
import anyio.to_thread
import torch

import service.db.models  # noqa: F401  (every mapper is known before the first query)
from core.bases.catalogue import Catalogue, load_catalogue
from core.bases.quantization import Quantization
from core.logs import configure_logging
from core.settings import Settings, get_settings
from core.storage import ObjectNotFoundError, TenantKeys, storage_from_settings
from core.storage.keys import OUTPUT_MEDIA_TYPES, OUTPUT_POSTER, OUTPUT_PREVIEW, OUTPUT_VIDEO
from service.db.engine import create_engine, session_factory, uninterrupted
from service.generations import memorisation
from service.generations.queue import ClaimedGeneration, GenerationQueue
from trainer.devices import compute_dtype, resolve_device
from trainer.models import load_specification
from trainer.process import flush_denormals
from trainer.serving import AdapterError, AdapterKey, GenerationEngine, GenerationRequest, GenerationStopped
from trainer.video import encode_mp4, encode_poster, encode_preview, to_pixels
from worker import metrics
from worker.provenance import ContentCredentials

logger = logging.getLogger("rushes.worker")
# Progress beats at most this often: per denoising step, without a write per step of a fast one.
PROGRESS_SECONDS = 0.5
# How often the next requests' adapters are looked up for prefetching.
PREFETCH_SECONDS = 1.0


def adapter_key(claimed: ClaimedGeneration) -> AdapterKey:
    return AdapterKey(str(claimed.tenant_id), str(claimed.model_version_id))


@dataclass
class Pace:
    """A batch's denoising steps done, and the time left at the pace since the first step.

    Timed from the first step, not the claim: loading the base and encoding prompts come first.
    """

    steps: int
    done: int = 0
    first: float | None = None
    first_done: int = 0

    def step(self, done: int) -> None:
        if self.first is None:
            self.first, self.first_done = time.monotonic(), done
        self.done = done

    def eta_seconds(self) -> float | None:
        if self.first is None or self.done <= self.first_done:
            return None
        per_step = (time.monotonic() - self.first) / (self.done - self.first_done)
        return per_step * max(0, self.steps - self.done)


class GenerationServer:
    def __init__(self, settings: Settings, *, device: str | None, worker_id: str) -> None:
        self.settings = settings
        self.config = settings.generations
        self.device = resolve_device(device)
        self.worker_id = worker_id
        self.storage = storage_from_settings(settings)
        self.catalogue: Catalogue = load_catalogue(settings.bases)
        self.base_ids = [entry.id for entry in self.catalogue]
        self.engines: dict[str, GenerationEngine] = {}
        self.stopping = anyio.Event()
        self.credentials = ContentCredentials.from_settings(settings)

    def fetch(self, key: AdapterKey) -> bytes:
        # The key names the tenant, so the object read is always under that tenant's prefix.
        try:
            return self.storage.get_bytes(TenantKeys(UUID(key.tenant_id)).adapter_file(UUID(key.version_id)))
        except ObjectNotFoundError:
            raise AdapterError("the adapter file of this model version is missing", key) from None

    async def run(self) -> None:
        engine = create_engine(self.settings.database_url)
        queue = GenerationQueue(
            session_factory(engine),
            self.config,
            fair_share_half_life=self.settings.jobs.fair_share_half_life_seconds,
        )
        logger.info("generation worker started", extra={"worker": self.worker_id, "device": str(self.device)})
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._watch_signals)
                tasks.start_soon(self._prefetch, queue)
                while not self.stopping.is_set():
                    batch = await queue.claim_batch(self.worker_id, self.base_ids, self.config.max_batch)
                    if batch:
                        await self._render(queue, batch)
                        continue
                    with anyio.move_on_after(self.settings.worker.poll_seconds):
                        await self.stopping.wait()
                tasks.cancel_scope.cancel()
        finally:
            for served in self.engines.values():
                served.close()
            await engine.dispose()
            logger.info("generation worker stopped", extra={"worker": self.worker_id})

    async def _watch_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self.stopping.set()
                return

    async def _prefetch(self, queue: GenerationQueue) -> None:
        """Start loading the adapters of what is queued next while the current batch renders."""
        while True:
            await anyio.sleep(PREFETCH_SECONDS)
            for base_id, served in list(self.engines.items()):
                try:
                    upcoming = await uninterrupted(queue.peek([base_id], self.config.max_batch * 2))
                except Exception:
                    # Prefetching only saves time; a failed look must not stop rendering.
                    logger.exception("adapter prefetch failed")
                    continue
                served.prefetch([AdapterKey(str(tenant), str(version)) for tenant, version in upcoming])

    async def _engine(self, base_id: str) -> GenerationEngine:
        if base_id not in self.engines:
            entry = self.catalogue.get(base_id)
            # Serving reads the bf16 weights on accelerators (an NF4 base would cost speed, not
            # memory that matters at inference); fp32 on the CPU.
            quantization = Quantization.BF16 if self.device.type == "cuda" else Quantization.FP32
            spec = load_specification(
                entry.source, device=self.device, dtype=compute_dtype(self.device, quantization)
            )
            self.engines[base_id] = await anyio.to_thread.run_sync(
                lambda: GenerationEngine(
                    spec,
                    quantization=quantization,
                    fetch=self.fetch,
                    device_cache_bytes=self.config.device_cache_bytes,
                    host_cache_bytes=self.config.host_cache_bytes,
                    max_batch=self.config.max_batch,
                )
            )
        return self.engines[base_id]

    async def _render(self, queue: GenerationQueue, batch: list[ClaimedGeneration]) -> None:
        """Render one batch and end each of its generations, beating for its whole life.

        The beat runs beside everything a batch waits on (loading the base, encoding,
        denoising, decoding, writing outputs), so a slow stage never lets the leases lapse.
        It collects the generations to stop: cancelled, or no longer held by this worker.
        """
        ids = [claimed.id for claimed in batch]
        stop: set[UUID] = set()
        pace = Pace(batch[0].steps)
        async with anyio.create_task_group() as beats:
            beats.start_soon(self._beat, queue, ids, pace, stop)
            try:
                await self._render_and_finish(queue, batch, pace, stop)
            finally:
                beats.cancel_scope.cancel()

    async def _beat(self, queue: GenerationQueue, ids: list[UUID], pace: Pace, stop: set[UUID]) -> None:
        """Beat every ``heartbeat_seconds``, and sooner (at most every ``PROGRESS_SECONDS``)
        whenever a denoising step has finished since the last beat, so progress is per step."""
        interval = self.settings.worker.heartbeat_seconds
        tick = min(PROGRESS_SECONDS, interval)
        last_beat, last_step = time.monotonic(), 0
        while True:
            await anyio.sleep(tick)
            now = time.monotonic()
            if pace.done == last_step and now - last_beat < interval:
                continue
            last_beat, last_step = now, pace.done
            try:
                stop.update(
                    await queue.heartbeat(self.worker_id, ids, pace.done, eta_seconds=pace.eta_seconds())
                )
            except Exception:
                # A missed beat is not fatal while the lease lasts; the next one tries again.
                logger.exception("generation heartbeat failed")

    async def _render_and_finish(
        self, queue: GenerationQueue, batch: list[ClaimedGeneration], pace: Pace, stop: set[UUID]
    ) -> None:
        ids = [claimed.id for claimed in batch]

        def on_step(done: int) -> None:
            # Runs on the engine's thread, between denoising steps.
            pace.step(done)
            if self.stopping.is_set() or stop.issuperset(ids):
                raise GenerationStopped

        try:
            served = await self._engine(batch[0].base_id)
            requests = [self._request(claimed) for claimed in batch]
            started = time.monotonic()
            frames = await anyio.to_thread.run_sync(lambda: served.generate(requests, on_step))
        except GenerationStopped:
            await self._stopped(queue, ids, stop)
            return
        except AdapterError as exc:
            await self._adapter_failed(queue, batch, exc)
            return
        except Exception as exc:
            logger.exception("generation batch failed", extra={"generations": [str(i) for i in ids]})
            for generation_id in ids:
                await queue.finish_failed(self.worker_id, generation_id, _reason(exc))
            metrics.finished("generation", "failed", len(ids))
            return
        elapsed = time.monotonic() - started
        metrics.rendered(elapsed, self.device)
        metrics.adapter_cache(batch[0].base_id, served.cache.stats)
        # Every sample of the batch cost the same; a cancelled one that rendered is charged too.
        share = elapsed / len(batch)
        for claimed, video in zip(batch, frames, strict=True):
            if claimed.id in stop:
                await queue.finish_cancelled(self.worker_id, claimed.id, gpu_seconds=share)
                metrics.finished("generation", "cancelled")
                continue
            try:
                verdict = await self._memorisation(queue, claimed, video)
            except Exception as exc:
                logger.exception("memorisation check failed", extra={"generation": str(claimed.id)})
                await queue.finish_failed(self.worker_id, claimed.id, _reason(exc))
                metrics.finished("generation", "failed")
                continue
            if verdict.withheld:
                # Nothing was stored, and a failed generation is never charged.
                await queue.finish_failed(
                    self.worker_id, claimed.id, memorisation.WITHHELD, memorisation=verdict.record
                )
                metrics.finished("generation", "failed")
                continue
            size = await anyio.to_thread.run_sync(self._store_outputs, claimed, video)
            await queue.finish_succeeded(
                self.worker_id, claimed.id, output_bytes=size, gpu_seconds=share, memorisation=verdict.record
            )
            metrics.finished("generation", "succeeded")

    async def _memorisation(
        self, queue: GenerationQueue, claimed: ClaimedGeneration, frames: torch.Tensor
    ) -> memorisation.Verdict:
        """Whether the output nearly copies its model's training footage; checked before storing any."""
        return await memorisation.check(
            queue.sessions,
            self.storage,
            tenant_id=claimed.tenant_id,
            model_id=claimed.model_id,
            model_version_id=claimed.model_version_id,
            pixels=to_pixels(frames),
        )

    def _request(self, claimed: ClaimedGeneration) -> GenerationRequest:
        return GenerationRequest(
            adapter=adapter_key(claimed),
            prompt=claimed.prompt,
            negative_prompt=claimed.negative_prompt,
            width=claimed.width,
            height=claimed.height,
            frames=claimed.frames,
            steps=claimed.steps,
            guidance=claimed.guidance,
            seed=claimed.seed,
            strength=claimed.adapter_strength,
        )

    async def _stopped(self, queue: GenerationQueue, ids: Sequence[UUID], stop: set[UUID]) -> None:
        for generation_id in ids:
            if generation_id in stop:
                await queue.finish_cancelled(self.worker_id, generation_id)
        # Shutting down: the rest go back to the queue without their attempt counting.
        rest = [i for i in ids if i not in stop]
        await queue.release(self.worker_id, rest)
        metrics.finished("generation", "cancelled", len(ids) - len(rest))
        metrics.finished("generation", "released", len(rest))

    async def _adapter_failed(
        self, queue: GenerationQueue, batch: list[ClaimedGeneration], exc: AdapterError
    ) -> None:
        """The requests on the unusable adapter fail with its reason; the others go back to the queue."""
        reason = f"This model version cannot be served: {exc}."
        failed = [c.id for c in batch if exc.key is None or adapter_key(c) == exc.key]
        for generation_id in failed:
            await queue.finish_failed(self.worker_id, generation_id, reason)
        others = [c.id for c in batch if c.id not in failed]
        await queue.release(self.worker_id, others, reason="a batch-mate's adapter could not be served")
        metrics.finished("generation", "failed", len(failed))
        metrics.finished("generation", "released", len(others))

    def _store_outputs(self, claimed: ClaimedGeneration, frames: torch.Tensor) -> int:
        """Write the three files; downloads open only when ``finish_succeeded`` marks the
        generation succeeded, after all three are in storage."""
        outputs = {
            OUTPUT_POSTER: encode_poster(frames),
            OUTPUT_PREVIEW: encode_preview(frames, max_side=self.config.preview_max_side),
            OUTPUT_VIDEO: self.credentials.sign_mp4(encode_mp4(frames), claimed),
        }
        keys = TenantKeys(claimed.tenant_id)
        for name, data in outputs.items():
            self.storage.put_bytes(keys.output(claimed.id, name), data, OUTPUT_MEDIA_TYPES[name])
        return sum(len(data) for data in outputs.values())


def _reason(exc: Exception) -> str:
    if type(exc).__name__ == "OutOfMemoryError":
        return "The generation ran out of accelerator memory; lower the resolution or frames and try again."
    return (
        f"The generation stopped with an internal error ({type(exc).__name__}); try again or contact support."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.generate")
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log)
    flush_denormals()
    server = GenerationServer(settings, device=args.device, worker_id=args.worker_id)
    anyio.run(server.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
