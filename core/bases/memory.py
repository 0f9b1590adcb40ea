"""Planning estimate of a run's peak accelerator memory, for the job scheduler.

A run has two stages that never overlap. Caching loads the text encoder (its layers stored
as the base's are, its token embedding on the host), encodes every prompt one at a time and
frees it, then loads the VAE (fp32) and encodes the footage, so its peak is the larger of
the two. Training
holds the frozen base at its quantised size, the LoRA with its gradients and AdamW states,
the activations a step keeps (with the checkpointed block inputs, when offloaded, in pinned
host memory instead) and, when validation clips are rendered, the VAE again. The
peak is the larger stage plus a fixed CUDA context and allocator slack. It assumes bf16
compute with SDPA attention (no sequence-squared buffer) and errs high: the scheduler would
rather wait for a larger card than start a run that dies with out-of-memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.bases.architecture import TEMPORAL_FACTOR, TextEncoderDims, TransformerDims
from core.bases.quantization import Quantization, bytes_per_weight

GiB = 1 << 30
_CUDA_CONTEXT = int(0.75 * GiB)  # context, cuBLAS workspaces; outside max_memory_allocated
_SLACK = 1.15  # caching-allocator fragmentation
_BF16 = 2
_FP32 = 4
# Activation tensors of width ``dim`` one Wan block holds for backward (norm outputs, q/k/v
# of two attentions, their outputs, residuals, fp32 modulation copies), rounded up.
_BLOCK_DIM_TENSORS = 24
_BLOCK_FFN_TENSORS = 3
# The VAE encodes a causal chunk of 4 frames plus 2 cached ones at full resolution; about
# four feature maps of the first stage's width are alive at its peak.
_VAE_CHUNK_FRAMES = 6
_VAE_LIVE_MAPS = 4
# Bytes per attention score UMT5 keeps at its peak: bf16 scores, the bf16 position bias with
# the mask added, and the fp32 copy softmax runs on with its fp32 result.
_TEXT_SCORE_BYTES = 12
# [tokens, d_ff] tensors of UMT5's gated FFN alive together: both projections, the GELU, the product.
_TEXT_FFN_TENSORS = 4


@dataclass(frozen=True)
class BaseDims:
    """What the estimate needs of a base: its transformer, text encoder and VAE sizes."""

    transformer: TransformerDims
    text_encoder: TextEncoderDims | None  # None: a base without one (benchmarks of a single stage)
    vae_params: int
    vae_base_dim: int  # channels of the VAE's full-resolution stage


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    trainable: int
    activations: int
    overhead: int
    caching: int  # peak of the caching stage, context and slack included
    # Pinned host bytes of the offloaded block inputs; host memory, so in no total.
    offloaded: int = 0

    @property
    def training(self) -> int:
        return self.weights + self.trainable + self.activations + self.overhead

    @property
    def total(self) -> int:
        return max(self.training, self.caching)


def lora_parameters(dims: TransformerDims, rank: int) -> int:
    """LoRA parameters with the default targets: q/k/v/out of both attentions and both FFN projections."""
    per_block = 8 * rank * (dims.dim + dims.dim) + rank * (dims.dim + dims.ffn_dim) * 2
    return per_block * dims.num_layers


def _with_overhead(subtotal: int) -> int:
    return subtotal + _CUDA_CONTEXT + int(subtotal * (_SLACK - 1))


def text_encoder_memory(encoder: TextEncoderDims, *, quantization: Quantization, tokens: int) -> int:
    """Accelerator bytes of encoding one prompt of ``tokens``, before context and slack.

    The layers' q/k/v/o and FFN input projections are stored as the base's block linears are
    (``load_umt5_encoder``); ``wo``, norms and position biases in the compute dtype; the token
    embedding stays on the host. Prompts go through one at a time, so the activations are
    one prompt's: every head's scores, the FFN's widest tensors and, when quantised, one
    dequantised FFN weight.
    """
    other_bytes = _BF16 if quantization.is_quantized or quantization is Quantization.BF16 else _FP32
    weights = (
        int(encoder.quantizable_params * bytes_per_weight(quantization)) + encoder.other_params * other_bytes
    )
    activations = encoder.num_heads * tokens * tokens * _TEXT_SCORE_BYTES
    activations += _TEXT_FFN_TENSORS * tokens * encoder.d_ff * _BF16
    if quantization.is_quantized:
        activations += encoder.d_model * encoder.d_ff * _BF16
    return weights + activations


def estimate_peak_memory(
    base: BaseDims,
    *,
    height: int,
    width: int,
    frames: int,
    rank: int,
    quantization: Quantization,
    batch_size: int = 1,
    gradient_checkpointing: bool = True,
    spatial_factor: int = 16,
    eight_bit_optimizer: bool = True,
    validation: bool = False,
    offload_block_inputs: bool = False,
) -> MemoryEstimate:
    """Estimated peak bytes of one training run on a CUDA device.

    ``offload_block_inputs``: the checkpointed block inputs wait in host memory
    (``trainer.activations``); it needs ``gradient_checkpointing``.
    """
    if offload_block_inputs and not gradient_checkpointing:
        raise ValueError("offloading block inputs needs gradient checkpointing")
    dims = base.transformer
    other_bytes = _BF16 if quantization.is_quantized or quantization is Quantization.BF16 else _FP32
    weights = int(dims.block_linear_params * bytes_per_weight(quantization)) + dims.other_params * other_bytes

    lora = lora_parameters(dims, rank)
    # fp32 weights and gradients, plus AdamW's two moments (1 byte each when 8-bit).
    trainable = lora * (4 + 4 + (2 if eight_bit_optimizer else 8))

    latent_frames = (frames - 1) // TEMPORAL_FACTOR + 1
    tokens = batch_size * latent_frames * (height // spatial_factor) * (width // spatial_factor)
    one_block = tokens * (_BLOCK_DIM_TENSORS * dims.dim + _BLOCK_FFN_TENSORS * dims.ffn_dim) * _BF16
    block_input = tokens * dims.dim * _BF16
    offloaded = 0
    if gradient_checkpointing:
        # Each block's input is kept; one block at a time is recomputed in full. Offloaded,
        # the inputs wait in host memory and only the recomputed block's is brought back.
        if offload_block_inputs:
            offloaded = dims.num_layers * block_input
            activations = block_input + one_block
        else:
            activations = dims.num_layers * block_input + one_block
    else:
        activations = dims.num_layers * one_block
    # A quantised layer is dequantised to bf16 for its matmul; the largest is the FFN's.
    activations += dims.dim * dims.ffn_dim * _BF16 * (2 if quantization.is_quantized else 0)
    activations += batch_size * dims.text_tokens * (dims.text_dim + dims.dim) * _BF16 * 2
    vae_weights = base.vae_params * _FP32
    if validation:
        weights += vae_weights

    subtotal = weights + trainable + activations
    overhead = _CUDA_CONTEXT + int(subtotal * (_SLACK - 1))

    text_stage = 0
    if base.text_encoder is not None:
        text_stage = text_encoder_memory(
            base.text_encoder, quantization=quantization, tokens=dims.text_tokens
        )
    vae_maps = _VAE_LIVE_MAPS * base.vae_base_dim * _VAE_CHUNK_FRAMES * height * width * _FP32
    caching = _with_overhead(max(text_stage, vae_weights + vae_maps))
    return MemoryEstimate(
        weights=weights,
        trainable=trainable,
        activations=activations,
        overhead=overhead,
        caching=caching,
        offloaded=offloaded,
    )


def estimate_serving_memory(dims: BaseDims, *, adapter_cache_bytes: int) -> int:
    """What a generation worker keeps resident for one base: bf16 transformer and text encoder,
    the fp32 VAE, the adapter rows and a CUDA context, with allocator slack. A batch's
    activations and the VAE's decoding buffers come on top and are not counted."""
    t = dims.transformer
    text_encoder = dims.text_encoder.params if dims.text_encoder is not None else 0
    weights = (t.block_linear_params + t.other_params + text_encoder) * _BF16
    return int((weights + dims.vae_params * _FP32 + adapter_cache_bytes) * _SLACK) + _CUDA_CONTEXT
