"""LoRA adapters made from seeded random weights, in the trainer's export format.

Random adapters with large weights change the tiny base's output visibly, which training a
few steps would not: tests of serving need adapters that are easy to tell apart.
"""

from __future__ import annotations

from typing import Any

import torch

from core.bases.tiny import TRANSFORMER_CONFIG
from trainer.export import LoraLayout, adapter_bytes
from trainer.models._untyped import WanTransformer3DModel
from trainer.models.wan import WanSpecification

TARGETS = WanSpecification.default_lora_targets


def target_shapes(config: dict[str, Any] | None = None) -> list[tuple[str, int, int]]:
    with torch.device("meta"):
        model = WanTransformer3DModel(**(config or TRANSFORMER_CONFIG))
    return [
        (name, module.in_features, module.out_features)
        for name, module in model.named_modules()
        if name.startswith("blocks.") and any(name.endswith(f".{t}") for t in TARGETS)
    ]


def random_adapter(
    seed: int,
    *,
    rank: int = 4,
    alpha: float = 8.0,
    scale: float = 0.3,
    config: dict[str, Any] | None = None,
    shapes: list[tuple[str, int, int]] | None = None,
) -> bytes:
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, fan_in, fan_out in shapes or target_shapes(config):
        state[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, fan_in, generator=generator) * scale
        state[f"transformer.{name}.lora_B.weight"] = torch.randn(fan_out, rank, generator=generator) * scale
    return adapter_bytes(state, LoraLayout(rank=rank, alpha=alpha, targets=TARGETS), extra={})
