from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from core.storage.keys import OUTPUT_MEDIA_TYPES
from core.work.status import WorkStatus
from service.events.schemas import EventOut
from service.schemas import INT32_MAX, Input, Output

API_PATH = "/v1/generations"


def output_paths(generation_id: UUID) -> dict[str, str]:
    """Where the API serves each output of a succeeded generation."""
    return {name: f"{API_PATH}/{generation_id}/outputs/{name}" for name in OUTPUT_MEDIA_TYPES}


class GenerationCreate(Input):
    """What to render. Settings left out take the base's defaults; a seed left out is drawn at random."""

    model_id: UUID
    version: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="The model's version number; its latest by default."
    )
    prompt: str = Field(min_length=1, max_length=2000)
    negative_prompt: str = Field(default="", max_length=2000)
    width: int | None = Field(default=None, ge=16, le=INT32_MAX, description="Pixels; a multiple of 16.")
    height: int | None = Field(default=None, ge=16, le=INT32_MAX, description="Pixels; a multiple of 16.")
    frames: int | None = Field(default=None, ge=1, le=INT32_MAX, description="1 + a multiple of 4.")
    steps: int | None = Field(default=None, ge=1, le=INT32_MAX, description="Denoising steps.")
    guidance: float | None = Field(
        default=None, ge=1.0, le=20.0, description="Classifier-free guidance scale; 1 turns it off."
    )
    seed: int | None = Field(default=None, ge=0, le=INT32_MAX)
    adapter_strength: float = Field(
        default=1.0, ge=0.0, le=2.0, description="How strongly the model's adapter applies."
    )


class Memorisation(Output):
    """Whether the output nearly copies a frame of the model's training footage
    (docs/memorisation.md): the nearest pair of sampled frames, PDQ hashes ``closest_distance``
    bits apart of 256, is a near copy at ``threshold`` or less. ``frame`` is the output's
    frame, ``asset_id`` and ``asset_seconds`` the footage's; all null when nothing was
    comparable (flat frames, or footage that could not be read). ``policy`` is the model's
    at the time: with ``block`` a near copy was withheld."""

    verdict: Literal["clear", "near_copy"]
    closest_distance: int | None
    threshold: int
    asset_id: UUID | None
    asset_seconds: float | None
    frame: int | None
    frames_checked: int
    training_frames: int
    policy: Literal["record", "block"]


class GenerationOut(Output):
    id: UUID
    status: WorkStatus
    model_id: UUID | None
    model_version_id: UUID | None
    version: int | None = Field(description="The model version it renders with; null once that is deleted.")
    base_id: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    frames: int
    steps: int
    guidance: float
    seed: int
    adapter_strength: float
    step: int
    attempts: int
    max_attempts: int
    cancel_requested: bool
    gpu_seconds: float
    failure_reason: str | None
    output_bytes: int | None
    memorisation: Memorisation | None = Field(
        description="The memorisation check's verdict once rendered; null before, and for "
        "generations made before the check existed."
    )
    outputs: dict[str, str] | None = Field(description="Output name → download path, once it succeeded.")
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class GenerationEventOut(EventOut):
    """One thing that happened to a generation; ``seq`` is its number within the generation."""
