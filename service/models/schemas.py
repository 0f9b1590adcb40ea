from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from service.schemas import INT32_MAX, Input, Output

BlockedTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Limit = Annotated[int | None, Field(ge=1, le=INT32_MAX)]


class Guardrails(Input):
    """What generation requests on a model may ask for, set by the tenant's owners.

    A prompt holding a blocked term (any case, as a whole word or phrase) is refused, and so
    is a request over any limit; no limit (null) leaves the platform's own.
    """

    blocked_terms: list[BlockedTerm] = Field(default=[], max_length=200)
    max_width: Limit = None
    max_height: Limit = None
    max_frames: Limit = None
    max_steps: Limit = None

    @field_validator("blocked_terms")
    @classmethod
    def _distinct(cls, terms: list[str]) -> list[str]:
        # Matching ignores case, so terms that differ only in case are one term.
        distinct: dict[str, str] = {}
        for term in terms:
            distinct.setdefault(term.casefold(), term)
        return list(distinct.values())


class ModelOut(Output):
    id: UUID
    name: str
    description: str
    base_id: str
    version_count: int
    guardrails: Guardrails
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
