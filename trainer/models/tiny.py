"""``tiny``: a Wan 2.1-architecture base small enough for tests and the embedded default.

Every component is built from a config and a seed, so it needs no files and is the same on
every machine, and it goes through every code path of the real base: streaming quantised
load, UMT5 prompt encoding (with ByT5's file-free byte tokenizer), LoRA on the same layers
and the UniPC flow sampler.

It is also small enough to learn a look in a few CPU minutes, which random weights alone
would not allow: a random VAE decodes every latent to noise, and a random transformer
predicts no velocity a sampler can use, so a short LoRA run shows nothing. So the
autoencoder is a fixed transform with no weights (``TinyAutoencoder``), and the transformer's
random weights are arranged into a denoiser of a neutral prior (``_arrange_as_denoiser``):
the base renders flat grey, and an adapter trained on footage renders its colours and tones.
The real Wan VAE stays covered through ``write_diffusers_folder``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn
from transformers import ByT5Tokenizer, UMT5Config

from core.bases.tiny import (
    AUTOENCODER_CONFIG,
    SCHEDULER_CONFIG,
    TEXT_ENCODER_CONFIG,
    TINY_TEXT_TOKENS,
    TRANSFORMER_CONFIG,
    VAE_CONFIG,
)
from trainer.models._untyped import (
    AutoencoderKLWan,
    UMT5EncoderModel,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from trainer.models.registry import register
from trainer.models.wan import WanSpecification

# One seed per component, so building one never shifts another's weights.
_SEEDS = {"transformer": 1, "vae": 2, "text_encoder": 3}
# How much of their random output the transformer's blocks, time embedding and text
# embedding keep (see ``_arrange_as_denoiser``).
_BLOCK_OUTPUT_SCALE = 0.1
_TIME_EMBEDDING_SCALE = 0.1
_TEXT_EMBEDDING_SCALE = 0.01
# The block's DCT frequencies (vertical, horizontal) each latent channel keeps, after the
# three block means: the coarsest detail, where most of a picture's energy lies, and more
# of it for lightness, to which the eye is the most sensitive.
_LIGHTNESS_FREQUENCIES = ((0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0))
_CHROMA_FREQUENCIES = ((0, 1), (1, 0))


def _dct_matrix(size: int) -> torch.Tensor:
    """The orthonormal DCT-II: row k is the k-th cosine over ``size`` samples."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    n = torch.arange(size, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (2 * n + 1) * k / (2 * size)) * math.sqrt(2 / size)
    matrix[0] /= math.sqrt(2)
    return matrix


def _block_basis(block: int) -> torch.Tensor:
    """``[16, 3, block, block]`` orthonormal patterns: colour direction times 2D cosine."""
    # Lightness, red against blue, green against magenta: orthonormal, so the whole basis is.
    colours = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]], dtype=torch.float64)
    colours = colours / colours.norm(dim=1, keepdim=True)
    dct = _dct_matrix(block)
    channels = [(0, (0, 0)), (1, (0, 0)), (2, (0, 0))]
    channels += [(0, frequency) for frequency in _LIGHTNESS_FREQUENCIES]
    channels += [(colour, frequency) for colour in (1, 2) for frequency in _CHROMA_FREQUENCIES]
    patterns = [
        colours[colour][:, None, None] * dct[fy][:, None] * dct[fx][None, :] for colour, (fy, fx) in channels
    ]
    return torch.stack(patterns).float()


@dataclass(frozen=True)
class AutoencoderConfig:
    """The fields of ``AutoencoderKLWan.config`` that the trainer and ``WanPipeline`` read."""

    z_dim: int
    scale_factor_temporal: int
    scale_factor_spatial: int
    latents_mean: list[float]
    latents_std: list[float]


class TinyAutoencoder(nn.Module):
    """A weight-free stand-in for ``AutoencoderKLWan`` with the same interface and shapes.

    Encoding averages each group of frames (the first alone, then fours) and projects each
    8x8 block on 16 fixed orthonormal patterns (``_block_basis``); decoding is the transpose,
    repeating each group's frame. So ``encode(decode(z)) == z`` wherever the decoded frames
    stay within [-1, 1] (decoding clamps, as Wan's does), and ``decode(encode(x))`` is ``x``
    without its fine detail, grain and motion within a group: the closest picture the latent
    can hold. Latents of real footage carry its colours and tones, and a transformer that
    learns to produce them shows it in the frames.
    """

    basis: torch.Tensor

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        basis = _block_basis(config.scale_factor_spatial)
        if basis.shape[0] != config.z_dim:
            raise ValueError(f"the tiny autoencoder has {basis.shape[0]} channels, not {config.z_dim}")
        # Not persistent: the transform is its definition, and there are no weights to save.
        self.register_buffer("basis", basis, persistent=False)

    # As diffusers models have them: ``WanPipeline`` places and casts latents by them.
    @property
    def device(self) -> torch.device:
        return self.basis.device

    @property
    def dtype(self) -> torch.dtype:
        return self.basis.dtype

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> Any:
        """``[b, 3, 1 + 4k, h, w]`` in [-1, 1] to a (deterministic) latent distribution."""
        b, c, f, h, w = x.shape
        step, block = self.config.scale_factor_temporal, self.config.scale_factor_spatial
        later = x[:, :, 1:].reshape(b, c, (f - 1) // step, step, h, w).mean(3)
        groups = torch.cat([x[:, :, :1], later], dim=2)
        blocks = groups.reshape(b, c, groups.shape[2], h // block, block, w // block, block)
        latents = torch.einsum("bctiyjx,zcyx->bztij", blocks, self.basis.to(x.dtype))
        # Zero variance: the posterior is the transform itself, as Wan's nearly is.
        parameters = torch.cat([latents, torch.zeros_like(latents)], dim=1)  # mean, log-variance
        posterior = DiagonalGaussianDistribution(parameters, deterministic=True)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True) -> Any:
        """Latents ``[b, 16, t, h/8, w/8]`` to frames ``[b, 3, 1 + 4(t - 1), h, w]`` in [-1, 1]."""
        b, _, t, h, w = z.shape
        block = self.config.scale_factor_spatial
        blocks = torch.einsum("bztij,zcyx->bctiyjx", z, self.basis.to(z.dtype))
        groups = blocks.reshape(b, 3, t, h * block, w * block)
        later = groups[:, :, 1:].repeat_interleave(self.config.scale_factor_temporal, dim=2)
        # Clamped as AutoencoderKLWan clamps, so both hand the video processor the same range.
        video = torch.cat([groups[:, :, :1], later], dim=2).clamp(-1.0, 1.0)
        return DecoderOutput(sample=video) if return_dict else (video,)


@torch.no_grad()
def _arrange_as_denoiser(model: Any) -> None:
    """Make a random Wan transformer the flow-matching denoiser of flat mid-grey footage.

    The patch embedding writes each noisy patch into the residual stream intact, through
    random orthonormal columns orthogonal to the all-ones direction, so the final LayerNorm
    only rescales it; the output head reads it back at the norm unit noise has over a patch.
    That is the velocity which carries noise to the zero latent, so the base renders flat
    grey (a neutral prior, as a real base is a prior over all footage) and an adapter has only
    to learn where footage differs from it, which a LoRA of the blocks can do in a few hundred
    steps. The blocks keep a tenth of their random output: the base's own slight texture.
    The time embedding is quietened so the output's modulation does not bend the read-out.
    The text embedding nearly vanishes: a model this small cannot learn to follow prompts
    from a few clips, and an adapter that learned its look through the captions would leave
    the unconditional prediction behind, which classifier-free guidance then overshoots.
    """
    dim, patch = model.proj_out.in_features, tuple(model.config.patch_size)
    channels = model.config.in_channels
    values = channels * math.prod(patch)
    ones_first = torch.cat([torch.ones(dim, 1), torch.randn(dim, values)], dim=1)
    embedding = torch.linalg.qr(ones_first).Q[:, 1:]  # [dim, values]: orthonormal, zero-mean columns
    model.patch_embedding.weight.copy_(embedding.reshape(dim, channels, *patch))
    model.patch_embedding.bias.zero_()
    # The output head lays a patch out channels last (diffusers' unpatchify).
    read_out = embedding.reshape(dim, channels, *patch).movedim(1, -1).reshape(dim, values)
    model.proj_out.weight.copy_(read_out.T * math.sqrt(values / dim))
    model.proj_out.bias.zero_()
    model.scale_shift_table.zero_()
    scaled = [
        (model.condition_embedder.time_embedder.linear_2, _TIME_EMBEDDING_SCALE),
        (model.condition_embedder.text_embedder.linear_2, _TEXT_EMBEDDING_SCALE),
    ]
    for block in model.blocks:
        scaled += [
            (layer, _BLOCK_OUTPUT_SCALE)
            for layer in (block.attn1.to_out[0], block.attn2.to_out[0], block.ffn.net[2])
        ]
    for layer, scale in scaled:
        layer.weight.mul_(scale)
        layer.bias.mul_(scale)


def _build(component: str) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEEDS[component])
        model: nn.Module
        if component == "transformer":
            model = WanTransformer3DModel(**TRANSFORMER_CONFIG)
            _arrange_as_denoiser(model)
        elif component == "vae":
            model = AutoencoderKLWan(**VAE_CONFIG)
        else:
            model = UMT5EncoderModel(UMT5Config(**TEXT_ENCODER_CONFIG))
        return model.eval()


@register()
class TinyWanSpecification(WanSpecification):
    name = "tiny"
    max_sequence_length = TINY_TEXT_TOKENS

    def _check_folder(self) -> None:
        """Built from configs: there is no folder to check."""

    def _transformer_config(self) -> dict[str, Any]:
        return _transformer_config()

    def _transformer_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from _build("transformer").state_dict().items()

    def _new_scheduler(self) -> SchedulerMixin:
        scheduler: SchedulerMixin = UniPCMultistepScheduler(**SCHEDULER_CONFIG)
        return scheduler

    def _text_encoder_config(self) -> UMT5Config:
        return UMT5Config(**TEXT_ENCODER_CONFIG)

    def _text_encoder_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from _build("text_encoder").state_dict().items()

    def _tokenizer(self) -> Any:
        return ByT5Tokenizer()

    def load_vae(self) -> nn.Module:
        return TinyAutoencoder(AutoencoderConfig(**AUTOENCODER_CONFIG)).to(self.device).eval()


def _transformer_config() -> dict[str, Any]:
    with torch.device("meta"):
        model = WanTransformer3DModel(**TRANSFORMER_CONFIG)
    return dict(model.config)


def write_diffusers_folder(path: Path) -> None:
    """Save the tiny base in the diffusers layout, as a stand-in for a real Wan folder.

    Its VAE is a small random ``AutoencoderKLWan`` in place of the weight-free autoencoder, so
    loading the folder exercises the real Wan VAE (its renders are noise). Sharded small, so
    loading it exercises the multi-shard streaming path.
    """
    pipeline = WanPipeline(
        tokenizer=ByT5Tokenizer(),
        text_encoder=_build("text_encoder"),
        vae=_build("vae"),
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG),
        transformer=_build("transformer"),
    )
    pipeline.save_pretrained(path, max_shard_size="400KB")
