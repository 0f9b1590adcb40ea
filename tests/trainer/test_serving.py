"""The serving engine on the tiny base: per-sample adapters, mixed batches, the tiered cache."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.bases.quantization import Quantization
from tests.adapters import random_adapter
from tests.pipelines import stock_pipeline
from trainer.models import load_specification
from trainer.quantize import bnb
from trainer.serving import (
    AdapterError,
    AdapterKey,
    AdapterPool,
    CacheFullError,
    GenerationEngine,
    GenerationRequest,
    GenerationStopped,
    TieredAdapterCache,
)
from trainer.serving.policy import GreedyDualSizeFrequency

A = AdapterKey("tenant-a", "version-1")
B = AdapterKey("tenant-b", "version-1")  # the same version id under another tenant


class Store:
    """Adapter files by key, counting reads, as object storage would serve them."""

    def __init__(self, files: dict[AdapterKey, bytes]) -> None:
        self.files = files
        self.reads: Counter[AdapterKey] = Counter()

    def __call__(self, key: AdapterKey) -> bytes:
        self.reads[key] += 1
        return self.files[key]


@pytest.fixture(scope="module")
def spec():
    return load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)


@pytest.fixture(scope="module")
def store() -> Store:
    return Store({A: random_adapter(1), B: random_adapter(2)})


def build_engine(spec, store: Store, quantization: Quantization = Quantization.FP32) -> GenerationEngine:
    return GenerationEngine(
        spec,
        quantization=quantization,
        fetch=store,
        device_cache_bytes=64 << 20,
        host_cache_bytes=64 << 20,
        max_batch=4,
    )


@pytest.fixture(scope="module")
def engine(spec, store):
    engine = build_engine(spec, store)
    yield engine
    engine.close()


def request(adapter: AdapterKey | None, **overrides) -> GenerationRequest:
    values = {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 4, "frames": 5, **overrides}
    return GenerationRequest(adapter=adapter, **values)


@pytest.mark.parametrize("quantization", [Quantization.FP32, Quantization.NF4])
def test_the_engine_renders_what_the_stock_pipeline_does_with_the_adapter(
    spec, store, engine, quantization: Quantization, tmp_path: Path
) -> None:
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(random_adapter(1))
    pipeline = stock_pipeline(spec, quantization)
    own = quantization is not Quantization.FP32
    if own:
        engine = build_engine(spec, Store(dict(store.files)), quantization)
        # The base's block linears are bitsandbytes' own 4-bit layers, the LoRA rows beside them.
        assert isinstance(engine.pool.modules[0].base, bnb.nn.Linear4bit)

    def stock() -> np.ndarray:
        return np.asarray(
            pipeline(
                "a lighthouse at dusk",
                negative_prompt="",
                height=64,
                width=64,
                num_frames=5,
                num_inference_steps=4,
                guidance_scale=5.0,
                generator=torch.Generator().manual_seed(7),
                max_sequence_length=spec.max_sequence_length,
            ).frames[0]
        )

    bare = stock()
    pipeline.load_lora_weights(str(path))
    adapted = stock()

    try:
        ours_bare, ours_adapted = engine.generate([request(None), request(A)]).numpy()
    finally:
        if own:
            engine.close()
    # A batch of two sums in another order than the stock pipeline's single videos: float32
    # noise of ~1e-5 through the VAE (seen on one machine), four orders below the adapter's effect.
    np.testing.assert_allclose(ours_bare, bare, rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours_adapted, adapted, rtol=0, atol=1e-4)
    assert np.abs(adapted - bare).max() > 0.1  # the adapter visibly changes the video


def test_each_sample_of_a_mixed_batch_equals_its_solo_run(engine) -> None:
    requests = [
        request(A),
        request(B),
        request(None),
        request(A, prompt="a dog in the snow", seed=11, strength=0.5, guidance=3.0),
    ]
    batch = engine.generate(requests)
    solos = [engine.generate([r])[0] for r in requests]
    for index, solo in enumerate(solos):
        # The stated tolerance: fp32 on the CPU, frames in [0, 1].
        assert (batch[index] - solo).abs().max().item() <= 1e-4
    # Isolation: tenant B's sample is B's video, nowhere near A's, though both name "version-1".
    assert (solos[0] - solos[1]).abs().max().item() > 0.1
    for index, solo in enumerate(solos):
        nearest = min(range(len(solos)), key=lambda j: (batch[j] - solo).abs().mean().item())
        assert nearest == index


def test_strength_scales_the_adapter(engine) -> None:
    bare, off, half, full = engine.generate(
        [request(None), request(A, strength=0.0), request(A, strength=0.5), request(A)]
    )
    assert (off - bare).abs().max().item() <= 1e-6
    assert 0 < (half - bare).abs().mean() < (full - bare).abs().mean()


def test_a_step_callback_can_stop_a_batch(engine) -> None:
    seen: list[int] = []

    def on_step(step: int) -> None:
        seen.append(step)
        if step == 2:
            raise GenerationStopped

    with pytest.raises(GenerationStopped):
        engine.generate([request(A), request(B)], on_step=on_step)
    assert seen == [1, 2]
    # The adapters were unpinned and the routing cleared: the next batches render as before.
    assert engine.pool.routing.rows is None
    (bare,) = engine.generate([request(None)])
    (again,) = engine.generate([request(A)])
    assert (again - bare).abs().max().item() > 0.1


def test_a_batch_whose_adapters_do_not_fit_together_renders_in_halves(spec, store, engine) -> None:
    """An accelerator tier with room for one rank-4 adapter still serves a batch of two."""
    probe = AdapterPool(
        spec.load_transformer(Quantization.FP32),
        spec.default_lora_targets,
        budget_bytes=1 << 20,
        dtype=torch.float32,
    )
    small = GenerationEngine(
        spec,
        quantization=Quantization.FP32,
        fetch=store,
        device_cache_bytes=5 * probe.row_bytes,
        host_cache_bytes=0,
        max_batch=2,
        max_rank=4,
    )
    try:
        assert small.pool.rows == 5
        steps: list[int] = []
        halves = small.generate([request(A), request(B)], on_step=steps.append)
    finally:
        small.close()
    together = engine.generate([request(A), request(B)])
    assert (halves - together).abs().max().item() <= 1e-4
    assert steps == [1, 2, 3, 4, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="needs 5"):
        GenerationEngine(
            spec,
            quantization=Quantization.FP32,
            fetch=store,
            device_cache_bytes=4 * probe.row_bytes,
            host_cache_bytes=0,
            max_batch=2,
            max_rank=4,
        )


def test_a_batch_mixes_only_compatible_requests(engine) -> None:
    with pytest.raises(ValueError, match="share size"):
        engine.generate([request(A), request(B, width=32)])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not safetensors at all", "not a readable safetensors"),
        (random_adapter(3, rank=300), "above this server's limit"),
    ],
)
def test_an_adapter_the_server_cannot_apply_fails_with_a_reason(spec, data: bytes, message: str) -> None:
    key = AdapterKey("tenant-c", "bad")
    engine_cache = _cache(spec, Store({key: data}), rows=400, host_bytes=1 << 20)
    with pytest.raises(AdapterError, match=message):
        engine_cache.acquire([key])


def _cache(spec, store: Store, *, rows: int, host_bytes: int) -> TieredAdapterCache:
    transformer = spec.load_transformer(Quantization.FP32)
    probe = AdapterPool(transformer, spec.default_lora_targets, budget_bytes=1 << 30, dtype=torch.float32)
    pool = AdapterPool(
        spec.load_transformer(Quantization.FP32),
        spec.default_lora_targets,
        budget_bytes=rows * probe.row_bytes,
        dtype=torch.float32,
    )
    return TieredAdapterCache(pool, store, host_bytes=host_bytes)


def test_the_tiers_keep_to_their_byte_budgets(spec) -> None:
    keys = [AdapterKey(f"tenant-{i}", "v") for i in range(12)]
    store = Store({key: random_adapter(i, rank=4) for i, key in enumerate(keys)})
    probe = _cache(spec, store, rows=64, host_bytes=1 << 30)
    probe.acquire([keys[0]])
    adapter_bytes = probe.host_bytes_used()
    # Room for three rank-4 adapters on the accelerator (12 rows beside the zero row) and
    # five in host memory.
    cache = _cache(spec, store, rows=13, host_bytes=5 * adapter_bytes)
    store.reads.clear()
    for key in keys:
        cache.release([*cache.acquire([key])])
        device, host = cache.resident()
        assert device <= 3 and host <= 5
        assert cache.host_bytes_used() <= 5 * adapter_bytes
    assert cache.resident() == (3, 5)
    assert cache.stats.device_evictions == 9 and cache.stats.host_evictions == 7
    # An adapter still in host memory comes back without reading storage; an evicted one is read again.
    in_host = next(key for key in keys if cache.tier(key) == "host")
    evicted = next(key for key in keys if cache.tier(key) is None)
    for key in (in_host, evicted):
        cache.release([*cache.acquire([key])])
        assert cache.tier(key) == "device"
    assert store.reads[in_host] == 1 and store.reads[evicted] == 2


def test_pinned_adapters_survive_any_amount_of_loading(spec) -> None:
    keys = [AdapterKey(f"tenant-{i}", "v") for i in range(8)]
    store = Store({key: random_adapter(i, rank=4) for i, key in enumerate(keys)})
    cache = _cache(spec, store, rows=13, host_bytes=1 << 30)
    pinned = cache.acquire(keys[:2])
    rows = {key: cache.pool.modules[0].a_rows[list(entry.rows)].clone() for key, entry in pinned.items()}
    for key in keys[2:]:
        cache.release([*cache.acquire([key])])
    for key, entry in pinned.items():
        assert torch.equal(cache.pool.modules[0].a_rows[list(entry.rows)], rows[key])
    # Two pinned rank-4 adapters leave one free slot of four rows: two more cannot fit at once.
    with pytest.raises(CacheFullError, match="cannot hold"):
        cache.acquire(keys[2:4])
    cache.release(keys[:2])
    cache.release([*cache.acquire(keys[2:4])])


def test_eviction_weighs_uses_reload_cost_size_and_age() -> None:
    def fill(policy: GreedyDualSizeFrequency[str], capacity: int, keys: list[str]) -> list[str]:
        resident = list(keys[:capacity])
        for key in keys[capacity:]:
            victim = policy.victim()
            assert victim is not None
            policy.evict(victim)
            resident.remove(victim)
            policy.touch(key, cost=1.0, size=100)
            resident.append(key)
        return resident

    policy: GreedyDualSizeFrequency[str] = GreedyDualSizeFrequency()
    policy.touch("popular", cost=1.0, size=100)
    for _ in range(9):
        policy.touch("popular")
    policy.touch("slow", cost=3.0, size=100)
    policy.touch("large", cost=1.0, size=1000)
    policy.touch("small", cost=1.0, size=100)
    # Equal in uses: the larger leaves first, then the cheaper to reload.
    assert policy.victim() == "large"
    policy.evict("large")
    assert policy.victim() == "small"
    # A popular entry outlasts a run of one-off entries (LRU of three would have dropped it)...
    resident = fill(policy, 3, ["popular", "slow", "small", *(f"once-{i}" for i in range(5))])
    assert "popular" in resident
    # ...but not for ever: without new uses it ages out.
    resident = fill(policy, 3, [*resident, *(f"later-{i}" for i in range(40))])
    assert "popular" not in resident
