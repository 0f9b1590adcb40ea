"""Mixins for a row whose changes are logged as numbered events, and for its event table.

The columns are declared once here; each domain adds its table names and its foreign key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import TenantScoped

if TYPE_CHECKING:
    from datetime import datetime

    from core.work.status import WorkStatus


class EventSource(TenantScoped):
    """A tenant's row that numbers its own events: ``event_count`` is the last number handed out."""

    event_count: Mapped[int] = mapped_column(Integer, default=0)

    if TYPE_CHECKING:
        # Declared by the concrete classes (and ``Base``); named here for the type checker only.
        id: Mapped[UUID]
        status: Mapped[WorkStatus]
        step: Mapped[int]
        cancel_requested: Mapped[bool]


class EventRecord(TenantScoped):
    """One thing that happened to a source (tenant-owned like it); ``seq`` orders a source's events
    and is the SSE id."""

    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JsonB)

    if TYPE_CHECKING:
        id: Mapped[UUID]
        created_at: Mapped[datetime]

        def __init__(self, **values: Any) -> None: ...
