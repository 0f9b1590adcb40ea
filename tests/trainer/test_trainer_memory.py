"""The memory estimate the scheduler plans with."""

from __future__ import annotations

import torch

from trainer import Quantization, estimate_peak_memory
from trainer.models import load_specification
from trainer.models.wan import WAN21_T2V_1_3B, transformer_dims
from trainer.quantize import bytes_per_weight

GiB = 1 << 30
WAN_1_3B = transformer_dims(WAN21_T2V_1_3B, text_tokens=512)


def _estimate(**changes):
    settings = {"height": 480, "width": 832, "frames": 81, "rank": 16, "quantization": Quantization.NF4}
    return estimate_peak_memory(WAN_1_3B, **{**settings, **changes})


def test_dims_of_the_published_1_3b_config() -> None:
    assert (WAN_1_3B.num_layers, WAN_1_3B.dim, WAN_1_3B.ffn_dim) == (30, 1536, 8960)
    assert WAN_1_3B.block_linear_params == 30 * (8 * 1536 * 1536 + 2 * 1536 * 8960)
    assert 1.3e9 < WAN_1_3B.block_linear_params + WAN_1_3B.other_params < 1.45e9


def test_weights_follow_the_quantisation() -> None:
    nf4, int8, bf16 = (
        _estimate(quantization=q) for q in (Quantization.NF4, Quantization.INT8, Quantization.BF16)
    )

    assert nf4.total < int8.total < bf16.total
    assert bf16.weights - nf4.weights == int(
        WAN_1_3B.block_linear_params * (2 - bytes_per_weight(Quantization.NF4))
    )
    assert 0.5 * GiB < nf4.weights < 1.0 * GiB  # ~1.3B weights at ~4.1 bits, plus bf16 embedders


def test_activations_grow_with_resolution_frames_and_rank() -> None:
    base = _estimate()

    assert _estimate(frames=41).activations < base.activations
    assert _estimate(height=240, width=416).activations < base.activations
    assert _estimate(rank=64).trainable == 4 * base.trainable
    assert _estimate(gradient_checkpointing=False).activations > 5 * base.activations


def test_plausible_for_a_1_3b_run_at_480p() -> None:
    total = _estimate().total

    assert 4 * GiB < total < 16 * GiB


def test_dims_come_from_the_base_config() -> None:
    dims = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32).transformer_dims()

    assert (dims.num_layers, dims.dim, dims.ffn_dim) == (2, 32, 64)
    assert dims.block_linear_params == 2 * (8 * 32 * 32 + 2 * 32 * 64)
    assert (
        estimate_peak_memory(dims, height=32, width=32, frames=5, rank=4, quantization=Quantization.NF4).total
        > 0
    )
