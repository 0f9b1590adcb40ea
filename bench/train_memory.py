"""Peak memory and step time of LoRA training on NF4, int8 and bf16 base weights.

    python -m bench.train_memory [--steps 3] [--rank 16] [--markdown]
    python -m bench.train_memory --plan [--rank 32]

Builds a transformer with the published Wan 2.1 T2V 1.3B dimensions (30 layers, dim 1536,
FFN 8960, 12 heads) and random weights through the trainer's own loading path: a meta
skeleton filled tensor by tensor, each block weight quantised the moment it is made, so a
quantised run never holds the bf16 model. Each variant runs in its own subprocess so its
peak RSS is its own; the parent prints the table. CPU only, run by hand (not in tests).

``--plan`` measures nothing: it prints the scheduler's plan (``TrainConfig.memory_plan``) for
Wan 2.1 at 480x832, the table of ``docs/trainer.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.gpu import _base_dims
from bench.processes import CHILD_ENV, child_result, current_rss, peak_rss

VARIANTS = ("bf16", "nf4", "int8")
GiB = 1 << 30


def _measure(
    variant: str, steps: int, rank: int, latent: tuple[int, int, int], text_tokens: int, compute: str
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig

    from core.bases.architecture import WAN21_T2V_1_3B, wan_transformer_dims
    from core.bases.quantization import Quantization
    from trainer.devices import compute_dtype
    from trainer.models.wan import WanSpecification
    from trainer.quantize import bnb

    class RandomWan(WanSpecification):
        """Wan 2.1 1.3B dimensions, weights drawn as they are loaded instead of read from shards."""

        name = "bench-wan-1.3b"

        def _check_folder(self) -> None:
            """No folder: the weights are random."""

        def _transformer_config(self) -> dict[str, Any]:
            return dict(WAN21_T2V_1_3B)

        def _transformer_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
            from trainer.quantize import parameters_on_meta

            with parameters_on_meta():
                skeleton = self._skeleton()
            generator = torch.Generator().manual_seed(0)
            for name, param in skeleton.named_parameters():
                if param.ndim == 1:
                    tensor = torch.ones(param.shape) if "norm" in name else torch.zeros(param.shape)
                else:
                    fan_in = param.shape[-1] if param.ndim == 2 else param[0].numel()
                    tensor = torch.randn(param.shape, generator=generator, dtype=torch.bfloat16) / fan_in**0.5
                yield name, tensor.to(torch.bfloat16)

        def _skeleton(self) -> torch.nn.Module:
            from trainer.models._untyped import WanTransformer3DModel

            model: torch.nn.Module = WanTransformer3DModel.from_config(self._transformer_config())
            return model

    quantization = Quantization(variant)
    device = torch.device("cpu")
    # bf16 compute for every variant, as on CUDA, so only the base weights' format differs.
    # "trainer" instead uses the trainer's CPU policy: fp32 compute around quantised weights.
    dtype = torch.bfloat16 if compute == "bf16" else compute_dtype(device, quantization)
    spec = RandomWan("random", device=device, dtype=dtype)
    dims = wan_transformer_dims(WAN21_T2V_1_3B, text_tokens=text_tokens)
    bf16_model_bytes = (dims.block_linear_params + dims.other_params) * 2

    torch.manual_seed(0)
    baseline = current_rss()
    started = time.perf_counter()
    transformer = spec.load_transformer(quantization)
    load_seconds = time.perf_counter() - started
    load_peak = peak_rss()
    resident_after_load = current_rss()

    transformer.add_adapter(  # type: ignore[operator]
        LoraConfig(r=rank, lora_alpha=rank, target_modules=list(spec.default_lora_targets))
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    for param in params:
        param.data = param.data.float()
    transformer.enable_gradient_checkpointing()  # type: ignore[operator]
    transformer.train()
    optimizer = bnb.optim.AdamW8bit(params, lr=1e-4)

    frames, height, width = latent
    generator = torch.Generator().manual_seed(1)
    step_seconds = []
    losses = []
    for _ in range(steps):
        latents = torch.randn(1, 16, frames, height, width, generator=generator)
        embeds = spec.batch_prompt_embeds([torch.randn(text_tokens, dims.text_dim, generator=generator)])
        batch = spec.prepare_latents(latents, generator, flow_shift=3.0, timestep_sampling="uniform")
        started = time.perf_counter()
        prediction = spec.forward(transformer, batch.noisy_latents, batch.timesteps, embeds)
        loss = spec.loss(prediction, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_seconds.append(time.perf_counter() - started)
        losses.append(float(loss))

    return {
        "variant": variant,
        "compute_dtype": str(dtype).removeprefix("torch."),
        "parameters": dims.block_linear_params + dims.other_params,
        "lora_parameters": sum(p.numel() for p in params),
        "bf16_model_bytes": bf16_model_bytes,
        "baseline_rss": baseline,
        "load_peak_rss": load_peak,
        "resident_after_load": resident_after_load,
        "train_peak_rss": peak_rss(),
        "load_seconds": load_seconds,
        "step_seconds": step_seconds,
        "losses": losses,
        "tokens": frames * (height // 2) * (width // 2),
    }


def _gib(value: float) -> str:
    return f"{value / GiB:.2f}"


def _ratio(result: dict[str, Any], bf16: dict[str, Any], above_baseline: int) -> float:
    """Training peak against bf16's, absolute or net of each process's import baseline."""
    own = result["train_peak_rss"] - above_baseline * result["baseline_rss"]
    return float(own / (bf16["train_peak_rss"] - above_baseline * bf16["baseline_rss"]))


def _table(results: list[dict[str, Any]]) -> str:
    bf16 = next((r for r in results if r["variant"] == "bf16"), None)
    lines = [
        "| base weights | compute | baseline RSS | load peak RSS (above baseline) | training peak RSS "
        "(above baseline) | training peak vs bf16 (above baseline) | load s | step s (median) | loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        steps = sorted(r["step_seconds"])
        ratio = "n/a"
        if bf16 is not None:
            ratio = f"{_ratio(r, bf16, 0):.2f}x ({_ratio(r, bf16, 1):.2f}x)"
        lines.append(
            f"| {r['variant']} | {r['compute_dtype']} | {_gib(r['baseline_rss'])} GiB "
            f"| {_gib(r['load_peak_rss'])} GiB ({_gib(r['load_peak_rss'] - r['baseline_rss'])}) "
            f"| {_gib(r['train_peak_rss'])} GiB ({_gib(r['train_peak_rss'] - r['baseline_rss'])}) "
            f"| {ratio} | {r['load_seconds']:.0f} | {steps[len(steps) // 2]:.0f} | {r['losses'][-1]:.4f} |"
        )
    return "\n".join(lines)


def _plan_table(rank: int) -> str:
    """The plan at 480x832 (the defaults) for each base and weight format, 33 and 81 frames."""
    from dataclasses import replace

    from core.bases.architecture import WAN21_T2V_1_3B, WAN21_T2V_14B
    from core.bases.quantization import Quantization
    from core.training import LoraSettings, TrainConfig

    lines = [
        f"| 480x832, rank {rank} | caching (text / VAE) | training, 33 frames | training, 81 frames "
        "| offloaded to host, 33 / 81 frames |",
        "|---|---|---|---|---|",
    ]
    for name, config in (("Wan 1.3B", WAN21_T2V_1_3B), ("Wan 14B", WAN21_T2V_14B)):
        dims = _base_dims(config)
        # The caching stage's two parts, each planned alone with its context and slack.
        text_only, vae_only = replace(dims, vae_params=0, vae_base_dim=0), replace(dims, text_encoder=None)
        for quantization in (Quantization.NF4, Quantization.INT8, Quantization.BF16):
            short, long = (
                TrainConfig(frames=frames, quantization=quantization, lora=LoraSettings(rank=rank))
                for frames in (33, 81)
            )
            text, vae = short.memory_plan(text_only).caching, short.memory_plan(vae_only).caching
            plan, long_plan = short.memory_plan(dims), long.memory_plan(dims)
            offloaded = (
                f"{_gib(plan.offloaded)} / {_gib(long_plan.offloaded)} GiB" if long_plan.offloaded else "none"
            )
            lines.append(
                f"| {name}, {quantization} | {_gib(plan.caching)} ({_gib(text)} / {_gib(vae)}) GiB "
                f"| {_gib(plan.training)} GiB | {_gib(long_plan.training)} GiB | {offloaded} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--latent", default="2x16x16", help="latent FRAMESxHEIGHTxWIDTH (16 channels)")
    parser.add_argument("--text-tokens", type=int, default=64)
    parser.add_argument("--compute", choices=("bf16", "trainer"), default="bf16", help="compute dtype policy")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown only")
    parser.add_argument("--plan", action="store_true", help="print the memory plan table; measure nothing")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plan:
        print(_plan_table(args.rank))
        return 0
    frames, height, width = (int(part) for part in args.latent.split("x"))

    if args.child:
        result = _measure(
            args.child, args.steps, args.rank, (frames, height, width), args.text_tokens, args.compute
        )
        print(json.dumps(result))
        return 0

    results = []
    for variant in args.variants:
        command = [sys.executable, "-m", "bench.train_memory", "--child", variant, *(argv or sys.argv[1:])]
        results.append(child_result(command, variant, CHILD_ENV))
        print(f"{variant}: done", file=sys.stderr)

    first = results[0]
    if not args.markdown:
        lora_millions = first["lora_parameters"] / 1e6
        print(
            f"Wan 2.1 1.3B dims, {first['parameters'] / 1e9:.2f}B parameters (bf16 model "
            f"{_gib(first['bf16_model_bytes'])} GiB), LoRA rank {args.rank} ({lora_millions:.1f}M), "
            f"latent 16x{args.latent} ({first['tokens']} tokens) + {args.text_tokens} text tokens, "
            f"{args.steps} steps, gradient checkpointing, 8-bit AdamW"
        )
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, CPU only")
    print(_table(results))
    if "bf16" in args.variants and "nf4" in args.variants:
        nf4 = next(r for r in results if r["variant"] == "nf4")
        bf16 = next(r for r in results if r["variant"] == "bf16")
        ratio = nf4["train_peak_rss"] / bf16["train_peak_rss"]
        holds_full = nf4["load_peak_rss"] - nf4["baseline_rss"] >= nf4["bf16_model_bytes"]
        print(f"\nNF4 training peak / bf16 training peak = {ratio:.2f} (target <= 0.45)")
        print(f"NF4 load held the full bf16 model: {'yes' if holds_full else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
