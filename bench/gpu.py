"""Every CUDA measurement of the project in one command, each variant in its own subprocess.

    bash bench/gpu.sh [--out DIR] [--budget SECONDS] [--only JOB,JOB]
    python -m bench.gpu --smoke     # tiny shapes on the CPU: checks the script, measures nothing

Jobs, in order (``--budget`` cuts them from the end rather than overrun):

train-1.3b-{nf4,int8,bf16}
    The Wan 2.1 T2V 1.3B transformer dimensions with random weights, loaded through the
    trainer's own path (a meta skeleton filled tensor by tensor, each block linear quantised
    as it arrives), LoRA rank 32 on the default targets, gradient checkpointing, 8-bit AdamW,
    bf16 autocast, gradient clipping: the trainer's ``_train_step``. 480x832 at 33 and then
    81 frames (latent shapes from ``latent_shape``), 512 padded text tokens. Peak allocated
    and reserved memory, median step time after a warm-up step, and the project's memory
    plan (``estimate_peak_memory``) for the same run beside them.
train-14b-{nf4,bf16}
    The same for the Wan 2.1 T2V 14B dimensions (40 layers, dim 5120, FFN 13824, 40 heads)
    at 480x832, 33 frames.
text-encoder
    The caching stage's UMT5-XXL encoder (Wan's config) with random weights in bf16,
    encoding batches of 512-token prompts; then the same weights with the block linears in
    NF4 and int8 through the trainer's quantising loader (``wo`` stays bf16, as transformers
    keeps it), with the cosine similarity of their embeddings to bf16's.
vae
    Wan's VAE (diffusers' default ``AutoencoderKLWan`` config, random weights, fp32 as the
    trainer loads it) encoding one 81-frame 480x832 clip through ``encode_video``, and
    decoding its latents back through ``decode_latents`` (validation renders).
serve
    One denoising forward of the 1.3B transformer (bf16) with the serving engine's per-sample
    LoRA pool (``AdapterPool``, rank 32): a batch of 4 with no adapter, one adapter for all
    four, and four different adapters.
train-14b-int8
    The 14B dimensions on int8, last so that a tight budget cuts it first.

Results go to DIR/gpu-results.json and DIR/gpu-results.md after every job; the tables are
printed last. Run by hand on a CUDA machine, never in tests.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GiB = 1 << 30
RANK = 32
HEIGHT, WIDTH = 480, 832
TEXT_TOKENS_USED = 64  # prompt tokens before padding; the transformer sees all 512

# Seconds each job takes on an H100 (estimates from the first run, used to cut jobs that
# would overrun --budget) and the most it may take before it is stopped.
JOBS: dict[str, dict[str, Any]] = {
    "train-1.3b-nf4": {"kind": "train", "model": "1.3b", "quant": "nf4", "frames": [33, 81], "est": 45},
    "train-1.3b-int8": {"kind": "train", "model": "1.3b", "quant": "int8", "frames": [33, 81], "est": 50},
    "train-1.3b-bf16": {"kind": "train", "model": "1.3b", "quant": "bf16", "frames": [33, 81], "est": 40},
    "train-14b-nf4": {
        "kind": "train",
        "model": "14b",
        "quant": "nf4",
        "frames": [33],
        "steps": [1, 2],
        "est": 60,
    },
    "train-14b-bf16": {
        "kind": "train",
        "model": "14b",
        "quant": "bf16",
        "frames": [33],
        "steps": [1, 2],
        "est": 50,
    },
    "text-encoder": {"kind": "text", "est": 70},
    "vae": {"kind": "vae", "est": 30},
    "serve": {"kind": "serve", "est": 35},
    # Last, so a tight budget cuts it first: the 14B on int8 goes through the host per tensor.
    "train-14b-int8": {
        "kind": "train",
        "model": "14b",
        "quant": "int8",
        "frames": [33],
        "steps": [1, 2],
        "est": 70,
    },
}


def _bare_trainer_package() -> None:
    """Import ``trainer.*`` modules without ``trainer/__init__``.

    The package's ``__init__`` pulls in the data pipeline (PyAV) and the service's storage
    and settings (pydantic); none of it is measured here, and GPU images may lack both.
    """
    if "trainer" in sys.modules:
        return
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    package = types.ModuleType("trainer")
    package.__path__ = [str(Path(__file__).resolve().parent.parent / "trainer")]
    sys.modules["trainer"] = package


# ---------------------------------------------------------------------------------------------
# Shared pieces (children only: they import torch)


def _configs(smoke: bool) -> dict[str, dict[str, Any]]:
    from core.bases.architecture import WAN21_T2V_1_3B, WAN21_T2V_14B

    if not smoke:
        return {"1.3b": dict(WAN21_T2V_1_3B), "14b": dict(WAN21_T2V_14B)}
    small = {"num_layers": 2, "attention_head_dim": 32, "text_dim": 64, "freq_dim": 32}
    return {
        "1.3b": {**WAN21_T2V_1_3B, **small, "num_attention_heads": 2, "ffn_dim": 128},
        "14b": {**WAN21_T2V_14B, **small, "num_attention_heads": 4, "ffn_dim": 192},
    }


def _random_wan(config: dict[str, Any], device: Any, dtype: Any) -> Any:
    """A ``WanSpecification`` whose transformer tensors are drawn as they load, on ``device``."""
    import torch

    from trainer.models._untyped import WanTransformer3DModel
    from trainer.models.wan import WanSpecification
    from trainer.quantize import parameters_on_meta

    class RandomWan(WanSpecification):
        name = "bench-wan-random"

        def _check_folder(self) -> None:
            """No folder: the weights are random."""

        def _transformer_config(self) -> dict[str, Any]:
            return dict(config)

        def _transformer_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
            with parameters_on_meta():
                skeleton = WanTransformer3DModel.from_config(self._transformer_config())
            # Drawn on the device: a CPU draw of 14B numbers would take minutes.
            generator = torch.Generator(device=self.device).manual_seed(0)
            for name, param in skeleton.named_parameters():
                if param.ndim == 1:
                    fill = 1.0 if "norm" in name else 0.0
                    tensor = torch.full(param.shape, fill, device=self.device, dtype=torch.bfloat16)
                else:
                    fan_in = param.shape[-1] if param.ndim == 2 else param[0].numel()
                    tensor = torch.randn(
                        param.shape, generator=generator, device=self.device, dtype=torch.bfloat16
                    )
                    tensor /= fan_in**0.5
                yield name, tensor

    return RandomWan("random", device=device, dtype=dtype)


def _vae_params() -> int:
    import torch

    from trainer.models._untyped import AutoencoderKLWan

    with torch.device("meta"):
        vae = AutoencoderKLWan()
    return sum(p.numel() for p in vae.parameters())


def _base_dims(config: dict[str, Any], *, text_encoder: bool = True, vae: bool = True) -> Any:
    from core.bases.architecture import (
        UMT5_XXL,
        WAN_TEXT_TOKENS,
        umt5_encoder_dims,
        wan_transformer_dims,
    )
    from core.bases.memory import BaseDims

    return BaseDims(
        transformer=wan_transformer_dims(config, text_tokens=WAN_TEXT_TOKENS),
        text_encoder=umt5_encoder_dims(UMT5_XXL) if text_encoder else None,
        vae_params=_vae_params() if vae else 0,
        vae_base_dim=96 if vae else 0,
    )


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(device: Any, *, empty: bool = True) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        if empty:
            torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _memory(device: Any) -> dict[str, int]:
    """Allocated and reserved now and at their peaks since the last reset (zeros on CPU)."""
    import torch

    if device.type != "cuda":
        return {"allocated": 0, "reserved": 0, "max_allocated": 0, "max_reserved": 0}
    return {
        "allocated": torch.cuda.memory_allocated(device),
        "reserved": torch.cuda.memory_reserved(device),
        "max_allocated": torch.cuda.max_memory_allocated(device),
        "max_reserved": torch.cuda.max_memory_reserved(device),
    }


def _context(device: Any) -> int:
    """Device memory the process holds beyond torch's reserved pool: CUDA context, cuBLAS, kernels."""
    import torch

    if device.type != "cuda":
        return 0
    torch.cuda.synchronize(device)
    free, total = torch.cuda.mem_get_info(device)
    return int(total - free - torch.cuda.memory_reserved(device))


def _timed(device: Any, action: Any) -> tuple[Any, float]:
    _sync(device)
    started = time.perf_counter()
    result = action()
    _sync(device)
    return result, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Children


def _train(job: dict[str, Any], device: Any, smoke: bool) -> dict[str, Any]:
    import torch
    from peft import LoraConfig

    from core.bases.memory import estimate_peak_memory
    from core.bases.quantization import Quantization
    from core.training import LoraSettings, TrainConfig
    from trainer.activations import block_checkpointing
    from trainer.devices import compute_dtype
    from trainer.quantize import bnb

    quantization = Quantization(job["quant"])
    config = _configs(smoke)[job["model"]]
    defaults = TrainConfig()
    dtype = compute_dtype(device, quantization)
    spec = _random_wan(config, device, dtype)
    dims = spec.transformer_dims()
    height, width = (64, 64) if smoke else (HEIGHT, WIDTH)
    frames_list = [5, 9] if smoke else job["frames"]
    rank = 4 if smoke else RANK
    warmup, steps = (1, 2) if smoke else job.get("steps", [1, 3])
    plan_dims = _base_dims(config)

    torch.manual_seed(0)
    _reset(device)
    transformer, load_seconds = _timed(device, lambda: spec.load_transformer(quantization))
    load = _memory(device)
    # As Trainer._prepare_trainable_parameters does.
    transformer.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            target_modules=list(spec.default_lora_targets),
            lora_dropout=0.0,
            init_lora_weights=True,
            bias="none",
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    for param in params:
        param.data = param.data.float()
    transformer.train()
    kwargs: dict[str, Any] = {"lr": defaults.learning_rate, "weight_decay": defaults.weight_decay}
    try:
        optimizer = bnb.optim.AdamW8bit(params, **kwargs)
        optimizer_name = "adamw8bit"
    except (RuntimeError, NotImplementedError):
        optimizer, optimizer_name = torch.optim.AdamW(params, **kwargs), "adamw"

    generator = torch.Generator().manual_seed(1)
    runs = []
    for index, frames in enumerate(frames_list):
        # The first geometry follows the load as in a run (the allocator keeps what the
        # load left); later ones start from an emptied cache, like a fresh run's.
        _reset(device, empty=index > 0)
        shape = spec.latent_shape(frames, height, width)
        # Block inputs wait in host memory where the trainer would put them ("auto").
        offload = TrainConfig(
            height=height, width=width, frames=frames, lora=LoraSettings(rank=rank), quantization=quantization
        ).offloads_activations(dims)
        transformer.enable_gradient_checkpointing(block_checkpointing(offload_inputs=offload))
        plan = estimate_peak_memory(
            plan_dims,
            height=height,
            width=width,
            frames=frames,
            rank=rank,
            quantization=quantization,
            offload_block_inputs=offload,
        )
        run: dict[str, Any] = {
            "frames": frames,
            "latent": list(shape),
            "tokens": shape[1] * (shape[2] // 2) * (shape[3] // 2),
            "offloaded": offload,
            "plan": {
                "weights": plan.weights,
                "trainable": plan.trainable,
                "activations": plan.activations,
                "overhead": plan.overhead,
                "training": plan.training,
            },
        }
        times, losses = [], []
        try:
            for _ in range(warmup + steps):
                latents = torch.randn(1, *shape, generator=generator)
                embeds = spec.batch_prompt_embeds(
                    [torch.randn(TEXT_TOKENS_USED, dims.text_dim, generator=generator)]
                )
                batch = spec.prepare_latents(
                    latents,
                    generator,
                    flow_shift=defaults.flow_shift,
                    timestep_sampling=defaults.timestep_sampling,
                )

                def step(batch: Any = batch, embeds: Any = embeds) -> float:
                    # Trainer._train_step, from the forward to zero_grad.
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                        prediction = spec.forward(transformer, batch.noisy_latents, batch.timesteps, embeds)
                        loss = spec.loss(prediction, batch)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, defaults.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    return float(loss.detach())

                loss, seconds = _timed(device, step)
                times.append(seconds)
                losses.append(loss)
        except torch.OutOfMemoryError as exc:
            run["error"] = f"out of memory: {str(exc).splitlines()[0]}"
            optimizer.zero_grad(set_to_none=True)
        run.update(_memory(device))
        run["context"] = _context(device)
        run["step_seconds"] = times
        run["step_median"] = statistics.median(times[warmup:]) if len(times) > warmup else None
        run["losses"] = losses
        runs.append(run)

    return {
        "model": job["model"],
        "quant": quantization.value,
        "compute_dtype": str(dtype).removeprefix("torch."),
        "optimizer": optimizer_name,
        "rank": rank,
        "parameters": dims.block_linear_params + dims.other_params,
        "lora_parameters": sum(p.numel() for p in params),
        "load_seconds": load_seconds,
        "load": load,
        "runs": runs,
    }


def _umt5_config(smoke: bool) -> Any:
    from transformers import UMT5Config

    from core.bases.architecture import UMT5_XXL

    if smoke:
        return UMT5Config(
            vocab_size=1000, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0
        )
    return UMT5Config(**UMT5_XXL, dropout_rate=0.0)


def _text(job: dict[str, Any], device: Any, smoke: bool) -> dict[str, Any]:
    import torch

    from core.bases.architecture import UMT5_XXL, WAN21_T2V_1_3B, umt5_encoder_params
    from core.bases.memory import estimate_peak_memory
    from core.bases.quantization import Quantization
    from trainer.models._untyped import UMT5EncoderModel
    from trainer.models.wan import load_umt5_encoder

    config = _umt5_config(smoke)
    sequence = 32 if smoke else 512
    batches = [2, 4] if smoke else [16, 128]
    generator = torch.Generator().manual_seed(0)

    def inputs(batch: int) -> tuple[Any, Any]:
        lengths = torch.randint(8, min(128, sequence) + 1, (batch,), generator=generator)
        ids = torch.randint(1, config.vocab_size, (batch, sequence), generator=generator)
        mask = (torch.arange(sequence)[None, :] < lengths[:, None]).long()
        return (ids * mask).to(device), mask.to(device)

    prompt_sets = {batch: inputs(batch) for batch in batches}

    def encode(model: Any, batch: int) -> Any:
        # As WanSpecification.encode_prompts: tokens looked up where the table is (the host,
        # for the trainer's quantised encoder), the layers handed their rows.
        ids, mask = prompt_sets[batch]
        embedding = model.get_input_embeddings()
        with torch.no_grad():
            embeds = embedding(ids.to(embedding.weight.device)).to(device)
            return model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    plan = estimate_peak_memory(
        _base_dims(WAN21_T2V_1_3B, vae=False),
        height=HEIGHT,
        width=WIDTH,
        frames=81,
        rank=RANK,
        quantization=Quantization.NF4,
    ).caching
    results: dict[str, Any] = {
        "parameters": umt5_encoder_params(UMT5_XXL) if not smoke else None,
        "plan_caching_text": plan,
        "sequence": sequence,
        "variants": [],
    }

    # bf16, built straight on the device with random weights.
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = UMT5EncoderModel(config).eval()
    finally:
        torch.set_default_dtype(previous)
    _reset(device)
    weights = _memory(device)["allocated"]
    reference = None
    variant: dict[str, Any] = {"weights": "bf16", "weights_bytes": weights, "batches": []}
    for batch in batches:
        _reset(device, empty=False)
        encode(model, batch)
        hidden, seconds = _timed(device, lambda batch=batch, model=model: encode(model, batch))
        if reference is None:
            reference = hidden.float().cpu()
        variant["batches"].append({"batch": batch, "seconds": seconds, **_memory(device)})
    variant["context"] = _context(device)
    results["variants"].append(variant)

    # The same weights, on the host, streamed through the trainer's quantising loader.
    state = {name: p.detach().to("cpu") for name, p in model.named_parameters()}
    del model, hidden
    _reset(device)
    mask = prompt_sets[batches[0]][1].bool().cpu()
    for quant in ("nf4", "int8"):
        quantization = Quantization(quant)

        def load(quantization: Quantization = quantization) -> Any:
            # The trainer's own loader: layer linears quantised as they stream in, `wo` in
            # bf16, the token embedding on the host.
            return load_umt5_encoder(config, state.items(), quantization, device=device, dtype=torch.bfloat16)

        _reset(device)
        quantized, load_seconds = _timed(device, load)
        load_peak = _memory(device)["max_allocated"]
        weights = _memory(device)["allocated"]
        _reset(device, empty=False)
        encode(quantized, batches[0])
        hidden, seconds = _timed(device, lambda quantized=quantized: encode(quantized, batches[0]))
        got = hidden.float().cpu()
        assert reference is not None
        cosine = torch.nn.functional.cosine_similarity(got[mask], reference[mask], dim=-1)
        error = (got[mask] - reference[mask]).norm() / reference[mask].norm()
        results["variants"].append(
            {
                "weights": quant,
                "weights_bytes": weights,
                "load_seconds": load_seconds,
                "load_peak": load_peak,
                "batches": [{"batch": batches[0], "seconds": seconds, **_memory(device)}],
                "cosine_mean": float(cosine.mean()),
                "cosine_min": float(cosine.min()),
                "relative_error": float(error),
                "context": _context(device),
            }
        )
        del quantized, hidden
        _reset(device)
    return results


def _vae(job: dict[str, Any], device: Any, smoke: bool) -> dict[str, Any]:
    import torch

    from core.bases.architecture import WAN21_T2V_1_3B
    from core.bases.memory import estimate_peak_memory
    from core.bases.quantization import Quantization
    from core.bases.tiny import VAE_CONFIG
    from trainer.models._untyped import AutoencoderKLWan

    frames, height, width = (5, 64, 64) if smoke else (81, HEIGHT, WIDTH)
    spec = _random_wan(_configs(smoke)["1.3b"], device, torch.bfloat16)
    plan = estimate_peak_memory(
        _base_dims(WAN21_T2V_1_3B, text_encoder=False),
        height=height,
        width=width,
        frames=frames,
        rank=RANK,
        quantization=Quantization.NF4,
    ).caching
    torch.manual_seed(0)
    with torch.device(device):
        vae = (AutoencoderKLWan(**VAE_CONFIG) if smoke else AutoencoderKLWan()).eval()
    params = sum(p.numel() for p in vae.parameters())
    _reset(device)
    weights = _memory(device)["allocated"]
    video = torch.rand(3, frames, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out: dict[str, Any] = {"parameters": params, "weights_bytes": weights, "plan_caching_vae": plan}
    out["frames"], out["height"], out["width"] = frames, height, width
    # The first call pays cuDNN's algorithm search; the second is timed.
    latents, first = _timed(device, lambda: spec.encode_video(vae, video))
    latents, seconds = _timed(device, lambda: spec.encode_video(vae, video))
    out["encode"] = {
        "first_seconds": first,
        "seconds": seconds,
        "latent": list(latents.shape),
        **_memory(device),
    }
    _reset(device, empty=False)
    decoded, seconds = _timed(device, lambda: spec.decode_latents(vae, latents[None]))
    out["decode"] = {"seconds": seconds, "frames": list(decoded.shape), **_memory(device)}
    out["context"] = _context(device)
    return out


def _serve(job: dict[str, Any], device: Any, smoke: bool) -> dict[str, Any]:
    import torch

    from core.bases.quantization import Quantization
    from trainer.serving.pool import AdapterPool

    batch, frames, height, width = (2, 5, 64, 64) if smoke else (4, 33, HEIGHT, WIDTH)
    rank = 4 if smoke else RANK
    repeat = 2 if smoke else 3
    spec = _random_wan(_configs(smoke)["1.3b"], device, torch.bfloat16)
    transformer = spec.load_transformer(Quantization.BF16 if device.type == "cuda" else Quantization.FP32)
    transformer.eval()
    targets = spec.default_lora_targets
    features = sum(
        m.in_features + m.out_features
        for name, m in transformer.named_modules()
        if name.startswith("blocks.") and any(name.endswith(f".{t}") for t in targets)
    )
    row_bytes = features * 2
    pool = AdapterPool(transformer, targets, budget_bytes=row_bytes * (1 + batch * rank), dtype=spec.dtype)
    generator = torch.Generator(device=device).manual_seed(3)
    with torch.no_grad():
        for module in pool.modules:  # every row but the zero row: `batch` random adapters
            for rows in (module.a_rows, module.b_rows):
                rows[1:] = torch.randn(rows[1:].shape, generator=generator, device=device) * 0.02
    adapters = [list(range(1 + k * rank, 1 + (k + 1) * rank)) for k in range(batch)]
    dims = spec.transformer_dims()
    shape = spec.latent_shape(frames, height, width)
    latents = torch.randn(batch, *shape, device=device)
    timesteps = torch.full((batch,), 500.0, device=device)
    embeds = spec.batch_prompt_embeds([torch.randn(TEXT_TOKENS_USED, dims.text_dim) for _ in range(batch)])
    routes: dict[str, list[list[int]] | None] = {
        "no adapter": None,
        "one adapter": [adapters[0]] * batch,
        f"{batch} adapters": adapters,
    }

    def forward(route: list[list[int]] | None) -> None:
        if route is None:
            pool.clear_route()
        else:
            pool.route(route, [1.0] * batch)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        with torch.no_grad(), autocast:
            spec.forward(transformer, latents, timesteps, embeds)
        pool.clear_route()

    _reset(device, empty=False)
    for route in routes.values():
        forward(route)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in routes}
    for _ in range(repeat):  # interleaved, so drift hits every variant alike
        for name, route in routes.items():
            times[name].append(_timed(device, lambda route=route: forward(route))[1])
    return {
        "batch": batch,
        "frames": frames,
        "height": height,
        "width": width,
        "latent": list(shape),
        "rank": rank,
        "pool_rows": pool.rows,
        "seconds": {name: statistics.median(values) for name, values in times.items()},
        "all_seconds": times,
        **_memory(device),
        "context": _context(device),
    }


def _child(name: str, smoke: bool) -> dict[str, Any]:
    _bare_trainer_package()
    import torch

    device = torch.device("cpu" if smoke else "cuda")
    if device.type == "cuda":
        torch.cuda.init()
    job = JOBS[name]
    handler = {"train": _train, "text": _text, "vae": _vae, "serve": _serve}[job["kind"]]
    started = time.perf_counter()
    result = handler(job, device, smoke)
    return {"job": name, "wall_seconds": time.perf_counter() - started, **result}


# ---------------------------------------------------------------------------------------------
# Parent: machine, jobs, tables


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    for package in ("torch", "diffusers", "transformers", "peft", "bitsandbytes"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    try:
        query = "name,memory.total,driver_version,clocks.max.sm,power.limit"
        smi = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        info["gpu"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    return info


def _gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GiB:.2f}"


def _train_table(results: list[dict[str, Any]]) -> list[str]:
    rows = [r for r in results if r.get("kind") == "train" and "runs" in r]
    if not rows:
        return []
    bf16 = {
        (r["model"], run["frames"]): run["max_allocated"]
        for r in rows
        if r["quant"] == "bf16"
        for run in r["runs"]
        if "error" not in run
    }
    lines = [
        "| model | base weights | frames (latent tokens) | plan: total GiB (tensors) "
        "| measured: max allocated GiB | max reserved + context GiB | plan / measured "
        "| allocated vs bf16 | load peak GiB (s) | step s (median) | loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for run in r["runs"]:
            plan = run["plan"]
            tensors = plan["weights"] + plan["trainable"] + plan["activations"]
            measured = run["max_reserved"] + run["context"]
            ratio = f"{plan['training'] / measured:.2f}x" if measured else "n/a"
            base = bf16.get((r["model"], run["frames"]))
            versus = f"{run['max_allocated'] / base:.2f}x" if base and "error" not in run else "n/a"
            step = "n/a" if run["step_median"] is None else f"{run['step_median']:.2f}"
            loss = f"{run['losses'][-1]:.4f}" if run["losses"] else "n/a"
            allocated = _gib(run["max_allocated"])
            if "error" in run:
                allocated = f"**OOM** ({run['error'][:60]}) at {allocated}"
            lines.append(
                f"| {r['model']} | {r['quant']} | {run['frames']} ({run['tokens']:,}) "
                f"| {_gib(plan['training'])} ({_gib(tensors)}) | {allocated} | {_gib(measured)} | {ratio} "
                f"| {versus} | {_gib(r['load']['max_allocated'])} ({r['load_seconds']:.0f}) "
                f"| {step} | {loss} |"
            )
    return lines


def _caching_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| component | weights | input | weights GiB | max allocated GiB | max reserved + context GiB "
        "| plan (stage) GiB | s | vs bf16 embeddings |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    found = False
    for r in results:
        if r.get("kind") == "text" and "variants" in r:
            found = True
            for v in r["variants"]:
                quality = "reference"
                if "cosine_mean" in v:
                    quality = (
                        f"cosine mean {v['cosine_mean']:.4f}, min {v['cosine_min']:.4f}; "
                        f"rel. error {v['relative_error']:.3f}"
                    )
                for b in v["batches"]:
                    lines.append(
                        f"| UMT5-XXL encoder | {v['weights']} "
                        f"| {b['batch']} prompts x {r['sequence']} tokens "
                        f"| {_gib(v['weights_bytes'])} | {_gib(b['max_allocated'])} "
                        f"| {_gib(b['max_reserved'] + v['context'])} | {_gib(r['plan_caching_text'])} "
                        f"| {b['seconds']:.2f} | {quality} |"
                    )
        if r.get("kind") == "vae" and "encode" in r:
            found = True
            clip = f"{r['frames']} x {r['height']}x{r['width']}"
            for stage in ("encode", "decode"):
                s = r[stage]
                plan = _gib(r["plan_caching_vae"]) if stage == "encode" else "not planned"
                extra = f" (first call {s['first_seconds']:.2f})" if "first_seconds" in s else ""
                lines.append(
                    f"| Wan VAE {stage} | fp32 | {clip} | {_gib(r['weights_bytes'])} "
                    f"| {_gib(s['max_allocated'])} "
                    f"| {_gib(s['max_reserved'] + r['context'])} | {plan} | {s['seconds']:.2f}{extra} | |"
                )
    return lines if found else []


def _serve_table(results: list[dict[str, Any]]) -> list[str]:
    rows = [r for r in results if r.get("kind") == "serve" and "seconds" in r]
    if not rows:
        return []
    r = rows[0]
    one = r["seconds"]["one adapter"]
    lines = [
        f"Wan 1.3B dims, bf16, batch of {r['batch']}, {r['frames']} frames at {r['height']}x{r['width']} "
        f"(latent {'x'.join(map(str, r['latent']))}), LoRA rank {r['rank']} in the serving pool; one "
        f"denoising forward (no guidance), median of the runs; peak allocated "
        f"{_gib(r['max_allocated'])} GiB.",
        "",
        "| routing | forward s | vs one adapter (throughput) |",
        "|---|---|---|",
    ]
    for name, seconds in r["seconds"].items():
        lines.append(f"| {name} | {seconds:.3f} | {one / seconds:.2f}x |")
    return lines


def _markdown(machine: dict[str, Any], results: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# GPU measurements (`bench/gpu.py`)",
        "",
        f"Command: `{command}`",
        "",
        f"GPU: {machine.get('gpu')}; {machine.get('cpus')} CPUs; Python {machine.get('python')}; "
        f"torch {machine.get('torch')}, diffusers {machine.get('diffusers')}, transformers "
        f"{machine.get('transformers')}, peft {machine.get('peft')}, "
        f"bitsandbytes {machine.get('bitsandbytes')}",
        "",
    ]
    for title, table in (
        ("Training (LoRA rank 32, 480x832)", _train_table(results)),
        ("Caching stage", _caching_table(results)),
        ("Serving", _serve_table(results)),
    ):
        if table:
            lines += [f"## {title}", "", *table, ""]
    problems = [r for r in results if "error" in r]
    if problems:
        lines += ["## Not measured", ""]
        lines += [f"- {r['job']}: {r['error']}" for r in problems]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="bench-results/gpu", help="folder for the JSON and Markdown")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all jobs; cuts the last")
    parser.add_argument("--only", default=None, help="comma-separated job names (default: all)")
    parser.add_argument("--logs", default=None, help="folder for each job's stderr (default: OUT/logs)")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, to check the script")
    parser.add_argument("--child", choices=sorted(JOBS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(_child(args.child, args.smoke)), flush=True)
        return 0

    names = [n for n in args.only.split(",") if n] if args.only else list(JOBS)
    unknown = sorted(set(names) - set(JOBS))
    if unknown:
        parser.error(f"unknown jobs: {', '.join(unknown)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(args.logs) if args.logs else out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    machine = _machine()
    command = "python -m bench.gpu" + (" --smoke" if args.smoke else "") + f" --budget {args.budget:.0f}"
    print(json.dumps(machine), file=sys.stderr, flush=True)
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in names:
        job = JOBS[name]
        elapsed = time.perf_counter() - started
        left = args.budget - elapsed
        if not args.smoke and job["est"] > left:
            skipped = f"skipped: {left:.0f} s of budget left"
            results.append({"job": name, "kind": job["kind"], "error": skipped})
            print(f"{name}: skipped ({left:.0f} s left)", file=sys.stderr, flush=True)
            continue
        smoke = ["--smoke"] if args.smoke else []
        command_line = [sys.executable, "-m", "bench.gpu", "--child", name, *smoke]
        log = logs / f"{name}.log"
        child_started = time.perf_counter()
        try:
            with log.open("w") as stderr:
                child = subprocess.run(
                    command_line,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    check=False,
                    timeout=None if args.smoke else max(left, 30) + 30,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            if child.returncode != 0:
                tail = log.read_text().strip().splitlines()[-3:]
                result = {"job": name, "error": f"exit {child.returncode}: {' / '.join(tail)[-400:]}"}
            else:
                result = json.loads(child.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            result = {"job": name, "error": "timed out"}
        result["kind"] = job["kind"]
        result["seconds_with_start"] = time.perf_counter() - child_started
        results.append(result)
        status = result.get("error", "done")
        print(f"{name}: {status} ({result['seconds_with_start']:.0f} s)", file=sys.stderr, flush=True)
        (out / "gpu-results.json").write_text(json.dumps({"machine": machine, "results": results}, indent=1))
        (out / "gpu-results.md").write_text(_markdown(machine, results, command))
    (out / "gpu-results.json").write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    markdown = _markdown(machine, results, command)
    (out / "gpu-results.md").write_text(markdown)
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
