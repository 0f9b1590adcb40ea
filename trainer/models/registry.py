"""One specification class per base architecture, looked up by name.

A specification knows how to load an architecture's condition models (text encoder), latent
model (VAE) and denoiser (transformer), how to noise latents and compute its loss, how to
sample, and how its LoRA is laid out for export. The training loop only talks to this
interface, so adding an architecture is one new module that calls ``register``.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from core.bases.architecture import TransformerDims
from core.bases.quantization import Quantization
from trainer.errors import TrainerInputError


@dataclass
class TextEncoder:
    tokenizer: Any
    model: nn.Module


@dataclass(frozen=True)
class NoisedBatch:
    """What one training step feeds the denoiser, and what it should predict."""

    noisy_latents: torch.Tensor
    timesteps: torch.Tensor
    target: torch.Tensor
    sigmas: torch.Tensor


class ModelSpecification(abc.ABC):
    """The contract between the trainer and one base architecture."""

    name: ClassVar[str]  # registry key: an architecture, or a built-in base such as "tiny"
    family: ClassVar[str]  # the weights' architecture, recorded beside exported adapters
    default_lora_targets: ClassVar[tuple[str, ...]]
    # VAE compression and transformer patching: the frame count must be 1 + k * temporal
    # and each side a multiple of ``spatial_multiple``.
    temporal_factor: ClassVar[int]
    spatial_multiple: ClassVar[int]

    def __init__(self, base: str, *, device: torch.device, dtype: torch.dtype) -> None:
        self.base = base
        self.device = device
        self.dtype = dtype

    @property
    def base_id(self) -> str:
        return self.base

    # Condition models
    @abc.abstractmethod
    def load_text_encoder(self, quantization: Quantization = Quantization.BF16) -> TextEncoder:
        """The condition model, its linears stored as a run's base is (unquantised for bf16 or
        fp32, in the compute dtype either way), so caching costs no more than training."""

    @abc.abstractmethod
    def encode_prompts(self, encoder: TextEncoder, prompts: Sequence[str]) -> list[torch.Tensor]:
        """One ``[tokens, text_dim]`` float32 tensor per prompt, padding removed."""

    @abc.abstractmethod
    def batch_prompt_embeds(self, embeds: Sequence[torch.Tensor]) -> torch.Tensor:
        """Pad cached embeddings back to the shape the denoiser was trained with."""

    # Latent model
    @abc.abstractmethod
    def load_vae(self) -> nn.Module: ...

    @abc.abstractmethod
    def encode_video(self, vae: nn.Module, video: torch.Tensor) -> torch.Tensor:
        """``[3, frames, h, w]`` in [-1, 1] to normalised latents ``[c, f, h', w']``."""

    @abc.abstractmethod
    def decode_latents(self, vae: nn.Module, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents ``[b, c, f, h', w']`` to frames ``[b, f, h, w, 3]`` in [0, 1]."""

    # Denoiser
    @abc.abstractmethod
    def transformer_dims(self) -> TransformerDims: ...

    @abc.abstractmethod
    def load_transformer(self, quantization: Quantization) -> nn.Module:
        """The frozen base denoiser, quantised while it loads."""

    @abc.abstractmethod
    def prepare_latents(
        self, latents: torch.Tensor, generator: torch.Generator, *, flow_shift: float, timestep_sampling: str
    ) -> NoisedBatch: ...

    @abc.abstractmethod
    def forward(
        self,
        transformer: nn.Module,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        prompt_embeds: torch.Tensor,
    ) -> torch.Tensor: ...

    @abc.abstractmethod
    def loss(self, prediction: torch.Tensor, batch: NoisedBatch) -> torch.Tensor: ...

    @abc.abstractmethod
    def sample(
        self,
        transformer: nn.Module,
        vae: nn.Module,
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor | None,
        *,
        noise: torch.Tensor,
        steps: int,
        guidance: float | torch.Tensor,
        on_step: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Frames ``[b, f, h, w, 3]`` in [0, 1] from ``initial_noise``, with whatever adapter is active.

        ``guidance`` is one scale or one per sample; classifier-free guidance runs only when
        ``negative_embeds`` is given. ``on_step(i)`` is called after each denoising step and
        may raise to stop.
        """

    def initial_noise(
        self, generators: Sequence[torch.Generator], *, frames: int, height: int, width: int
    ) -> torch.Tensor:
        """One latent of noise per generator, drawn on the CPU so a seed gives the same video anywhere.

        Each sample draws from its own generator, so a request renders the same in any batch.
        """
        shape = self.latent_shape(frames, height, width)
        noise = [torch.randn((1, *shape), generator=g, dtype=torch.float32) for g in generators]
        return torch.cat(noise).to(self.device)

    @abc.abstractmethod
    def export_lora_state_dict(self, peft_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The adapter in the key layout the architecture's stock pipeline loads."""

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        dims = self.transformer_dims()
        vae_spatial = self.spatial_multiple // dims.patch_size[1]
        return (
            dims.in_channels,
            (frames - 1) // self.temporal_factor + 1,
            height // vae_spatial,
            width // vae_spatial,
        )


SpecT = TypeVar("SpecT", bound=type[ModelSpecification])
_REGISTRY: dict[str, type[ModelSpecification]] = {}
# diffusers pipeline class names found in a base folder's model_index.json
_PIPELINES: dict[str, str] = {}


def register(*, pipeline_class: str | None = None) -> Callable[[SpecT], SpecT]:
    def decorator(cls: SpecT) -> SpecT:
        _REGISTRY[cls.name] = cls
        if pipeline_class is not None:
            _PIPELINES[pipeline_class] = cls.name
        return cls

    return decorator


def architectures() -> list[str]:
    return sorted(_REGISTRY)


def get_specification(architecture: str) -> type[ModelSpecification]:
    try:
        return _REGISTRY[architecture]
    except KeyError:
        raise TrainerInputError(
            f"unknown base architecture {architecture!r}; known: {', '.join(architectures())}"
        ) from None


def detect_architecture(folder: Path) -> str:
    """The architecture of a diffusers-layout base folder, from its ``model_index.json``."""
    index = folder / "model_index.json"
    if not index.is_file():
        raise TrainerInputError(f"{folder} is not a diffusers model folder (no model_index.json)")
    try:
        pipeline_class = json.loads(index.read_text())["_class_name"]
    except (ValueError, KeyError) as exc:
        raise TrainerInputError(f"{index} is not a valid model index") from exc
    try:
        return _PIPELINES[pipeline_class]
    except KeyError:
        raise TrainerInputError(
            f"{folder} holds a {pipeline_class}, which the trainer does not support"
        ) from None


def load_specification(
    base: str, *, device: torch.device, dtype: torch.dtype, architecture: str | None = None
) -> ModelSpecification:
    """A specification for ``base``: a registered built-in name (``tiny``) or a local folder."""
    if base in _REGISTRY and architecture is None:
        return _REGISTRY[base](base, device=device, dtype=dtype)
    folder = Path(base)
    if not folder.is_dir():
        raise TrainerInputError(
            f"base {base!r} is neither a built-in base ({', '.join(architectures())}) nor a folder"
        )
    name = architecture or detect_architecture(folder)
    return get_specification(name)(str(folder), device=device, dtype=dtype)
