"""How a base's frozen weights are stored during training; shared by the trainer and the scheduler."""

from __future__ import annotations

import enum


class Quantization(enum.StrEnum):
    NF4 = "nf4"  # 4-bit NormalFloat with double quantisation of the block scales
    INT8 = "int8"  # LLM.int8() row-wise weights
    BF16 = "bf16"  # no quantisation, weights in bfloat16
    FP32 = "fp32"  # no quantisation, full precision: CPU tests and exact comparisons

    @property
    def is_quantized(self) -> bool:
        return self in (Quantization.NF4, Quantization.INT8)


def bytes_per_weight(quantization: Quantization) -> float:
    """Storage per quantised linear weight, scales included (used by the memory estimate)."""
    if quantization is Quantization.NF4:
        # 4 bits, plus one 8-bit absmax per 64 weights and one fp32 per 256 absmax blocks.
        return 0.5 + 1 / 64 + 4 / (64 * 256)
    if quantization is Quantization.INT8:
        return 1.0
    if quantization is Quantization.BF16:
        return 2.0
    return 4.0
