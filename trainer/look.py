"""What a finished fine-tune did to the look: the base's renders, the version's, the footage.

After the loop, ``measure_look`` renders the validation prompts twice with the run's own
transformer, the adapter disabled and then enabled (same prompts, same seeds, so the same
noise), samples a few windows of the dataset's footage fitted to the same size, and compares
both sets of renders with the footage through ``core.looks``. It reuses what the run already
holds (the transformer, the cached prompt embeddings), so it costs a few small renders and a
few decoded frames: seconds on the tiny base, not another load of the base.

The renders come from the transformer as it trained (quantised as the run was), not from the
serving engine's copy: both sides share it, so the comparison is fair, and nothing more is
loaded.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.looks import LookComparison, look_stats
from core.storage.base import ObjectNotFoundError
from trainer.config import TrainConfig
from trainer.data import TrainingAsset, TrainingDataset, frame_windows
from trainer.data.footage import frame_stride, probe, read_frames
from trainer.devices import free_memory
from trainer.errors import TrainerInputError
from trainer.train import Trainer
from trainer.video import to_pixels


@dataclass(frozen=True)
class LookPlan:
    """How the look is measured; its bounds keep the cost to a few small renders.

    ``renders`` per side (base and version): the validation prompts in turn with seeds from
    the run's own upwards; as many windows of footage are sampled. Renders take the run's
    training size, shrunk to ``max_side`` on its longer side, and at most ``max_frames``
    frames; ``steps`` and ``guidance`` are the base's generation defaults, what a tenant's
    generation gets.
    """

    renders: int
    max_side: int
    max_frames: int
    steps: int
    guidance: float


@dataclass(frozen=True)
class RenderShape:
    frames: int
    height: int
    width: int


def render_shape(
    config: TrainConfig, plan: LookPlan, *, spatial_multiple: int, temporal_factor: int
) -> RenderShape:
    """The run's training shape within the plan's bounds, on the base's grid (sides a multiple
    of ``spatial_multiple``, 1 + k x ``temporal_factor`` frames)."""
    multiple, factor = spatial_multiple, temporal_factor
    scale = min(1.0, plan.max_side / max(config.height, config.width))
    frames = min(config.frames, max(plan.max_frames, 1))
    return RenderShape(
        frames=(frames - 1) // factor * factor + 1,
        height=max(multiple, int(config.height * scale) // multiple * multiple),
        width=max(multiple, int(config.width * scale) // multiple * multiple),
    )


def _spread(assets: Sequence[TrainingAsset], count: int) -> list[TrainingAsset]:
    """Up to ``count`` assets evenly spread over the dataset, first and last included."""
    if count >= len(assets):
        return list(assets)
    if count == 1:
        return [assets[len(assets) // 2]]
    return [assets[round(i * (len(assets) - 1) / (count - 1))] for i in range(count)]


def sample_footage(
    dataset: TrainingDataset, config: TrainConfig, *, clips: int, shape: RenderShape
) -> list[np.ndarray]:
    """Up to ``clips`` windows of the footage, uint8 ``[f, h, w, 3]``, as the run saw it: at the
    rate it trained at, fitted (scaled to cover, centre-cropped) to the render size, spread over
    the assets and, where there are fewer assets than clips, over each asset's length."""
    chosen = _spread(dataset.assets, clips)
    per_asset = math.ceil(clips / len(chosen))
    windows: list[np.ndarray] = []
    for asset in chosen:
        name = asset.asset_id or asset.key
        try:
            with dataset.source.local_path(asset.key) as path:
                info = probe(path, name)
                stride = frame_stride(info, config.target_fps)
                length = min(shape.frames, (info.frames - 1) // stride + 1)
                spans = frame_windows(info.frames, length, stride=stride, max_windows=per_asset)
                video = read_frames(
                    path, name, [i for span in spans for i in span], height=shape.height, width=shape.width
                )
        except ObjectNotFoundError:
            # Training may not have read it: its latents can come from the dataset's cache.
            raise TrainerInputError(f"{name}: footage not found") from None
        frames = to_pixels((video.permute(1, 2, 3, 0) + 1) / 2)  # [-1, 1] channels first to uint8
        windows.extend(np.split(frames, len(spans)))
    return windows[:clips]


def measure_look(trainer: Trainer, plan: LookPlan) -> dict[str, Any]:
    """The look of the base's renders, the trained version's and the footage's, compared
    (``LookComparison.to_dict``), with how it was measured and how long it took. Call after
    ``Trainer.run`` completed; it leaves the transformer in eval mode, with its adapter on."""
    started = time.perf_counter()
    config = trainer.config
    spec = trainer.spec
    shape = render_shape(
        config, plan, spatial_multiple=spec.spatial_multiple, temporal_factor=spec.temporal_factor
    )
    prompts = [i % len(trainer.validation_prompts) for i in range(plan.renders)]
    seeds = [config.seed + i for i in range(plan.renders)]
    size = {"frames": shape.frames, "height": shape.height, "width": shape.width}
    transformer = trainer.transformer
    # LoRA dropout off: each side must be rendered from the noise alone.
    transformer.eval()
    vae = spec.load_vae()
    try:
        transformer.disable_adapters()  # type: ignore[operator]
        try:
            base = trainer.sample(vae, prompts, seeds, **size, steps=plan.steps, guidance=plan.guidance)
        finally:
            transformer.enable_adapters()  # type: ignore[operator]
        version = trainer.sample(vae, prompts, seeds, **size, steps=plan.steps, guidance=plan.guidance)
    finally:
        del vae
        free_memory(trainer.device)
    footage = sample_footage(trainer.dataset, config, clips=plan.renders, shape=shape)
    comparison = LookComparison(
        base=look_stats(list(to_pixels(base))),
        version=look_stats(list(to_pixels(version))),
        footage=look_stats(footage),
    )
    record = {
        "measured": True,
        "reason": None,
        **comparison.to_dict(),
        "renders": {
            "count": plan.renders,
            "prompts": len(set(prompts)),
            "seeds": seeds,
            **size,
            "steps": plan.steps,
            "guidance": plan.guidance,
        },
        "footage_clips": len(footage),
        "seconds": time.perf_counter() - started,
    }
    # Raises on NaN or infinity, which a JSON column cannot store, here rather than where it
    # would fail the transaction that makes the version.
    json.dumps(record, allow_nan=False)
    return record


def unmeasured(reason: str) -> dict[str, Any]:
    """What a version stores when its look could not be measured: why, and no numbers."""
    return {"measured": False, "reason": reason}
