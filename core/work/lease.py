"""The columns every kind of leased work carries, declared once.

A row of queued work (a fine-tune, a generation, a webhook delivery) is claimed by one worker at a time: the
claim sets ``lease_owner`` and ``lease_expires_at`` and counts an attempt, heartbeats move
the expiry on, and a lease that runs out is ended by the next sweep (``core.work.queue``).
Each kind adds its own table name, its own columns and its indexes; the schema these make
is the one the migrations built for ``fine_tune_job``, ``generation`` and ``webhook_delivery``.
Work that waits between attempts (a delivery's retry backoff) adds ``Deferrable``'s column.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Enum, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from core.work.status import WorkStatus


class Leased:
    """Status, lease, attempts, cancel request, progress, timing and GPU time of one piece of work."""

    # ``max_attempts`` when a row is made without one (the services always name it).
    default_max_attempts: ClassVar[int] = 3

    status: Mapped[WorkStatus] = mapped_column(
        Enum(WorkStatus, native_enum=False, length=16), default=WorkStatus.QUEUED
    )
    # Set by the API; the worker holding the lease stops at its next heartbeat, and a lease
    # that ends any other way (expired, released, abandoned) ends the work cancelled.
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The last step a worker reported.
    step: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts started so far: each claim counts one, a release gives it back, and a lease
    # lost this many times ends the work failed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), default=None, index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # The work's place in its queue; a lease that ends without finishing keeps it.
    queued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @declared_attr
    def max_attempts(cls) -> Mapped[int]:
        return mapped_column(Integer, default=cls.default_max_attempts)

    if TYPE_CHECKING:
        # Declared by the concrete classes' base; named here for the type checker only.
        id: Mapped[UUID]


class Deferrable:
    """Work that may wait before its next attempt: a claim passes over it until ``not_before``.

    Set when the work is queued (due at once: the time it was queued) and by
    ``WorkQueue.retry``, which puts a failed attempt back to wait out its backoff. Kinds
    without it (fine-tunes, generations) are claimable as soon as they are queued.
    """

    not_before: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
