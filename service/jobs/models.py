from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from advanced_alchemy.types import GUID, JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from core.work.lease import Leased
from service.db.base import Base
from service.events.models import EventRecord, EventSource

# Every kind of job event; webhooks subscribe to these names.
JobEventType = Literal[
    "queued",
    "started",
    "progress",
    "checkpoint",
    "sample",
    "succeeded",
    "failed",
    "cancel_requested",
    "cancelled",
    "requeued",
]


class FineTuneJob(Leased, EventSource, Base):
    """A training run: its resolved configuration and, from ``Leased``, its status and lease."""

    __tablename__ = "fine_tune_job"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_fine_tune_job_status", "status"),
    )

    dataset_version_id: Mapped[UUID] = mapped_column(
        ForeignKey("dataset_version.id", ondelete="RESTRICT"), index=True
    )
    base_id: Mapped[str] = mapped_column(String(64))
    # The model the run adds a version to, and that version's id, fixed up front so that
    # every attempt exports to the same keys.
    model_id: Mapped[UUID | None] = mapped_column(ForeignKey("model.id", ondelete="SET NULL"), index=True)
    model_version_id: Mapped[UUID] = mapped_column(GUID, default=uuid7)
    # The trainer's configuration, resolved from a preset and overrides when the job was made.
    config: Mapped[dict[str, Any]] = mapped_column(JsonB)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    estimated_bytes: Mapped[int] = mapped_column(BigInteger)
    total_steps: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    # Not billed: every GPU second charged before the job failed by the platform's fault
    # (``worker.run_job``); usage counts ``gpu_seconds - waived_gpu_seconds`` (migration 0007).
    waived_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)


class JobEvent(EventRecord, Base):
    __tablename__ = "job_event"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    job_id: Mapped[UUID] = mapped_column(ForeignKey("fine_tune_job.id", ondelete="CASCADE"), index=True)


class TenantCompute(Base):
    """A tenant's scheduling state: decayed recent GPU time (value at a time) and plan limits."""

    __tablename__ = "tenant_compute"

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), unique=True)
    recent_gpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    recent_at: Mapped[float] = mapped_column(Float, default=0.0)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    concurrency_cap: Mapped[int | None] = mapped_column(Integer, default=None)
