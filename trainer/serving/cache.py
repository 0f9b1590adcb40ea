"""The tiered adapter cache: accelerator rows, then host memory, then storage.

Each tier has a byte budget and its own Greedy-Dual-Size-Frequency policy. One loader
thread moves adapters up the tiers, so a cold load (storage read, unpacking, the copy to
the accelerator) runs beside the batch that is denoising, not in front of it: the engine
asks for a batch's adapters before it encodes the prompts, and the worker asks for queued
requests' adapters while the current batch runs. Adapters in a running batch are pinned
and never evicted; everything else may be.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from trainer.serving.adapters import AdapterError, AdapterKey, CacheFullError, HostAdapter, unpack
from trainer.serving.policy import GreedyDualSizeFrequency
from trainer.serving.pool import AdapterPool

Fetch = Callable[[AdapterKey], bytes]
# The largest LoRA rank a fine-tune can ask for (``Hyperparameters.rank``).
MAX_RANK = 256


@dataclass(frozen=True)
class Resident:
    """An adapter in the accelerator tier: its rows and its peft scaling."""

    rows: tuple[int, ...]
    scaling: float
    ready: torch.cuda.Event | None  # the copy's completion on the loader stream (CUDA only)


@dataclass
class CacheStats:
    """Counts since the cache was made.

    Each adapter a batch asks for (``acquire``) that is already on the accelerator is a
    device hit; one that is not needs a load, and every load onto the accelerator is a
    device miss, served from host memory (a host hit) or read from storage (a host miss,
    ``storage_loads``). A load a prefetch started is the miss of the batch that then uses
    the adapter, not also its hit, so hits say how often a batch found its adapter resident.
    """

    device_hits: int = 0
    host_hits: int = 0
    storage_loads: int = 0
    device_evictions: int = 0
    host_evictions: int = 0
    load_seconds: float = 0.0

    @property
    def device_loads(self) -> int:
        return self.host_hits + self.storage_loads


class TieredAdapterCache:
    def __init__(self, pool: AdapterPool, fetch: Fetch, *, host_bytes: int, max_rank: int = MAX_RANK) -> None:
        self.pool = pool
        self.fetch = fetch
        self.host_bytes = host_bytes
        self.max_rank = max_rank
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._host: dict[AdapterKey, HostAdapter] = {}
        self._host_used = 0
        self._host_policy: GreedyDualSizeFrequency[AdapterKey] = GreedyDualSizeFrequency()
        self._device: dict[AdapterKey, Resident] = {}
        self._device_policy: GreedyDualSizeFrequency[AdapterKey] = GreedyDualSizeFrequency()
        self._free_rows = list(range(pool.rows - 1, 0, -1))  # row 0 is the zero row
        self._pins: Counter[AdapterKey] = Counter()
        # Loaded onto the accelerator and not acquired since: the next acquire is no hit.
        self._unused: set[AdapterKey] = set()
        # Adapters a waiting ``acquire`` needs: loading one of its batch-mates, or a
        # prefetch, never evicts them, so a batch that fits always gets all of them.
        self._wanted: Counter[AdapterKey] = Counter()
        self._pending: dict[AdapterKey, Future[None]] = {}
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adapter-loader")
        cuda = pool.device.type == "cuda"
        self._stream = torch.cuda.Stream(pool.device) if cuda else None  # type: ignore[no-untyped-call]

    # What the engine and the worker call
    def prefetch(self, keys: Iterable[AdapterKey]) -> None:
        """Start moving these adapters to the accelerator; returns at once."""
        with self._lock:
            for key in dict.fromkeys(keys):
                if key not in self._device and key not in self._pending:
                    self._submit(key)

    def acquire(self, keys: Sequence[AdapterKey]) -> dict[AdapterKey, Resident]:
        """Wait until every adapter is on the accelerator and pin it there until ``release``."""
        unique = list(dict.fromkeys(keys))
        with self._lock:
            self._wanted.update(unique)
        pinned: list[AdapterKey] = []
        try:
            self.prefetch(unique)
            for key in unique:
                pinned.append(self._wait_and_pin(key))
        except BaseException:
            self.release(pinned)
            raise
        finally:
            with self._lock:
                self._wanted.subtract(unique)
                self._wanted = +self._wanted
        with self._lock:
            resident = {key: self._device[key] for key in unique}
        if self._stream is not None:
            for entry in resident.values():
                if entry.ready is not None:
                    torch.cuda.current_stream(self.pool.device).wait_event(entry.ready)
        return resident

    def release(self, keys: Iterable[AdapterKey]) -> None:
        with self._lock:
            for key in dict.fromkeys(keys):
                self._pins[key] -= 1
                if self._pins[key] <= 0:
                    del self._pins[key]

    def evict(self, key: AdapterKey) -> None:
        """Drop an adapter from both tiers (a deleted model version, or a benchmark's cold start)."""
        with self._lock:
            if key in self._pins:
                raise RuntimeError("an adapter in a running batch cannot be evicted")
            if key in self._device:
                self._drop_device(key)
            if key in self._host:
                self._drop_host(key)

    def resident(self) -> tuple[int, int]:
        """How many adapters the accelerator and host tiers hold."""
        with self._lock:
            return len(self._device), len(self._host)

    def tier(self, key: AdapterKey) -> str | None:
        """Where an adapter is: ``"device"``, ``"host"`` (only there) or None (storage)."""
        with self._lock:
            return "device" if key in self._device else "host" if key in self._host else None

    def host_bytes_used(self) -> int:
        with self._lock:
            return self._host_used

    def close(self) -> None:
        self._loader.shutdown(wait=True, cancel_futures=True)

    # The loader thread
    def _submit(self, key: AdapterKey) -> Future[None]:
        future = self._loader.submit(self._load, key)
        self._pending[key] = future
        future.add_done_callback(lambda _: self._finish_pending(key, future))
        return future

    def _finish_pending(self, key: AdapterKey, future: Future[None]) -> None:
        with self._lock:
            if self._pending.get(key) is future:
                del self._pending[key]

    def _wait_and_pin(self, key: AdapterKey) -> AdapterKey:
        # A load that finished before this acquire marked the key wanted may have been
        # evicted since; it is loaded again once. A third round would mean a bug.
        for _ in range(3):
            with self._lock:
                if key in self._device:
                    self._pins[key] += 1
                    self._device_policy.touch(key)
                    if key in self._unused:
                        self._unused.discard(key)
                    else:
                        self.stats.device_hits += 1
                    return key
                future = self._pending.get(key) or self._submit(key)
            try:
                future.result()
            except AdapterError as exc:
                raise type(exc)(str(exc), key) from exc
        raise CacheFullError("the accelerator's adapter cache is too small for this batch")

    def _load(self, key: AdapterKey) -> None:
        started = time.perf_counter()
        with self._lock:
            adapter = self._host.get(key)
            if adapter is not None:
                self._host_policy.touch(key)
                self.stats.host_hits += 1
        if adapter is None:
            adapter = unpack(
                key,
                self.fetch(key),
                self.pool.shapes,
                max_rank=self.max_rank,
                dtype=self.pool.dtype,
                pin_memory=self._stream is not None,
            )
            fetch_seconds = time.perf_counter() - started
            with self._lock:
                self.stats.storage_loads += 1
                self._keep_in_host(adapter, fetch_seconds)
        with self._lock:
            rows = self._take_rows(adapter.rank)
        try:
            ready = self._write(adapter, rows)
        except BaseException:
            with self._lock:
                self._free_rows.extend(rows)
            raise
        seconds = time.perf_counter() - started
        with self._lock:
            self._device[key] = Resident(tuple(rows), adapter.scaling, ready)
            self._unused.add(key)
            self._device_policy.touch(key, cost=seconds, size=len(rows) * self.pool.row_bytes)
            self.stats.load_seconds += seconds

    def _write(self, adapter: HostAdapter, rows: list[int]) -> torch.cuda.Event | None:
        if self._stream is None:
            self.pool.write(adapter, rows)
            return None
        with torch.cuda.stream(self._stream):
            self.pool.write(adapter, rows)
            ready = torch.cuda.Event()  # type: ignore[no-untyped-call]
            ready.record(self._stream)
        # Waited for here, on the loader thread, so the measured reload cost includes the copy.
        ready.synchronize()
        return ready

    def _keep_in_host(self, adapter: HostAdapter, cost: float) -> None:
        if adapter.nbytes > self.host_bytes:
            return  # larger than the whole tier: it passes straight through to the accelerator
        while self._host_used + adapter.nbytes > self.host_bytes:
            victim = self._host_policy.victim()
            assert victim is not None  # the tier is non-empty while over budget
            self._drop_host(victim, evicted=True)
        self._host[adapter.key] = adapter
        self._host_used += adapter.nbytes
        self._host_policy.touch(adapter.key, cost=cost, size=adapter.nbytes)

    def _take_rows(self, rank: int) -> list[int]:
        while len(self._free_rows) < rank:
            victim = self._device_policy.victim(exclude=self._pins.keys() | self._wanted.keys())
            if victim is None:
                raise CacheFullError(
                    f"the accelerator's adapter cache ({self.pool.rows - 1} rows) cannot hold "
                    f"another rank-{rank} adapter beside the adapters in use"
                )
            self._drop_device(victim, evicted=True)
        return [self._free_rows.pop() for _ in range(rank)]

    def _drop_device(self, key: AdapterKey, *, evicted: bool = False) -> None:
        entry = self._device.pop(key)
        self._free_rows.extend(entry.rows)
        self._unused.discard(key)
        if evicted:
            self._device_policy.evict(key)
            self.stats.device_evictions += 1
        else:
            self._device_policy.forget(key)

    def _drop_host(self, key: AdapterKey, *, evicted: bool = False) -> None:
        self._host_used -= self._host.pop(key).nbytes
        if evicted:
            self._host_policy.evict(key)
            self.stats.host_evictions += 1
        else:
            self._host_policy.forget(key)
