from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator

from service.schemas import INT32_MAX, Input, Output

BlockedTerm = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Limit = Annotated[int | None, Field(ge=1, le=INT32_MAX)]


class Guardrails(Input):
    """What generation requests on a model may ask for, set by the tenant's owners.

    A prompt holding a blocked term (any case, as a whole word or phrase) is refused, and so
    is a request over any limit; no limit (null) leaves the platform's own.
    ``memorisation_policy`` says what happens to a generation whose frames nearly copy the
    model's training footage: ``record`` keeps it and records the verdict, ``block`` withholds
    it (docs/memorisation.md).
    """

    blocked_terms: list[BlockedTerm] = Field(default=[], max_length=200)
    max_width: Limit = None
    max_height: Limit = None
    max_frames: Limit = None
    max_steps: Limit = None
    memorisation_policy: Literal["record", "block"] = "record"

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


class LookValues(Output):
    """One property of the look in the base's renders, the version's (same prompts and seeds)
    and the footage's; None where it cannot be measured (flicker of single frames)."""

    base: float | None
    version: float | None
    footage: float | None


class LookMetrics(Output):
    """The look as a colourist reads it, in CIE L*a*b*: the mean cast (``a``: green to red,
    ``b``: blue to yellow), ``colourfulness`` (RMS chroma), ``lightness`` (median L*),
    ``contrast`` (L* deviation), ``grain`` (noise deviation, L*), ``sharpness`` (contrast of
    the strongest edges, L* per pixel) and ``flicker`` (frame-to-frame change of mean L*)."""

    a: LookValues
    b: LookValues
    colourfulness: LookValues
    lightness: LookValues
    contrast: LookValues
    grain: LookValues
    sharpness: LookValues
    flicker: LookValues


class LookDistance(Output):
    """How far a set of renders is from the footage's look: colour (ΔE*ab), tone (L*), grain
    (L*), sharpness (|ln| of the ratio), flicker (L* per frame), and ``total``, each over the
    difference at which it is plainly visible and summed."""

    colour: float
    tone: float
    grain: float
    sharpness: float
    flicker: float
    total: float


class LookDistances(Output):
    base: LookDistance
    version: LookDistance


class LookRenders(Output):
    """What was rendered: ``count`` clips each with the base and with the version, from
    ``prompts`` validation prompts with these seeds, at this size and these settings."""

    count: int
    prompts: int
    seeds: list[int]
    frames: int
    height: int
    width: int
    steps: int
    guidance: float


class VersionLook(Output):
    """What the fine-tune did to the look, measured after training (docs/trainer.md).

    ``moved`` is false when the version's renders came less than ``threshold`` (a fraction)
    closer to the footage's look than the base's: the adapter did not learn the look.
    ``reduction`` is the fraction of the base's distance the version closed. When
    ``measured`` is false, ``reason`` says why and nothing else is set.
    """

    measured: bool
    reason: str | None = None
    moved: bool | None = None
    threshold: float | None = None
    reduction: float | None = None
    metrics: LookMetrics | None = None
    distance: LookDistances | None = None
    renders: LookRenders | None = None
    footage_clips: int | None = None
    seconds: float | None = None


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
    # None: not measured (made before look metrics, or the deployment turned them off).
    look: VersionLook | None
    created_at: datetime
