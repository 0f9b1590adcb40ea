from __future__ import annotations

from typing import Any
from uuid import UUID

from advanced_alchemy.types import JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class Model(TenantScoped, Base):
    """A named line of adapters on one base; each successful fine-tune adds a version."""

    __tablename__ = "model"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    base_id: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    version_count: Mapped[int] = mapped_column(Integer, default=0)
    # What generation requests on this model may ask for (``Guardrails``), set by an owner; the
    # server default fills the rows that predate the column.
    guardrails: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict, server_default=text("'{}'"))


class ModelVersion(TenantScoped, Base):
    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("model_id", "number"),)

    model_id: Mapped[UUID] = mapped_column(ForeignKey("model.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # The job that trained it; kept as provenance, so the job row stays while the version does.
    job_id: Mapped[UUID] = mapped_column(ForeignKey("fine_tune_job.id", ondelete="RESTRICT"), unique=True)
    dataset_version_id: Mapped[UUID] = mapped_column(ForeignKey("dataset_version.id", ondelete="RESTRICT"))
    base_id: Mapped[str] = mapped_column(String(64))
    trigger_word: Mapped[str | None] = mapped_column(String(64), default=None)
    config: Mapped[dict[str, Any]] = mapped_column(JsonB)
    adapter_sha256: Mapped[str] = mapped_column(String(64))
    adapter_bytes: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[int] = mapped_column(Integer)
    final_loss: Mapped[float | None] = mapped_column(Float, default=None)
    # How the version changed the look against its base and its footage (``trainer.look``),
    # measured once after training; None when it was not measured (made before measuring
    # existed, or turned off). A failed measurement stores its reason here instead.
    look: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)
