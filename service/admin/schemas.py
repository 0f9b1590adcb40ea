from __future__ import annotations

from datetime import datetime
from uuid import UUID

from service.accounts.models import TenantStatus
from service.schemas import Input, Output


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
