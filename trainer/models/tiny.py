"""``tiny``: a Wan 2.1-architecture base small enough for tests and the embedded default.

Every component is built from a config with seeded random weights, so it needs no files and
is the same on every machine. It exercises every code path of the real base: streaming
quantised load, UMT5 prompt encoding (with ByT5's file-free byte tokenizer), the causal 3D VAE
and the UniPC flow sampler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from torch import nn
from transformers import ByT5Tokenizer, UMT5Config

from core.bases.tiny import (
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
from trainer.models.registry import TextEncoder, register
from trainer.models.wan import WanSpecification

# One seed per component, so building one never shifts another's weights.
_SEEDS = {"transformer": 1, "vae": 2, "text_encoder": 3}


def _build(component: str) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_SEEDS[component])
        model: nn.Module
        if component == "transformer":
            model = WanTransformer3DModel(**TRANSFORMER_CONFIG)
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

    def load_text_encoder(self) -> TextEncoder:
        model = _build("text_encoder").to(device=self.device, dtype=self.dtype)
        return TextEncoder(tokenizer=ByT5Tokenizer(), model=model)

    def load_vae(self) -> nn.Module:
        return _build("vae").to(self.device)


def _transformer_config() -> dict[str, Any]:
    with torch.device("meta"):
        model = WanTransformer3DModel(**TRANSFORMER_CONFIG)
    return dict(model.config)


def write_diffusers_folder(path: Path) -> None:
    """Save the tiny base in the diffusers layout, as a stand-in for a real Wan folder.

    Sharded small, so loading it exercises the multi-shard streaming path.
    """
    pipeline = WanPipeline(
        tokenizer=ByT5Tokenizer(),
        text_encoder=_build("text_encoder"),
        vae=_build("vae"),
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG),
        transformer=_build("transformer"),
    )
    pipeline.save_pretrained(path, max_shard_size="40KB")
