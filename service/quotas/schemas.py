from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from service.accounts.models import TenantStatus
from service.quotas.limits import Quota
from service.schemas import INT64_MAX, Input, Output

Limit = int | None
_LIMIT = Field(default=None, ge=0, le=INT64_MAX, description="None: unlimited.")


class PlanLimits(Input):
    gpu_seconds_per_month: Limit = Field(
        default=None, ge=0, le=INT64_MAX, description="GPU seconds included each UTC month. None: unlimited."
    )
    storage_bytes: Limit = Field(
        default=None, ge=0, le=INT64_MAX, description="Footage, adapters and outputs stored. None: unlimited."
    )
    models: Limit = _LIMIT
    concurrent_fine_tunes: Limit = Field(
        default=None,
        ge=0,
        le=INT64_MAX,
        description="Fine-tunes running at once; more wait.",
    )
    concurrent_generations: Limit = Field(
        default=None,
        ge=0,
        le=INT64_MAX,
        description="Generations rendering at once; more wait.",
    )
    generations_per_minute: Limit = _LIMIT
    max_upload_bytes: Limit = Field(
        default=None,
        ge=0,
        le=INT64_MAX,
        description="The largest file one upload may declare.",
    )


class PlanWrite(PlanLimits):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    is_default: bool = Field(
        default=False,
        description="The plan of tenants without one of their own; making one default unmakes the last.",
    )
    stripe_price_id: str | None = Field(
        default=None,
        max_length=255,
        pattern=r"^price_[A-Za-z0-9]+$",
        description="The Stripe price of this plan: a tenant whose subscription moves to it gets this plan.",
    )


class PlanOut(Output):
    id: UUID
    name: str
    is_default: bool
    gpu_seconds_per_month: Limit
    storage_bytes: Limit
    models: Limit
    concurrent_fine_tunes: Limit
    concurrent_generations: Limit
    generations_per_minute: Limit
    max_upload_bytes: Limit
    stripe_price_id: str | None
    created_at: datetime


class TenantQuotaWrite(Input):
    """Fields present replace; fields absent stay as they are."""

    plan_id: UUID | None = Field(default=None, description="The tenant's plan; None: the default plan.")
    overrides: dict[Quota, Limit] | None = Field(
        default=None,
        description="Limits replacing the plan's for this tenant (null: unlimited); replaces the whole map.",
    )


class QuotaUse(Output):
    quota: Quota
    limit: Limit = Field(description="None: unlimited.")
    used: float = Field(description="Used now (or this month, or in the last minute, by the quota).")
    remaining: float | None = Field(description="None: unlimited.")
    resets_at: datetime | None = Field(description="When a monthly allowance starts again.")
    when_reached: Literal["refused_402", "refused_413", "refused_429", "queued"] = Field(
        description="What happens to new work once the limit is reached."
    )


class QuotasOut(Output):
    tenant_id: UUID
    status: TenantStatus
    plan: str | None = Field(description="The plan's name; None when no plan exists (all unlimited).")
    overrides: dict[str, Limit]
    quotas: list[QuotaUse]


class QuotaNoticeOut(Output):
    """An allowance reached 80 % (``warning``) or 100 % (``exhausted``) of its limit this month."""

    id: UUID
    type: Literal["warning", "exhausted"]
    quota: Quota
    level: int = Field(description="Percent of the limit: 80 or 100.")
    period: str = Field(description="The month it counts in, e.g. 2026-12.")
    data: dict[str, Any] = Field(description="quota, level, limit, used and (GPU time) resets_at.")
    created_at: datetime
