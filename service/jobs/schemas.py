from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from core.bases.quantization import Quantization
from core.work.status import WorkStatus
from service.events.schemas import EventOut
from service.schemas import Input, Output


class Preset(enum.StrEnum):
    QUICK = "quick"
    STANDARD = "standard"
    THOROUGH = "thorough"


class Hyperparameters(Input):
    """Explicit settings; each one given replaces the preset's."""

    steps: int | None = Field(default=None, ge=1, le=100_000)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] | None = None
    lr_warmup_steps: int | None = Field(default=None, ge=0)
    batch_size: int | None = Field(default=None, ge=1, le=16)
    rank: int | None = Field(default=None, ge=1, le=256)
    alpha: float | None = Field(default=None, gt=0, le=1024)
    quantization: Quantization | None = None
    height: int | None = Field(default=None, ge=16, le=2048)
    width: int | None = Field(default=None, ge=16, le=2048)
    frames: int | None = Field(default=None, ge=1, le=257)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    checkpoint_every: int | None = Field(default=None, ge=1)
    validation_every: int | None = Field(default=None, ge=0)
    validation_prompts: list[str] | None = Field(default=None, max_length=4)


class FineTuneCreate(Input):
    dataset_id: UUID
    dataset_version: int = Field(ge=1, description="The version number within the dataset.")
    base: str = Field(min_length=1, max_length=64, description="A base id from GET /v1/bases.")
    preset: Preset = Preset.STANDARD
    hyperparameters: Hyperparameters = Hyperparameters()
    model_id: UUID | None = Field(default=None, description="Add a version to this model.")
    model_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="A new model's name; by default the dataset's name and version.",
    )


class FineTuneOut(Output):
    id: UUID
    status: WorkStatus
    dataset_version_id: UUID
    base_id: str
    model_id: UUID | None
    model_version: int | None = Field(description="The version this job made, once it succeeded.")
    config: dict[str, Any]
    step: int
    total_steps: int
    attempts: int
    max_attempts: int
    cancel_requested: bool
    gpu_seconds: float
    estimated_bytes: int
    failure_reason: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime


class JobEventOut(EventOut):
    """One thing that happened to a fine-tune; ``seq`` is its number within the job."""


class BaseOut(Output):
    id: str
    family: str
    parameters: int


class SampleOut(Output):
    step: int
    index: int
    size: int
