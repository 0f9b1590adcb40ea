from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from service.schemas import Input, Output


class ModelOut(Output):
    id: UUID
    name: str
    description: str
    base_id: str
    version_count: int
    created_at: datetime
    updated_at: datetime


class ModelUpdate(Input):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=10_000)


class ModelVersionOut(Output):
    id: UUID
    model_id: UUID
    number: int
    job_id: UUID
    dataset_version_id: UUID
    base_id: str
    trigger_word: str | None
    config: dict[str, Any]
    adapter_sha256: str
    adapter_bytes: int
    steps: int
    final_loss: float | None
    created_at: datetime
