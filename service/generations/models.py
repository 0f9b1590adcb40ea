from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.work.status import WorkStatus
from service.db.base import Base
from service.events.models import EventRecord, EventSource

# Every kind of generation event.
GenerationEventType = Literal[
    "queued",
    "started",
    "progress",
    "succeeded",
    "failed",
    "cancel_requested",
    "cancelled",
    "requeued",
]


class Generation(EventSource, Base):
    """One requested video: its settings, resolved in full when it was made, and its progress."""

    __tablename__ = "generation"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        # Workers read the oldest queued generations of the bases they serve.
        Index("ix_generation_queue", "status", "base_id", "queued_at"),
    )

    # Either may be deleted later with its model; the generation and its outputs stay.
    model_id: Mapped[UUID | None] = mapped_column(ForeignKey("model.id", ondelete="SET NULL"), index=True)
    # Indexed so that deleting a version (SET NULL here) does not scan every generation.
    model_version_id: Mapped[UUID | None] = mapped_column(
        ForeignKey("model_version.id", ondelete="SET NULL"), index=True
    )
    base_id: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    guidance: Mapped[float] = mapped_column(Float)
    # Always stored (drawn when the request names none), so any generation can be rendered again.
    seed: Mapped[int] = mapped_column(Integer)
    adapter_strength: Mapped[float] = mapped_column(Float)
    status: Mapped[WorkStatus] = mapped_column(
        Enum(WorkStatus, native_enum=False, length=16), default=WorkStatus.QUEUED
    )
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # The last denoising step a worker reported.
    step: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts started so far; a lease lost this many times ends the generation.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=2)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), default=None, index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    queued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    # The outputs' total size, once it succeeded.
    output_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)


class GenerationEvent(EventRecord, Base):
    __tablename__ = "generation_event"
    __table_args__ = (UniqueConstraint("generation_id", "seq"),)

    generation_id: Mapped[UUID] = mapped_column(ForeignKey("generation.id", ondelete="CASCADE"), index=True)
