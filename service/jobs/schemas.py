from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from core.bases.quantization import Quantization
from core.training import BOUNDS, LR_SCHEDULERS, MAX_VALIDATION_PROMPTS
from core.work.status import WorkStatus
from service.events.schemas import EventOut
from service.schemas import INT32_MAX, Input, Output


class Preset(enum.StrEnum):
    QUICK = "quick"
    STANDARD = "standard"
    THOROUGH = "thorough"


def _setting(name: str) -> Any:
    """An optional setting whose range ``core.training`` owns: stated here for the OpenAPI
    document only, checked once when the job's ``TrainConfig`` is built (422 naming the rule)."""
    return Field(default=None, json_schema_extra=BOUNDS[name].json_schema())


class Hyperparameters(Input):
    """Explicit settings; each one given replaces the preset's.

    Types are checked here (400); ranges and the rules between settings are the training
    configuration's (``core.training``), so an impossible value is a 422 that names its rule.
    """

    steps: int | None = _setting("steps")
    learning_rate: float | None = _setting("learning_rate")
    lr_scheduler: str | None = Field(default=None, json_schema_extra={"enum": [*LR_SCHEDULERS, None]})
    lr_warmup_steps: int | None = _setting("lr_warmup_steps")
    batch_size: int | None = _setting("batch_size")
    rank: int | None = _setting("rank")
    alpha: float | None = _setting("alpha")
    quantization: Quantization | None = None
    height: int | None = _setting("height")
    width: int | None = _setting("width")
    frames: int | None = _setting("frames")
    seed: int | None = _setting("seed")
    checkpoint_every: int | None = _setting("checkpoint_every")
    validation_every: int | None = _setting("validation_every")
    validation_prompts: list[str] | None = Field(
        default=None, json_schema_extra={"maxItems": MAX_VALIDATION_PROMPTS}
    )


class FineTuneCreate(Input):
    dataset_id: UUID
    dataset_version: int = Field(ge=1, le=INT32_MAX, description="The version number within the dataset.")
    base: str = Field(min_length=1, max_length=64, description="A base id from GET /v1/bases.")
    preset: Preset = Preset.STANDARD
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
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
    gpu_seconds: float = Field(description="Measured device time, across every attempt.")
    waived_gpu_seconds: float = Field(
        description=(
            "Of gpu_seconds, those not charged: when a run fails by the platform's fault (an "
            "internal error or running out of memory), every second charged to it so far is waived."
        )
    )
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
