"""Serving many tenants' adapters over one resident base: switching, cold loads, traces, memory.

    .venv/bin/python -m bench.serve [--device cpu] [--bases tiny,wan-336m] [--requests 96]
        [--parts abcdefg] [--serving-quant fp32|bf16|nf4] [--stock-requests 8,32]

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
(e) a mixed batch of N adapters against a one-adapter batch of N;
(f) N requests on N distinct adapters, served by the engine in mixed batches against the
    stock way: diffusers' ``WanPipeline`` over the same base that, per request, loads that
    request's adapter file (``load_lora_weights``), selects it (``set_adapters``), renders
    it and deletes it (``delete_adapters``);
(g) the serving base's weights in fp32, bf16 and NF4 (bitsandbytes' own 4-bit layers, as the
    trainer loads them): resident memory and time per request, each in its own subprocess.

``wan-336m`` is the Wan 2.1 transformer at 20 layers, dim 1024, FFN 4096 (336M
parameters) with the tiny base's VAE and text encoder, whose cost is negligible beside it.
Adapters are rank 4 on the default targets with small random weights. ``--serving-quant``
picks the base's weights for (a) to (f) (default: the worker's, bf16 on CUDA and fp32 on
CPU). Run by hand, never in tests; it prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import torch

from bench.processes import child_result, current_rss, peak_rss
from core.bases.quantization import Quantization
from core.bases.tiny import TRANSFORMER_CONFIG
from core.storage.keys import TenantKeys
from core.storage.local import LocalStorage
from tests.pipelines import stock_pipeline  # (f): the stock builder the trainer and serving tests use
from trainer.devices import compute_dtype, resolve_device
from trainer.export import LoraLayout, adapter_bytes
from trainer.models._untyped import WanTransformer3DModel
from trainer.models.tiny import TinyWanSpecification
from trainer.process import flush_denormals
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
FRAMES = {"tiny": 9, "wan-336m": 5}
QUANTIZATIONS = (Quantization.FP32, Quantization.BF16, Quantization.NF4)


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


def _median_seconds(
    action: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    times = []
    for _ in range(repeat):
        started = clock()
        action()
        times.append(clock() - started)
    return statistics.median(times)


class Bench:
    def __init__(
        self,
        base: str,
        device: torch.device,
        folder: Path,
        batch: int,
        quantization: Quantization | None = None,
        steps: int = 4,
    ) -> None:
        self.base = base
        self.batch = batch
        self.steps = steps
        self.storage = LocalStorage(folder)
        # The worker's choice unless asked otherwise: see worker/generate.py.
        default = Quantization.BF16 if device.type == "cuda" else Quantization.FP32
        self.quantization = quantization or default
        dtype = compute_dtype(device, self.quantization)
        cls = TinyWanSpecification if base == "tiny" else LargeWanSpecification
        self.spec: TinyWanSpecification = cls(cls.name, device=device, dtype=dtype)
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
        self.frames = FRAMES[base]
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
            steps=self.steps,
            guidance=5.0,
            seed=seed,
            frames=self.frames,
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
        latents = torch.randn(1, *spec.latent_shape(self.frames, 64, 64), device=spec.device)
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

        def render(index: int) -> Callable[[], object]:
            return lambda: self.engine.generate([self.request(index)])

        for index in (201, 202, 203, 204):
            warms.append(_median_seconds(render(200), 1))
            before = self.engine.cache.stats.load_seconds
            colds.append(_median_seconds(render(index), 1))
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
                rss_after_warmup = current_rss()
        return {
            "cycles": cycles,
            "loads": cache.stats.storage_loads - loads_before,
            "evictions": cache.stats.device_evictions + cache.stats.host_evictions - evictions_before,
            "rss_warm": rss_after_warmup,
            "rss_end": current_rss(),
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

    # (f)
    def stock_vs_engine(self, counts: list[int]) -> dict[str, float]:
        """N requests on N distinct adapters: the engine's mixed batches against the stock way.

        Both sides start from the adapter files in storage (the stock side reads each from its
        path, as a user with the file on disk would) and render the same requests: prompt, size,
        steps, guidance and seed. The engine starts with both tiers empty and prefetches the
        next batch's adapters as the worker does; the stock pipeline keeps no adapter between
        requests. Each side is timed from the first request to the last frames.
        """
        pipeline = stock_pipeline(self.spec, self.quantization)
        first = 10_000
        self.write_adapters(set(range(first, first + max(counts) + 1)))

        def stock(index: int, request: GenerationRequest) -> np.ndarray:
            with self.storage.local_path(self._object_key(self.key(index))) as path:
                pipeline.load_lora_weights(str(path), adapter_name="request")
            pipeline.set_adapters(["request"], adapter_weights=[request.strength])
            frames = pipeline(
                request.prompt,
                negative_prompt=request.negative_prompt,
                height=request.height,
                width=request.width,
                num_frames=request.frames,
                num_inference_steps=request.steps,
                guidance_scale=request.guidance,
                generator=torch.Generator().manual_seed(request.seed),
                max_sequence_length=self.spec.max_sequence_length,
            ).frames[0]
            pipeline.delete_adapters("request")
            return np.asarray(frames)

        # First calls with an adapter pay one-time costs on both sides: one outside the runs.
        extra = first + max(counts)
        self.engine.generate([self.request(extra, seed=n) for n in range(self.batch)])
        stock(extra, self.request(extra))
        out: dict[str, float] = {}
        for count in counts:
            indices = list(range(first, first + count))
            requests = [self.request(i, seed=n) for n, i in enumerate(indices)]
            self.evict_all()
            batches = [requests[i : i + self.batch] for i in range(0, count, self.batch)]
            started, cpu = time.perf_counter(), time.process_time()
            ours = []
            for number, batch in enumerate(batches):
                if number + 1 < len(batches):
                    self.engine.prefetch([r.adapter for r in batches[number + 1] if r.adapter])
                ours.append(self.engine.generate(batch))
            out[f"engine_{count}"] = time.perf_counter() - started
            out[f"engine_cpu_{count}"] = time.process_time() - cpu
            started, cpu = time.perf_counter(), time.process_time()
            theirs = [stock(i, r) for i, r in zip(indices, requests, strict=True)]
            out[f"stock_{count}"] = time.perf_counter() - started
            out[f"stock_cpu_{count}"] = time.process_time() - cpu
            # The two sides must have rendered the same videos for the timings to compare.
            difference = torch.cat(ours).float().numpy() - np.stack(theirs)
            out[f"difference_{count}"] = float(np.abs(difference).max())
            out[f"requests_{count}"] = count
        return out


def _peft_state(data: bytes) -> dict[str, torch.Tensor]:
    import safetensors.torch

    return safetensors.torch.load(data)


def _report(base: str, bench: Bench, results: dict[str, dict[str, float]]) -> str:
    params = sum(p.numel() for p in bench.engine.transformer.parameters())
    lines = [
        f"### {base} ({params / 1e6:.1f}M transformer parameters, "
        f"adapter {bench.adapter_bytes / 1024:.0f} KiB, base weights {bench.quantization})",
        "",
        "| measure | value | target |",
        "|---|---|---|",
    ]
    if a := results.get("a"):
        switch_ratio = a["switch_100"] / a["switch_2"]
        lines += [
            f"| (a) switch, 2 / 100 resident | {a['switch_2'] * 1e6:.0f} / {a['switch_100'] * 1e6:.0f} µs "
            f"(**{switch_ratio:.2f}x**) | equal within 20% |",
            f"| (a) one routed forward, 2 / 100 resident | {a['forward_2'] * 1e3:.1f} / "
            f"{a['forward_100'] * 1e3:.1f} ms ({a['forward_100'] / a['forward_2']:.2f}x) | |",
        ]
        if "peft_switch_2" in a:
            lines.append(
                f"| (a) reference: diffusers `set_adapters`, 2 / 100 loaded | "
                f"{a['peft_switch_2'] * 1e3:.1f} / {a['peft_switch_100'] * 1e3:.1f} ms "
                f"({a['peft_switch_100'] / a['peft_switch_2']:.1f}x) | |"
            )
    if b := results.get("b"):
        lines += [
            f"| (b) one generation warm / cold | {b['warm']:.3f} / {b['cold']:.3f} s | |",
            f"| (b) cold adapter's added latency | **{(b['cold'] - b['warm']) / b['warm']:.1%}** of a "
            f"generation (the load alone: {b['load'] * 1e3:.1f} ms, {b['load'] / b['warm']:.1%}) | ≤ 10% |",
        ]
    if c := results.get("c"):
        lines.append(
            f"| (c) trace throughput, one adapter / Zipf over {ADAPTERS} | {c['one_rps']:.2f} / "
            f"{c['zipf_rps']:.2f} req/s (**{c['zipf_rps'] / c['one_rps']:.2f}x**; {c['unique']:.0f} "
            f"distinct, {c['zipf_loads']:.0f} storage loads) | ≥ 0.9x |"
        )
    if d := results.get("d"):
        growth = (d["rss_end"] - d["rss_warm"]) / d["rss_warm"]
        lines.append(
            f"| (d) RSS after {d['cycles']:,.0f} load/evict cycles | {d['rss_warm'] / 2**20:.0f} → "
            f"{d['rss_end'] / 2**20:.0f} MiB (**{growth:+.2%}**; {d['loads']:,.0f} storage loads, "
            f"{d['evictions']:,.0f} evictions, {d['seconds']:.0f} s) | < 5% |"
        )
    if e := results.get("e"):
        lines.append(
            f"| (e) batch of {bench.batch}: one adapter / {bench.batch} adapters | {e['one']:.3f} / "
            f"{e['mixed']:.3f} s (**{e['one'] / e['mixed']:.2f}x** throughput) | ≥ 0.8x |"
        )
    if f := results.get("f"):
        for count in sorted(int(k.removeprefix("requests_")) for k in f if k.startswith("requests_")):
            engine, stock = count / f[f"engine_{count}"], count / f[f"stock_{count}"]
            engine_cpu, stock_cpu = count / f[f"engine_cpu_{count}"], count / f[f"stock_cpu_{count}"]
            lines.append(
                f"| (f) {count} requests on {count} adapters: stock `WanPipeline` (load, set, render, "
                f"delete) / engine (batches of {bench.batch}) | wall {stock:.2f} / {engine:.2f} req/s "
                f"(**{engine / stock:.2f}x**); CPU time {stock_cpu:.2f} / {engine_cpu:.2f} req/CPU-s "
                f"(**{engine_cpu / stock_cpu:.2f}x**); frames differ by at most "
                f"{f[f'difference_{count}']:.1e} | {'≥ 3x' if count == 8 else ''} |"
            )
    lines.append("")
    return "\n".join(lines)


def _weight_bytes(transformer: torch.nn.Module) -> int:
    """The base's own tensors: parameters, buffers and 4-bit quantisation state, not adapter rows."""
    total = 0
    for name, tensor in [*transformer.named_parameters(), *transformer.named_buffers()]:
        if name.endswith(("a_rows", "b_rows")):
            continue
        total += tensor.nbytes
        state = getattr(tensor, "quant_state", None)
        if state is not None:
            total += state.absmax.nbytes + (state.state2.absmax.nbytes if state.nested else 0)
    return total


def _quantization_child(
    base: str, device: torch.device, quantization: Quantization, batch: int, steps: int
) -> None:
    """(g) for one quantisation, in a process of its own: prints one JSON line."""
    before = current_rss()
    with tempfile.TemporaryDirectory() as folder:
        bench = Bench(base, device, Path(folder), batch, quantization, steps)
        resident = current_rss() - before
        peak = peak_rss() - before
        mixed = list(range(300, 300 + batch))
        bench.write_adapters(set(mixed))
        bench.resident_only(mixed)
        result: dict[str, float] = {
            "weights": _weight_bytes(bench.engine.transformer),
            "resident": resident,
            "peak": peak,
        }
        for name, clock in (("", time.perf_counter), ("cpu_", time.process_time)):
            one = _median_seconds(lambda: bench.engine.generate([bench.request(mixed[0])]), 3, clock)
            many = _median_seconds(
                lambda: bench.engine.generate([bench.request(i, n) for n, i in enumerate(mixed)]), 3, clock
            )
            result[f"{name}one"], result[f"{name}per_request"] = one, many / batch
        bench.engine.close()
    print(json.dumps(result))


def quantizations(base: str, device: torch.device, batch: int, steps: int) -> str:
    results = {}
    for quantization in QUANTIZATIONS:
        command = [sys.executable, "-m", "bench.serve", "--bases", base, "--device", str(device)]
        command += ["--batch", str(batch), "--steps", str(steps), "--quantization-child", quantization.value]
        results[quantization] = child_result(command, quantization.value)
    fp32 = results[Quantization.FP32]
    lines = [
        f"(g) {base}: the serving base's weights, each in its own process (engine with both adapter "
        f"tiers; one request alone, and a mixed batch of {batch} per request, medians of three)",
        "",
        "| base weights | transformer weights | process RSS added by the engine (peak) | one request, "
        f"wall / CPU | per request in a batch of {batch}, wall / CPU |",
        "|---|---|---|---|---|",
    ]
    for quantization, r in results.items():
        timings = [
            f"{r[k]:.3f} / {r['cpu_' + k]:.3f} s "
            f"({r[k] / fp32[k]:.2f}x / {r['cpu_' + k] / fp32['cpu_' + k]:.2f}x)"
            for k in ("one", "per_request")
        ]
        lines.append(
            f"| {quantization} | {r['weights'] / 2**20:.1f} MiB ({r['weights'] / fp32['weights']:.2f}x) | "
            f"{r['resident'] / 2**20:.0f} MiB ({r['peak'] / 2**20:.0f}) | {timings[0]} | {timings[1]} |"
        )
    lines.append("")
    return "\n".join(lines)


def _run_base(
    base: str, device: torch.device, args: argparse.Namespace, quantization: Quantization | None
) -> None:
    if set(args.parts) & set("abcdef"):
        counts = [int(n) for n in args.stock_requests.split(",")]
        with tempfile.TemporaryDirectory() as folder:
            bench = Bench(base, device, Path(folder), args.batch, quantization, args.steps)
            measures: dict[str, Callable[[], dict[str, float]]] = {
                "a": lambda: bench.switching() | ({} if args.no_reference else bench.peft_switching()),
                "b": bench.cold_load,
                "c": lambda: bench.trace(args.requests),
                "d": lambda: bench.churn(args.cycles),
                "e": bench.mixed_batch,
                "f": lambda: bench.stock_vs_engine(counts),
            }
            results = {part: measure() for part, measure in measures.items() if part in args.parts}
            print(_report(base, bench, results), flush=True)
            bench.engine.close()
    if "g" in args.parts:
        print(quantizations(base, device, args.batch, args.steps), flush=True)
    print(f"(load average {os.getloadavg()[0]:.2f} after {base})\n", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None)
    parser.add_argument("--bases", default="tiny,wan-336m")
    parser.add_argument("--parts", default="abcdefg", help="which measures to run, e.g. fg")
    parser.add_argument("--requests", type=int, default=96, help="requests in each trace of (c)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4, help="denoising steps of every request")
    parser.add_argument("--cycles", type=int, default=10_000, help="load/evict cycles in (d)")
    parser.add_argument("--stock-requests", default="8,32", help="comma-separated request counts N for (f)")
    parser.add_argument(
        "--serving-quant",
        choices=[q.value for q in QUANTIZATIONS],
        default=None,
        help="the serving base's weights for (a) to (f) (default: bf16 on CUDA, fp32 on CPU)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the diffusers set_adapters reference"
    )
    parser.add_argument(
        "--quantization-child", choices=[q.value for q in QUANTIZATIONS], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    # As the generation worker does.
    flush_denormals()
    torch.manual_seed(0)
    if args.quantization_child:
        _quantization_child(args.bases, device, Quantization(args.quantization_child), args.batch, args.steps)
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"## Serving (`bench/serve.py`), {device.type} ({name}, {os.cpu_count()} CPUs), "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f} at the start\n"
    )
    quantization = Quantization(args.serving_quant) if args.serving_quant else None
    for base in args.bases.split(","):
        _run_base(base, device, args, quantization)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
