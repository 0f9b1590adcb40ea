"""The tiered adapter cache's counts, which the worker exports as hits, misses and evictions per tier."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from core.bases.quantization import Quantization
from tests.adapters import random_adapter
from trainer.models import load_specification
from trainer.models.registry import ModelSpecification
from trainer.serving import AdapterKey, AdapterPool, CacheStats, TieredAdapterCache

A, B, C = (AdapterKey(f"tenant-{name}", "v") for name in "abc")


FILES = {key: random_adapter(seed, rank=4) for seed, key in enumerate((A, B, C))}


@pytest.fixture(scope="module")
def spec() -> ModelSpecification:
    return load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(scope="module")
def sizes(spec: ModelSpecification) -> tuple[int, int]:
    """The bytes of one LoRA row on the accelerator, and of one rank-4 adapter in host memory."""
    transformer = spec.load_transformer(Quantization.FP32)
    pool = AdapterPool(transformer, spec.default_lora_targets, budget_bytes=1 << 30, dtype=torch.float32)
    cache = TieredAdapterCache(pool, FILES.__getitem__, host_bytes=1 << 30)
    cache.release(cache.acquire([A]))
    cache.close()
    return pool.row_bytes, cache.host_bytes_used()


def _cache(
    spec: ModelSpecification, sizes: tuple[int, int], *, rows: int, host_adapters: float
) -> TieredAdapterCache:
    """Room for ``rows`` LoRA rows (the zero row among them) and ``host_adapters`` adapters in host memory."""
    row_bytes, adapter_bytes = sizes
    transformer = spec.load_transformer(Quantization.FP32)
    pool = AdapterPool(
        transformer, spec.default_lora_targets, budget_bytes=rows * row_bytes, dtype=torch.float32
    )
    return TieredAdapterCache(pool, FILES.__getitem__, host_bytes=int(host_adapters * adapter_bytes))


def _use(cache: TieredAdapterCache, *keys: AdapterKey) -> CacheStats:
    cache.release(cache.acquire(keys))
    return dataclasses.replace(cache.stats)


def _counts(stats: CacheStats) -> dict[str, int]:
    return {
        "device_hits": stats.device_hits,
        "device_loads": stats.device_loads,
        "device_evictions": stats.device_evictions,
        "host_hits": stats.host_hits,
        "storage_loads": stats.storage_loads,
        "host_evictions": stats.host_evictions,
    }


def test_a_cold_adapter_is_a_miss_in_both_tiers_and_then_a_device_hit(
    spec: ModelSpecification, sizes: tuple[int, int]
) -> None:
    cache = _cache(spec, sizes, rows=64, host_adapters=4)
    try:
        cold = _use(cache, A)
        warm = _use(cache, A)
    finally:
        cache.close()
    assert _counts(cold) == {
        "device_hits": 0,
        "device_loads": 1,
        "device_evictions": 0,
        "host_hits": 0,
        "storage_loads": 1,
        "host_evictions": 0,
    }
    assert _counts(warm) == {**_counts(cold), "device_hits": 1}


def test_a_prefetched_adapter_is_its_batchs_miss_not_also_a_hit(
    spec: ModelSpecification, sizes: tuple[int, int]
) -> None:
    cache = _cache(spec, sizes, rows=64, host_adapters=4)
    try:
        cache.prefetch([A])
        deadline = time.monotonic() + 60
        while cache.tier(A) != "device":
            assert time.monotonic() < deadline, "the prefetch never finished"
            time.sleep(0.01)
        first = _use(cache, A)
        second = _use(cache, A)
    finally:
        cache.close()
    assert (first.device_loads, first.device_hits) == (1, 0)
    assert (second.device_loads, second.device_hits) == (1, 1)


def test_full_tiers_evict(spec: ModelSpecification, sizes: tuple[int, int]) -> None:
    # The accelerator holds two rank-4 adapters (eight rows beside the zero row), host memory one.
    cache = _cache(spec, sizes, rows=9, host_adapters=1.5)
    try:
        _use(cache, A)
        second = _use(cache, B)
        third = _use(cache, C)
    finally:
        cache.close()
    assert (second.device_evictions, second.host_evictions) == (0, 1)
    assert (third.device_evictions, third.host_evictions) == (1, 2)
    assert (third.device_loads, third.storage_loads, third.host_hits, third.device_hits) == (3, 3, 0, 0)


def test_an_adapter_left_in_host_memory_loads_from_there(
    spec: ModelSpecification, sizes: tuple[int, int]
) -> None:
    # The accelerator holds one rank-4 adapter, host memory two.
    cache = _cache(spec, sizes, rows=5, host_adapters=2.5)
    try:
        _use(cache, A)
        _use(cache, B)
        back = _use(cache, A)
    finally:
        cache.close()
    assert _counts(back) == {
        "device_hits": 0,
        "device_loads": 3,
        "device_evictions": 2,
        "host_hits": 1,
        "storage_loads": 2,
        "host_evictions": 0,
    }
