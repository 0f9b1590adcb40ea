from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field

from service.schemas import Output


class AuditEntryOut(Output):
    """One recorded action (``docs/audit.md`` lists them)."""

    id: UUID
    at: datetime = Field(validation_alias="created_at", description="When it happened.")
    tenant_id: UUID | None = Field(description="The tenant acted on; none for platform actions.")
    actor_user_id: UUID | None = Field(
        description="The member who acted (for a sign-in, the account tried); none for an unknown email."
    )
    actor_key_id: UUID | None = Field(description="The API key the member acted with; none for a browser.")
    actor: str | None = Field(description="The actor's email (and key prefix) when it acted.")
    ip: str | None = Field(description="The client's address.")
    request_id: str | None = Field(description="The request's X-Request-ID.")
    action: str = Field(description="What was done: the object's kind, then the verb (`api_key.revoked`).")
    object_type: str | None
    object_id: UUID | None
    detail: dict[str, Any] = Field(description="A few of the object's fields: what a change set.")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a list keeps; each filter left None keeps all."""

    action: str | None = None  # a prefix: ``api_key.`` or ``api_key.revoked``
    actor: UUID | None = None
    object_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    tenant_id: UUID | None = None
