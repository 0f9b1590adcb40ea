"""Serving many tenants' adapters over one resident base: switching, cold loads, traces, memory.

    .venv/bin/python -m bench.serve [--device cpu] [--bases tiny,wan-336m] [--requests 96]

For each base it builds one ``GenerationEngine`` (the worker's own code path) over adapter
files in a local storage folder, then measures, side by side in one run:

(a) switch time between resident adapters with 2 and with 100 loaded: acquiring an adapter
    and routing a batch to it, and one denoising forward routed to it; for reference, the
    same switch through diffusers' ``set_adapters`` with 2 and 100 peft adapters loaded;
(b) a cold adapter's added latency (storage to accelerator) as a share of one generation;
(c) a Zipf(1.0) trace over 1,000 adapters against the same trace on one adapter, served in
    arrival order in batches of ``--batch``, prefetching the next batch's adapters as the
    worker does;
(d) resident memory after 10,000 load/evict cycles (every cycle a storage load, an unpack
    and an accelerator write, with evictions in both tiers) against after the first 200;
(e) a mixed batch of N adapters against a one-adapter batch of N.

``wan-336m`` is the Wan 2.1 transformer at 20 layers, dim 1024, FFN 4096 (336M
parameters) with the tiny base's VAE and text encoder, whose cost is negligible beside it.
Adapters are rank 4 on the default targets with small random weights. Run by hand, never
in tests; it prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import torch

from core.bases.quantization import Quantization
from core.bases.tiny import TRANSFORMER_CONFIG
from core.storage.keys import TenantKeys
from core.storage.local import LocalStorage
from trainer.devices import compute_dtype, resolve_device
from trainer.export import LoraLayout, adapter_bytes
from trainer.models._untyped import WanTransformer3DModel
from trainer.models.registry import ModelSpecification
from trainer.models.tiny import TinyWanSpecification
from trainer.serving import AdapterKey, AdapterPool, GenerationEngine, GenerationRequest

RANK = 4
ADAPTERS = 1000
DEVICE_TIER_ADAPTERS = 128
HOST_TIER_ADAPTERS = 256
WAN_336M = {
    **TRANSFORMER_CONFIG,
    "num_attention_heads": 16,
    "attention_head_dim": 64,
    "ffn_dim": 4096,
    "num_layers": 20,
    "freq_dim": 256,
}
GEOMETRY = {"tiny": {"frames": 9}, "wan-336m": {"frames": 5}}


class LargeWanSpecification(TinyWanSpecification):
    """The tiny base with a larger transformer: seeded random weights, built from the config."""

    name = "bench-wan-336m"

    def _transformer_config(self) -> dict[str, Any]:
        with torch.device("meta"):
            return dict(WanTransformer3DModel(**WAN_336M).config)

    def _transformer_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            yield from WanTransformer3DModel(**WAN_336M).state_dict().items()


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _median_seconds(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class Bench:
    def __init__(self, base: str, device: torch.device, folder: Path, batch: int) -> None:
        self.base = base
        self.batch = batch
        self.storage = LocalStorage(folder)
        dtype = compute_dtype(device, Quantization.FP32)
        cls = TinyWanSpecification if base == "tiny" else LargeWanSpecification
        self.spec: ModelSpecification = cls(cls.name, device=device, dtype=dtype)
        self.quantization = Quantization.BF16 if device.type == "cuda" else Quantization.FP32
        # Size the tiers in adapters: a pool over a skeleton on the meta device gives the row size.
        with torch.device("meta"):
            skeleton = WanTransformer3DModel(**self.spec._transformer_config())
        row = AdapterPool(
            skeleton, self.spec.default_lora_targets, budget_bytes=1 << 40, dtype=dtype
        ).row_bytes
        adapter = RANK * row
        self.engine = self._engine(
            device_bytes=(DEVICE_TIER_ADAPTERS * RANK + 1) * row, host_bytes=HOST_TIER_ADAPTERS * adapter
        )
        self.adapter_bytes = adapter
        self.written: set[int] = set()
        self.geometry = GEOMETRY[base]
        # First calls pay one-time costs (kernel selection, allocator growth): not measured.
        for _ in range(2):
            self.engine.generate([self.request(None, seed=n) for n in range(batch)])

    def _engine(self, *, device_bytes: int, host_bytes: int) -> GenerationEngine:
        return GenerationEngine(
            self.spec,
            quantization=self.quantization,
            fetch=self._fetch,
            device_cache_bytes=device_bytes,
            host_cache_bytes=host_bytes,
            max_batch=self.batch,
            max_rank=RANK,
        )

    # Adapters in storage
    def key(self, index: int) -> AdapterKey:
        return AdapterKey(f"00000000-0000-0000-0000-{index:012d}", "00000000-0000-0000-0000-000000000001")

    def _object_key(self, key: AdapterKey) -> str:
        return TenantKeys(UUID(key.tenant_id)).adapter_file(UUID(key.version_id))

    def _fetch(self, key: AdapterKey) -> bytes:
        return self.storage.get_bytes(self._object_key(key))

    def write_adapters(self, indices: set[int]) -> None:
        generator = torch.Generator().manual_seed(0)
        for index in sorted(indices - self.written):
            state = {}
            for shape in self.engine.pool.shapes:
                a = torch.randn(RANK, shape.in_features, generator=generator) * 0.02
                b = torch.randn(shape.out_features, RANK, generator=generator) * 0.02
                state[f"transformer.{shape.name}.lora_A.weight"] = a
                state[f"transformer.{shape.name}.lora_B.weight"] = b
            layout = LoraLayout(rank=RANK, alpha=RANK, targets=self.spec.default_lora_targets)
            self.storage.put_bytes(self._object_key(self.key(index)), adapter_bytes(state, layout, extra={}))
            self.written.add(index)

    def request(self, index: int | None, seed: int = 0) -> GenerationRequest:
        return GenerationRequest(
            adapter=None if index is None else self.key(index),
            prompt="a slow dolly shot down a rainy street",
            steps=4,
            guidance=5.0,
            seed=seed,
            **self.geometry,
        )

    def evict_all(self) -> None:
        for index in self.written:
            self.engine.cache.evict(self.key(index))

    def resident_only(self, indices: list[int]) -> None:
        self.evict_all()
        for index in indices:
            self.engine.cache.release(self.engine.cache.acquire([self.key(index)]))

    # (a)
    def switching(self) -> dict[str, float]:
        self.write_adapters(set(range(100)))
        cache, pool = self.engine.cache, self.engine.pool
        transformer, spec = self.engine.transformer, self.spec
        latents = torch.randn(1, *spec.latent_shape(self.geometry["frames"], 64, 64), device=spec.device)
        embeds = spec.batch_prompt_embeds([torch.zeros(4, spec.transformer_dims().text_dim)])
        timestep = torch.tensor([500.0], device=spec.device)
        out: dict[str, float] = {}
        for loaded in (2, 100):
            self.resident_only(list(range(loaded)))
            rng = np.random.default_rng(loaded)

            def switch(rng: np.random.Generator = rng, loaded: int = loaded) -> None:
                key = self.key(int(rng.integers(loaded)))
                resident = cache.acquire([key])
                pool.route([resident[key].rows], [resident[key].scaling])
                pool.clear_route()
                cache.release([key])

            def forward(rng: np.random.Generator = rng, loaded: int = loaded) -> None:
                key = self.key(int(rng.integers(loaded)))
                resident = cache.acquire([key])
                pool.route([resident[key].rows], [resident[key].scaling])
                with torch.no_grad():
                    spec.forward(transformer, latents, timestep, embeds)
                pool.clear_route()
                cache.release([key])

            switch()
            out[f"switch_{loaded}"] = _median_seconds(switch, 500)
            forward()
            out[f"forward_{loaded}"] = _median_seconds(forward, 20)
        return out

    def peft_switching(self) -> dict[str, float]:
        """The reference: diffusers' ``set_adapters`` on a transformer holding N peft adapters."""
        transformer = self.spec.load_transformer(self.quantization)
        out: dict[str, float] = {}
        loaded = 0
        for target in (2, 100):
            while loaded < target:
                state = self._fetch(self.key(loaded))
                transformer.load_lora_adapter(  # type: ignore[operator]
                    _peft_state(state), adapter_name=f"a{loaded}", prefix="transformer"
                )
                loaded += 1
            rng = np.random.default_rng(target)

            def switch(rng: np.random.Generator = rng, target: int = target) -> None:
                name = f"a{int(rng.integers(target))}"
                transformer.set_adapters([name], weights=[1.0])  # type: ignore[operator]

            switch()
            out[f"peft_switch_{target}"] = _median_seconds(switch, 20)
        return out

    # (b)
    def cold_load(self) -> dict[str, float]:
        """Warm and cold runs in pairs, so drift in the machine's speed hits both alike."""
        self.write_adapters({200, 201, 202, 203, 204})
        self.resident_only([200])
        warms, colds, loads = [], [], []
        for index in (201, 202, 203, 204):
            warms.append(_median_seconds(lambda: self.engine.generate([self.request(200)]), 1))
            before = self.engine.cache.stats.load_seconds
            colds.append(_median_seconds(lambda index=index: self.engine.generate([self.request(index)]), 1))
            loads.append(self.engine.cache.stats.load_seconds - before)
        return {
            "warm": statistics.median(warms),
            "cold": statistics.median(colds),
            "load": statistics.median(loads),
        }

    # (c)
    def trace(self, requests: int) -> dict[str, float]:
        rng = np.random.default_rng(2026)
        weights = 1.0 / np.arange(1, ADAPTERS + 1)
        drawn = rng.choice(ADAPTERS, size=requests, p=weights / weights.sum())
        zipf = [int(i) + 1000 for i in drawn]
        self.write_adapters(set(zipf) | {999_999})
        out: dict[str, float] = {"unique": float(len(set(zipf)))}
        rates: dict[str, list[float]] = {"one": [], "zipf": []}
        # Two rounds each, alternating; every round starts with both tiers empty.
        for name, indices in [("one", [999_999] * requests), ("zipf", zipf)] * 2:
            self.evict_all()
            loads_before = self.engine.cache.stats.storage_loads
            batches = [indices[i : i + self.batch] for i in range(0, requests, self.batch)]
            started = time.perf_counter()
            for number, batch in enumerate(batches):
                if number + 1 < len(batches):
                    self.engine.prefetch([self.key(i) for i in batches[number + 1]])
                self.engine.generate([self.request(i, seed=n) for n, i in enumerate(batch)])
            rates[name].append(requests / (time.perf_counter() - started))
            out[f"{name}_loads"] = self.engine.cache.stats.storage_loads - loads_before
        out["one_rps"], out["zipf_rps"] = statistics.mean(rates["one"]), statistics.mean(rates["zipf"])
        return out

    # (d)
    def churn(self, cycles: int) -> dict[str, float]:
        cycle = list(range(5000, 5000 + DEVICE_TIER_ADAPTERS + HOST_TIER_ADAPTERS + 64))
        self.write_adapters(set(cycle))
        self.evict_all()
        cache = self.engine.cache
        loads_before = cache.stats.storage_loads
        evictions_before = cache.stats.device_evictions + cache.stats.host_evictions
        started = time.perf_counter()
        rss_after_warmup = 0
        for n in range(cycles):
            key = self.key(cycle[n % len(cycle)])
            cache.release(cache.acquire([key]))
            if n + 1 == 200 + len(cycle):
                rss_after_warmup = _rss()
        return {
            "cycles": cycles,
            "loads": cache.stats.storage_loads - loads_before,
            "evictions": cache.stats.device_evictions + cache.stats.host_evictions - evictions_before,
            "rss_warm": rss_after_warmup,
            "rss_end": _rss(),
            "seconds": time.perf_counter() - started,
        }

    # (e)
    def mixed_batch(self) -> dict[str, float]:
        mixed = list(range(300, 300 + self.batch))
        self.write_adapters(set(mixed) | {400})
        self.resident_only([*mixed, 400])
        one = _median_seconds(
            lambda: self.engine.generate([self.request(400, n) for n in range(self.batch)]), 3
        )
        many = _median_seconds(
            lambda: self.engine.generate([self.request(i, n) for n, i in enumerate(mixed)]), 3
        )
        return {"one": one, "mixed": many}


def _peft_state(data: bytes) -> dict[str, torch.Tensor]:
    import safetensors.torch

    return safetensors.torch.load(data)


def _report(base: str, bench: Bench, results: dict[str, dict[str, float]]) -> str:
    a, b, c, d, e = (results[k] for k in "abcde")
    params = sum(p.numel() for p in bench.engine.transformer.parameters())
    growth = (d["rss_end"] - d["rss_warm"]) / d["rss_warm"]
    switch_ratio = a["switch_100"] / a["switch_2"]
    lines = [
        f"### {base} ({params / 1e6:.1f}M transformer parameters, "
        f"adapter {bench.adapter_bytes / 1024:.0f} KiB)",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| (a) switch, 2 / 100 resident | {a['switch_2'] * 1e6:.0f} / {a['switch_100'] * 1e6:.0f} µs "
        f"(**{switch_ratio:.2f}x**) | equal within 20% |",
        f"| (a) one routed forward, 2 / 100 resident | {a['forward_2'] * 1e3:.1f} / "
        f"{a['forward_100'] * 1e3:.1f} ms ({a['forward_100'] / a['forward_2']:.2f}x) | |",
    ]
    if "peft_switch_2" in a:
        lines.append(
            f"| (a) reference: diffusers `set_adapters`, 2 / 100 loaded | {a['peft_switch_2'] * 1e3:.1f} / "
            f"{a['peft_switch_100'] * 1e3:.1f} ms ({a['peft_switch_100'] / a['peft_switch_2']:.1f}x) | |"
        )
    lines += [
        f"| (b) one generation warm / cold | {b['warm']:.3f} / {b['cold']:.3f} s | |",
        f"| (b) cold adapter's added latency | **{(b['cold'] - b['warm']) / b['warm']:.1%}** of a generation "
        f"(the load alone: {b['load'] * 1e3:.1f} ms, {b['load'] / b['warm']:.1%}) | ≤ 10% |",
        f"| (c) trace throughput, one adapter / Zipf over {ADAPTERS} | {c['one_rps']:.2f} / "
        f"{c['zipf_rps']:.2f} req/s (**{c['zipf_rps'] / c['one_rps']:.2f}x**; {c['unique']:.0f} distinct, "
        f"{c['zipf_loads']:.0f} storage loads) | ≥ 0.9x |",
        f"| (d) RSS after {d['cycles']:,.0f} load/evict cycles | {d['rss_warm'] / 2**20:.0f} → "
        f"{d['rss_end'] / 2**20:.0f} MiB (**{growth:+.2%}**; {d['loads']:,.0f} storage loads, "
        f"{d['evictions']:,.0f} evictions, {d['seconds']:.0f} s) | < 5% |",
        f"| (e) batch of {bench.batch}: one adapter / {bench.batch} adapters | {e['one']:.3f} / "
        f"{e['mixed']:.3f} s (**{e['one'] / e['mixed']:.2f}x** throughput) | ≥ 0.8x |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--bases", default="tiny,wan-336m")
    parser.add_argument("--requests", type=int, default=96, help="requests in each trace of (c)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--cycles", type=int, default=10_000, help="load/evict cycles in (d)")
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the diffusers set_adapters reference"
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    # As the generation worker does: see worker/generate.py.
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"## Serving (`bench/serve.py`), {device.type} ({name}, {os.cpu_count()} CPUs), "
        f"torch {torch.__version__}\n"
    )
    for base in args.bases.split(","):
        with tempfile.TemporaryDirectory() as folder:
            bench = Bench(base, device, Path(folder), args.batch)
            results = {
                "a": bench.switching() | ({} if args.no_reference else bench.peft_switching()),
                "b": bench.cold_load(),
                "c": bench.trace(args.requests),
                "d": bench.churn(args.cycles),
                "e": bench.mixed_batch(),
            }
            print(_report(base, bench, results), flush=True)
            bench.engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
