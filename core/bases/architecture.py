"""Sizes of the Wan 2.1 architecture, counted from its configs with arithmetic only.

The API plans a job's memory without importing torch, so parameter counts come from the
same ``config.json`` files diffusers and transformers build the models from. A test
checks every formula against the real modules built on the meta device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Wan's VAE keeps 1 of every 4 frames after the first and 1 of 8 pixels per side; the
# transformer then patches 2x2, so sides must be multiples of 16.
TEMPORAL_FACTOR = 4
SPATIAL_MULTIPLE = 16
# Prompt embeddings are padded to this many tokens for the real bases.
WAN_TEXT_TOKENS = 512

# transformer/config.json of the published Wan2.1 T2V checkpoints (Wan-AI/*-Diffusers), for
# memory planning and benchmarks without the weights.
WAN21_T2V_1_3B: dict[str, Any] = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-06,
    "image_dim": None,
    "added_kv_proj_dim": None,
    "rope_max_seq_len": 1024,
}
WAN21_T2V_14B: dict[str, Any] = {
    **WAN21_T2V_1_3B,
    "num_attention_heads": 40,
    "ffn_dim": 13824,
    "num_layers": 40,
}
# text_encoder/config.json of the same checkpoints: UMT5-XXL's encoder.
UMT5_XXL: dict[str, Any] = {
    "vocab_size": 256384,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "feed_forward_proj": "gated-gelu",
}


class UnsupportedArchitecture(ValueError):
    """A config this service cannot plan for (image-to-video Wan, say)."""


@dataclass(frozen=True)
class TransformerDims:
    """The sizes the memory estimate needs, independent of any loaded weights."""

    num_layers: int
    dim: int
    ffn_dim: int
    num_heads: int
    text_dim: int
    in_channels: int
    patch_size: tuple[int, int, int]
    block_linear_params: int  # weights of every quantisable linear in the blocks
    other_params: int  # everything else: embedders, norms, biases, output head
    text_tokens: int
    # Positions the rotary embedding holds along each axis (frames, height, width) of the
    # patched latent; a longer axis does not fit (diffusers' ``WanRotaryPosEmbed``).
    rope_max_seq_len: int = 1024


def wan_transformer_dims(config: dict[str, Any], *, text_tokens: int) -> TransformerDims:
    """Sizes of a text-to-video ``WanTransformer3DModel`` config."""
    if config.get("image_dim") is not None or config.get("added_kv_proj_dim") is not None:
        raise UnsupportedArchitecture("image-to-video Wan bases are not supported yet")
    qk_norm = config.get("qk_norm", "rms_norm_across_heads")
    if qk_norm not in ("rms_norm_across_heads", None):
        raise UnsupportedArchitecture(f"Wan qk_norm {qk_norm!r} is not supported")
    heads, head_dim = config["num_attention_heads"], config["attention_head_dim"]
    d, ffn, text = heads * head_dim, config["ffn_dim"], config["text_dim"]
    freq, layers = config.get("freq_dim", 256), config["num_layers"]
    patch = tuple(config.get("patch_size", (1, 2, 2)))
    c_in = config.get("in_channels", 16)
    c_out = (config.get("out_channels") or c_in) * math.prod(patch)

    # Two attentions of four d x d projections each, and the FFN's two projections.
    block_linear = 8 * d * d + 2 * d * ffn
    block_other = (
        6 * d  # modulation table
        + 8 * d  # attention projection biases
        + ffn
        + d  # FFN biases
        + (4 * d if qk_norm else 0)  # q/k RMS norms of both attentions
        + (2 * d if config.get("cross_attn_norm", True) else 0)  # affine norm before cross-attention
    )
    top = (
        2 * d  # output modulation table
        + d * c_in * math.prod(patch)
        + d  # patch embedding
        + freq * d
        + d
        + d * d
        + d  # time embedder
        + 6 * d * d
        + 6 * d  # time projection to the blocks' modulation
        + text * d
        + d
        + d * d
        + d  # text embedder
        + c_out * d
        + c_out  # output head
    )
    return TransformerDims(
        num_layers=layers,
        dim=d,
        ffn_dim=ffn,
        num_heads=heads,
        text_dim=text,
        in_channels=c_in,
        patch_size=(int(patch[0]), int(patch[1]), int(patch[2])),
        block_linear_params=layers * block_linear,
        other_params=layers * block_other + top,
        text_tokens=text_tokens,
        rope_max_seq_len=int(config.get("rope_max_seq_len", 1024)),
    )


@dataclass(frozen=True)
class TextEncoderDims:
    """The sizes of a UMT5 encoder the memory estimate needs, split as the trainer places them."""

    embedding_params: int  # the token embedding, which stays on the host while encoding
    quantizable_params: int  # every layer's q, k, v, o and FFN input projections
    other_params: int  # FFN output projections (``wo``, never quantised), norms, position biases
    d_model: int
    d_ff: int
    num_heads: int

    @property
    def params(self) -> int:
        return self.embedding_params + self.quantizable_params + self.other_params


def umt5_encoder_dims(config: dict[str, Any]) -> TextEncoderDims:
    """Sizes of a ``UMT5EncoderModel`` config (each layer has its own position bias)."""
    d, inner, ff, heads = (
        config["d_model"],
        config["num_heads"] * config["d_kv"],
        config["d_ff"],
        config["num_heads"],
    )
    gated = str(config.get("feed_forward_proj", "gated-gelu")).startswith("gated")
    layers = config["num_layers"]
    quantizable = 4 * d * inner + (2 if gated else 1) * d * ff  # q, k, v, o; wi (wi_0, wi_1 if gated)
    other = (
        d * ff  # wo
        + config.get("relative_attention_num_buckets", 32) * heads
        + 2 * d  # the two layer norms
    )
    return TextEncoderDims(
        embedding_params=config["vocab_size"] * d,
        quantizable_params=layers * quantizable,
        other_params=layers * other + d,  # and the final norm
        d_model=d,
        d_ff=ff,
        num_heads=heads,
    )


def umt5_encoder_params(config: dict[str, Any]) -> int:
    """Parameters of a ``UMT5EncoderModel`` config."""
    return umt5_encoder_dims(config).params


def geometry_problem(
    *,
    frames: int,
    height: int,
    width: int,
    temporal_factor: int = TEMPORAL_FACTOR,
    spatial_multiple: int = SPATIAL_MULTIPLE,
) -> str | None:
    """What is wrong with a clip shape for a base, in words, or None."""
    if (frames - 1) % temporal_factor:
        return f"frames must be 1 + a multiple of {temporal_factor} (e.g. 1, 5, ..., 81); got {frames}"
    if height % spatial_multiple or width % spatial_multiple:
        return f"height and width must be multiples of {spatial_multiple}; got {height}x{width}"
    return None


def positions_problem(
    *,
    frames: int,
    height: int,
    width: int,
    transformer: TransformerDims,
    temporal_factor: int = TEMPORAL_FACTOR,
    spatial_multiple: int = SPATIAL_MULTIPLE,
) -> str | None:
    """Whether a clip's patched latent fits the positions the transformer's rotary embedding
    places along each axis, in words, or None.

    Training also uses the transposed shape (a portrait bucket), so the longer side is what
    must fit. ``spatial_multiple`` is the VAE's downsampling times the patch, so a side of
    ``s`` pixels is ``s // spatial_multiple`` positions.
    """
    positions = transformer.rope_max_seq_len
    patch_t = transformer.patch_size[0]
    problems = []
    if ((frames - 1) // temporal_factor + 1) // patch_t > positions:
        most = (positions * patch_t - 1) * temporal_factor + 1
        problems.append(
            f"frames must be at most {most} on this base (its transformer places {positions} latent "
            f"frames); got {frames}"
        )
    if max(height, width) // spatial_multiple > positions:
        problems.append(
            f"height and width must be at most {positions * spatial_multiple} on this base (its "
            f"transformer places {positions} positions per side); got {height}x{width}"
        )
    return "; ".join(problems) or None
