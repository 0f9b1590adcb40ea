from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from service.accounts.models import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and on behalf of which tenant."""

    user_id: UUID
    tenant_id: UUID
    role: Role
    is_platform_admin: bool
    api_key_id: UUID | None = None

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER
