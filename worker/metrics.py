"""A worker's Prometheus metrics: recorded by each of its processes, served by its supervisor.

Fine-tunes and the generation role run in child processes of the supervisor, so numbers
kept in their memory would be lost with them, and no one port could show them all.
prometheus_client's multiprocess mode answers both: while ``serving`` runs, every process
the supervisor starts inherits ``PROMETHEUS_MULTIPROC_DIR`` and writes its samples to files
in that folder, and the supervisor's endpoint adds them up at each scrape. A finished
child's counts stay counted for as long as the supervisor lives.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from core.settings import MetricsSettings

if TYPE_CHECKING:
    import torch

    from trainer import StepReport
    from trainer.serving import CacheStats

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# What ``trainer.devices.peak_memory`` calls a CUDA peak; on the CPU it reports the RSS instead.
CUDA_PEAK = "cuda_max_allocated"

Kind = Literal["fine_tune", "generation"]
# released: handed back to the queue unfinished (shutdown, or a batch-mate's bad adapter);
# lease_lost: another worker owns it now.
Outcome = Literal["succeeded", "failed", "cancelled", "released", "lease_lost"]

FINISHED = Counter(
    "rushes_worker_jobs_finished",
    "Fine-tunes and generations this worker's processes stopped working on, by how",
    ["kind", "outcome"],
)
TRAIN_STEP_SECONDS = Histogram(
    "rushes_worker_train_step_seconds",
    "Seconds per training step as the worker sees them, checkpoints and samples included",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60, 120),
)
GENERATION_SECONDS = Histogram(
    "rushes_worker_generation_batch_seconds",
    "Seconds to render one batch of generations (up to RUSHES_GENERATIONS__MAX_BATCH together)",
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800),
)
GPU_MEMORY_PEAK = Gauge(
    "rushes_worker_gpu_memory_peak_bytes",
    "The most CUDA memory one process of this worker has allocated (torch's max_memory_allocated)",
    ["kind"],
    multiprocess_mode="max",
)

GPU_SECONDS = Counter(
    "rushes_worker_gpu_seconds",
    "Device seconds spent, as the usage ledger measures them: a fine-tune's wall time times its "
    "share of the device, a generation batch's rendering time",
    ["kind"],
)
# The adapter cache's tiers: ``device`` (the accelerator's LoRA rows) and ``host`` (memory);
# a host miss is a read from storage. Labelled by base (a bounded catalogue), never tenant.
ADAPTER_CACHE_HITS = Counter(
    "rushes_worker_adapter_cache_hits",
    "Adapters found in a tier: on the accelerator when a batch asked for them, or in host memory when loaded",
    ["base", "tier"],
)
ADAPTER_CACHE_MISSES = Counter(
    "rushes_worker_adapter_cache_misses",
    "Adapters a tier lacked: loaded onto the accelerator (device), or read from storage (host)",
    ["base", "tier"],
)
ADAPTER_CACHE_EVICTIONS = Counter(
    "rushes_worker_adapter_cache_evictions",
    "Adapters a tier dropped to make room for another",
    ["base", "tier"],
)
CACHE_COUNTERS = (ADAPTER_CACHE_HITS, ADAPTER_CACHE_MISSES, ADAPTER_CACHE_EVICTIONS)
# The generation process's cache counts (it keeps one engine, so one cache, per base) by
# base and tier, as ``adapter_cache`` last read them.
_cache_seen: dict[tuple[str, str], tuple[int, int, int]] = {}


@contextmanager
def serving(settings: MetricsSettings) -> Iterator[None]:
    """Serve the worker's metrics on ``worker_host:worker_port`` for the block (nothing when the port is 0).

    Call it before the supervisor starts any child: the folder the children write to is
    named in the environment they inherit, and it is new and empty for each run.
    """
    if not settings.worker_port:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="rushes-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR] = folder
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        server, thread = start_http_server(settings.worker_port, addr=settings.worker_host, registry=registry)
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
            del os.environ[MULTIPROCESS_DIR]


def finished(kind: Kind, outcome: Outcome, count: int = 1) -> None:
    if count:
        FINISHED.labels(kind, outcome).inc(count)


class StepClock:
    """Times the steps of one fine-tune from the trainer's step reports, and keeps its CUDA peak."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def report(self, report: StepReport) -> None:
        now = time.monotonic()
        # The first report after a start or resume times preparation too: it only sets the clock.
        if self._last is not None and report.step > self._last[0]:
            TRAIN_STEP_SECONDS.observe((now - self._last[1]) / (report.step - self._last[0]))
        self._last = (report.step, now)
        if report.peak_memory_kind == CUDA_PEAK:
            GPU_MEMORY_PEAK.labels("fine_tune").set(report.peak_memory_bytes)


def gpu_seconds(kind: Kind, seconds: float) -> None:
    GPU_SECONDS.labels(kind).inc(seconds)


def rendered(seconds: float, device: torch.device) -> None:
    """One batch rendered in ``seconds`` on ``device``."""
    GENERATION_SECONDS.observe(seconds)
    gpu_seconds("generation", seconds)
    if device.type == "cuda":
        import torch

        GPU_MEMORY_PEAK.labels("generation").set(torch.cuda.max_memory_allocated(device))


def adapter_cache(base: str, stats: CacheStats) -> None:
    """Add what the cache of ``base`` counted since the last call; the worker calls it after each batch.

    The cache counts on its loader thread as well as the batch's, and knows nothing of
    Prometheus: its totals are read here, so a prefetch's load shows by the next batch.
    """
    tiers = {
        "device": (stats.device_hits, stats.device_loads, stats.device_evictions),
        "host": (stats.host_hits, stats.storage_loads, stats.host_evictions),
    }
    for tier, counts in tiers.items():
        seen = _cache_seen.get((base, tier), (0, 0, 0))
        _cache_seen[base, tier] = counts
        for counter, now, before in zip(CACHE_COUNTERS, counts, seen, strict=True):
            counter.labels(base, tier).inc(now - before)
