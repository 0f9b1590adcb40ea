from __future__ import annotations

from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


class Base(UUIDv7AuditBase):
    """Every table: a UUIDv7 id (time-ordered, so indexes stay compact) and created/updated times."""

    __abstract__ = True


class TenantScoped:
    """Marks a row as owned by one tenant.

    Rows of these classes are reached only through ``service.db.tenancy``: every ORM
    query on them is filtered by the session's tenant, and new rows are stamped with it.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[UUID]:
        return mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True, nullable=False)
