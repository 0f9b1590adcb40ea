"""Planning estimate of a run's peak accelerator memory, for the job scheduler.

Sums the frozen base (at its quantised size), the LoRA with its gradients and AdamW states,
the activations a step keeps, and a fixed CUDA context plus allocator slack. It assumes bf16
compute with SDPA attention (no sequence-squared buffer) and errs high: the scheduler would
rather wait for a larger card than start a run that dies with out-of-memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainer.models.registry import TransformerDims
from trainer.quantize import Quantization, bytes_per_weight

GiB = 1 << 30
_CUDA_CONTEXT = int(0.75 * GiB)  # context, cuBLAS workspaces; outside max_memory_allocated
_SLACK = 1.15  # caching-allocator fragmentation
_BF16 = 2
# Activation tensors of width ``dim`` one Wan block holds for backward (norm outputs, q/k/v
# of two attentions, their outputs, residuals, fp32 modulation copies), rounded up.
_BLOCK_DIM_TENSORS = 24
_BLOCK_FFN_TENSORS = 3


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    trainable: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.trainable + self.activations + self.overhead


def lora_parameters(dims: TransformerDims, rank: int) -> int:
    """LoRA parameters with the default targets: q/k/v/out of both attentions and both FFN projections."""
    per_block = 8 * rank * (dims.dim + dims.dim) + rank * (dims.dim + dims.ffn_dim) * 2
    return per_block * dims.num_layers


def estimate_peak_memory(
    dims: TransformerDims,
    *,
    height: int,
    width: int,
    frames: int,
    rank: int,
    quantization: Quantization,
    batch_size: int = 1,
    gradient_checkpointing: bool = True,
    temporal_factor: int = 4,
    spatial_factor: int = 16,
    eight_bit_optimizer: bool = True,
) -> MemoryEstimate:
    """Estimated peak bytes of one training run on a CUDA device."""
    other_bytes = _BF16 if quantization.is_quantized or quantization is Quantization.BF16 else 4
    weights = int(dims.block_linear_params * bytes_per_weight(quantization)) + dims.other_params * other_bytes

    lora = lora_parameters(dims, rank)
    # fp32 weights and gradients, plus AdamW's two moments (1 byte each when 8-bit).
    trainable = lora * (4 + 4 + (2 if eight_bit_optimizer else 8))

    latent_frames = (frames - 1) // temporal_factor + 1
    tokens = batch_size * latent_frames * (height // spatial_factor) * (width // spatial_factor)
    one_block = tokens * (_BLOCK_DIM_TENSORS * dims.dim + _BLOCK_FFN_TENSORS * dims.ffn_dim) * _BF16
    if gradient_checkpointing:
        # Each block's input is kept; one block at a time is recomputed in full.
        activations = dims.num_layers * tokens * dims.dim * _BF16 + one_block
    else:
        activations = dims.num_layers * one_block
    # A quantised layer is dequantised to bf16 for its matmul; the largest is the FFN's.
    activations += dims.dim * dims.ffn_dim * _BF16 * (2 if quantization.is_quantized else 0)
    activations += batch_size * dims.text_tokens * (dims.text_dim + dims.dim) * _BF16 * 2

    subtotal = weights + trainable + activations
    overhead = _CUDA_CONTEXT + int(subtotal * (_SLACK - 1))
    return MemoryEstimate(weights=weights, trainable=trainable, activations=activations, overhead=overhead)
