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

from trainer.models._untyped import (
    AutoencoderKLWan,
    UMT5EncoderModel,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from trainer.models.registry import TextEncoder, register
from trainer.models.wan import WanSpecification

TRANSFORMER_CONFIG: dict[str, Any] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 32,
}
VAE_CONFIG: dict[str, Any] = {
    "base_dim": 4,
    "z_dim": 16,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}
TEXT_ENCODER_CONFIG: dict[str, Any] = {
    "vocab_size": 384,  # ByT5: 256 bytes, 3 specials, 125 sentinels
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 16,
    "dropout_rate": 0.0,
}
SCHEDULER_CONFIG: dict[str, Any] = {
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "num_train_timesteps": 1000,
    "flow_shift": 3.0,
}
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
    max_sequence_length = 32

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
