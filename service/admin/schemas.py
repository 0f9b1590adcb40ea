from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from service.accounts.models import TenantStatus
from service.schemas import INT32_MAX, Input, Output


class TenantSummary(Output):
    id: UUID
    name: str
    status: TenantStatus
    created_at: datetime
    members: int
    assets: int
    storage_bytes: int


class TenantStatusUpdate(Input):
    status: TenantStatus


class UserOut(Output):
    id: UUID
    email: str
    is_platform_admin: bool
    created_at: datetime


class TenantComputeWrite(Input):
    """A tenant's share of the GPUs: fair-share weight (its plan) and a cap on jobs at once."""

    weight: float = Field(gt=0, le=1000, description="Twice the weight, half the recent GPU time counted.")
    concurrency_cap: int | None = Field(
        default=None, ge=0, le=INT32_MAX, description="None: no cap; 0 holds its jobs."
    )


class TenantComputeOut(Output):
    tenant_id: UUID
    weight: float
    concurrency_cap: int | None
    recent_gpu_seconds: float = Field(description="Decayed GPU-seconds as of the last charge.")
