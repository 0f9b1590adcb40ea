"""What the caller says a dataset version is made of."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.errors import TrainerInputError
from trainer.storage import AssetSource


@dataclass(frozen=True)
class TrainingAsset:
    key: str  # where the footage lies in the dataset's source
    sha256: str  # of the footage bytes, as the service verified them at upload
    rights: dict[str, Any]  # the tenant's rights attestation, copied verbatim into the training record
    caption: str | None = None
    asset_id: str | None = None


@dataclass(frozen=True)
class TrainingDataset:
    version: str  # the dataset version id; the latent cache belongs to it
    assets: Sequence[TrainingAsset]
    source: AssetSource = field(repr=False)

    def __post_init__(self) -> None:
        if not self.assets:
            raise TrainerInputError("the dataset has no assets")


def compose_caption(caption: str | None, trigger_word: str | None, name: str) -> str:
    """The asset's caption with the trigger word leading it, or the trigger word alone."""
    text = (caption or "").strip()
    if not text:
        if trigger_word is None:
            raise TrainerInputError(f"{name} has no caption and no trigger word was given")
        return trigger_word
    if trigger_word and trigger_word not in text:
        return f"{trigger_word}, {text}"
    return text
