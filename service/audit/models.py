from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base


class AuditEntry(Base):
    """One action: who (member or key, address, request) did what to which object in which tenant.

    Append-only: nothing updates or deletes these rows but a tenant's deletion, which takes its
    tenant's entries with it. So ``tenant_id`` is a plain column, not a ``TenantScoped`` foreign
    key: platform actions (a plan's change, a tenant's deletion) belong to no tenant, and a
    tenant's deletion is recorded without one, so that it outlives the tenant. The actor's ids
    carry no foreign key either: the log keeps naming users and keys that are gone, and ``actor``
    keeps the email (and key prefix) they had. ``created_at`` is when it happened.
    """

    __tablename__ = "audit_entry"
    # A tenant's log, newest first, is one index range (ids are time-ordered UUIDv7s).
    __table_args__ = (Index("ix_audit_entry_tenant_id_id", "tenant_id", "id"),)

    tenant_id: Mapped[UUID | None] = mapped_column(default=None)
    actor_user_id: Mapped[UUID | None] = mapped_column(default=None)
    actor_key_id: Mapped[UUID | None] = mapped_column(default=None)
    actor: Mapped[str | None] = mapped_column(String(400), default=None)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Dotted, the object's kind first: ``api_key.created``, ``sign_in.failed``, ``admin.tenant.status_set``.
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str | None] = mapped_column(String(40), default=None)
    object_id: Mapped[UUID | None] = mapped_column(default=None)
    # A few of the object's fields (never a secret): what a change set, what a deleted row was called.
    detail: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
