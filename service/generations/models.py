from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.work.lease import Leased
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


class Generation(Leased, EventSource, Base):
    """One requested video: its settings, resolved in full when it was made, and (from ``Leased``)
    its status, lease and progress in denoising steps."""

    default_max_attempts = 2

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
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    # The outputs' total size, once it succeeded.
    output_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The memorisation check's verdict once rendered (``service.generations.memorisation``);
    # None for generations that never rendered, or finished before the check existed.
    memorisation: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)


class GenerationEvent(EventRecord, Base):
    __tablename__ = "generation_event"
    __table_args__ = (UniqueConstraint("generation_id", "seq"),)

    generation_id: Mapped[UUID] = mapped_column(ForeignKey("generation.id", ondelete="CASCADE"), index=True)
