"""The bases a deployment offers, by id, read from their config files at start-up.

``tiny`` is built in (tests and laptops); real bases are local diffusers folders named in
settings. Only configs and safetensors headers are read, never weights, so the API can
plan jobs on machines that do not hold the models.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.bases.architecture import (
    WAN_TEXT_TOKENS,
    UnsupportedArchitecture,
    umt5_encoder_dims,
    wan_transformer_dims,
)
from core.bases.memory import BaseDims
from core.bases.tiny import (
    TEXT_ENCODER_CONFIG,
    TINY_TEXT_TOKENS,
    TRANSFORMER_CONFIG,
    VAE_CONFIG,
    VAE_PARAMS,
)
from core.errors import Invalid
from core.settings import BasesSettings

TINY = "tiny"
WAN21 = "wan2.1"
_PIPELINES = {"WanPipeline": WAN21}


class BaseFolderError(RuntimeError):
    """A configured base folder that cannot be used; the server refuses to start."""


@dataclass(frozen=True)
class GenerationDefaults:
    """What a generation request on a base renders when it names no value of its own."""

    width: int
    height: int
    frames: int
    steps: int
    guidance: float


# Wan 2.1's 480p shape and guidance, with steps that keep a render affordable; the tiny base
# renders a few frames in moments on a CPU.
WAN_GENERATION = GenerationDefaults(width=832, height=480, frames=81, steps=30, guidance=5.0)
TINY_GENERATION = GenerationDefaults(width=64, height=64, frames=9, steps=8, guidance=5.0)


@dataclass(frozen=True)
class BaseEntry:
    id: str
    family: str
    source: str  # what the trainer loads: a built-in name or a folder
    dims: BaseDims
    generation: GenerationDefaults

    @property
    def parameters(self) -> int:
        t = self.dims.transformer
        return t.block_linear_params + t.other_params


class Catalogue:
    def __init__(self, entries: list[BaseEntry]) -> None:
        self._entries = {entry.id: entry for entry in entries}

    def __iter__(self) -> Iterator[BaseEntry]:
        return iter(self._entries.values())

    def get(self, base_id: str) -> BaseEntry:
        try:
            return self._entries[base_id]
        except KeyError:
            offered = ", ".join(sorted(self._entries)) or "none"
            raise Invalid(f"Unknown base {base_id!r}; this deployment offers: {offered}.") from None


def tiny_entry() -> BaseEntry:
    dims = BaseDims(
        transformer=wan_transformer_dims(TRANSFORMER_CONFIG, text_tokens=TINY_TEXT_TOKENS),
        text_encoder=umt5_encoder_dims(TEXT_ENCODER_CONFIG),
        vae_params=VAE_PARAMS,
        vae_base_dim=VAE_CONFIG["base_dim"],
    )
    return BaseEntry(id=TINY, family=WAN21, source=TINY, dims=dims, generation=TINY_GENERATION)


def folder_entry(base_id: str, folder: Path) -> BaseEntry:
    try:
        pipeline = _json(folder / "model_index.json")["_class_name"]
        family = _PIPELINES.get(pipeline)
        if family is None:
            raise BaseFolderError(f"base {base_id!r}: {folder} holds a {pipeline}, which is not supported")
        vae_config = _json(folder / "vae" / "config.json")
        dims = BaseDims(
            transformer=wan_transformer_dims(
                _json(folder / "transformer" / "config.json"), text_tokens=WAN_TEXT_TOKENS
            ),
            text_encoder=umt5_encoder_dims(_json(folder / "text_encoder" / "config.json")),
            vae_params=_safetensors_parameters(folder / "vae"),
            vae_base_dim=int(vae_config.get("base_dim", 96)),
        )
    except (OSError, KeyError, ValueError, UnsupportedArchitecture) as exc:
        raise BaseFolderError(f"base {base_id!r} at {folder} cannot be used: {exc}") from exc
    return BaseEntry(id=base_id, family=family, source=str(folder), dims=dims, generation=WAN_GENERATION)


def load_catalogue(settings: BasesSettings) -> Catalogue:
    entries = [tiny_entry()] if settings.tiny else []
    entries += [folder_entry(base_id, folder) for base_id, folder in sorted(settings.folders.items())]
    return Catalogue(entries)


def _json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _safetensors_parameters(folder: Path) -> int:
    """Elements of every tensor in a folder's safetensors files, from their headers alone."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"{folder} holds no safetensors weights")
    total = 0
    for file in files:
        with file.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, tensor in header.items():
            if name != "__metadata__":
                total += math.prod(tensor["shape"])
    return total
