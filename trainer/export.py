"""The deliverable: one diffusers-loadable ``.safetensors``, its LoRA config, and a training record.

``adapter.safetensors`` holds peft keys under ``transformer.`` (the layout
``WanPipeline.load_lora_weights`` reads) and, in its header, the LoRA config under
``lora_adapter_metadata`` exactly as diffusers' own ``save_lora_weights`` writes it, so the
stock loader applies the trained alpha rather than guessing ``alpha = rank``.
``adapter_config.json`` repeats the config for people and tools that do not read headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import safetensors.torch
import torch

from core.storage.base import ObjectStorage
from core.storage.keys import ADAPTER_CONFIG_FILE, ADAPTER_FILE, TRAINING_RECORD_FILE

RECORD_FORMAT = 1
# diffusers.loaders.lora_base.LORA_ADAPTER_METADATA_KEY
_METADATA_KEY = "lora_adapter_metadata"


@dataclass(frozen=True)
class LoraLayout:
    rank: int
    alpha: float
    targets: tuple[str, ...]
    dropout: float = 0.0

    def peft_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``peft.LoraConfig``, shared by training and the export header."""
        return {
            "r": self.rank,
            "lora_alpha": self.alpha,
            "target_modules": list(self.targets),
            "lora_dropout": self.dropout,
            "init_lora_weights": True,
            "bias": "none",
        }


@dataclass(frozen=True)
class ExportedAdapter:
    adapter_key: str
    config_key: str
    record_key: str


def adapter_bytes(
    state_dict: dict[str, torch.Tensor],
    lora: LoraLayout,
    *,
    component: str = "transformer",
    extra: dict[str, str],
) -> bytes:
    metadata = {f"{component}.{key}": value for key, value in lora.peft_kwargs().items()}
    header = {"format": "pt", _METADATA_KEY: json.dumps(metadata, indent=2, sort_keys=True), **extra}
    return safetensors.torch.save(state_dict, metadata=header)


def export(
    storage: ObjectStorage,
    prefix: str,
    *,
    state_dict: dict[str, torch.Tensor],
    lora: LoraLayout,
    base_id: str,
    family: str,
    record: dict[str, Any],
) -> ExportedAdapter:
    """Write the three files; the record is written last so its presence means the export is whole."""
    keys = ExportedAdapter(
        f"{prefix}{ADAPTER_FILE}", f"{prefix}{ADAPTER_CONFIG_FILE}", f"{prefix}{TRAINING_RECORD_FILE}"
    )
    extra = {"rushes.base": base_id, "rushes.architecture": family}
    storage.put_bytes(keys.adapter_key, adapter_bytes(state_dict, lora, extra=extra))
    config = {
        "format": "diffusers-lora",
        "component": "transformer",
        "base": base_id,
        "architecture": family,
        "rank": lora.rank,
        "alpha": lora.alpha,
        "targets": list(lora.targets),
        "peft": lora.peft_kwargs(),
    }
    storage.put_bytes(keys.config_key, json.dumps(config, indent=2).encode(), "application/json")
    storage.put_bytes(
        keys.record_key,
        json.dumps({"format": RECORD_FORMAT, **record}, indent=2, default=str).encode(),
        "application/json",
    )
    return keys
