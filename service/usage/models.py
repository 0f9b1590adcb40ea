"""The usage ledger: one append-only row per charge, the one source quotas, usage and billing read."""

from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Enum, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class Charge(enum.StrEnum):
    """What a ledger row measures; its unit is in the name."""

    FINE_TUNE_GPU_SECONDS = "fine_tune_gpu_seconds"
    GENERATION_GPU_SECONDS = "generation_gpu_seconds"
    OUTPUT_BYTES = "output_bytes"


GPU_CHARGES = (Charge.FINE_TUNE_GPU_SECONDS, Charge.GENERATION_GPU_SECONDS)


class LedgerEntry(TenantScoped, Base):
    """One charge (positive) or credit (negative), never updated or deleted while its tenant lives.

    ``key`` names the event that caused the charge (a work item's beat, end or credit), unique,
    so writing the same charge twice fails instead of counting twice; the row's ``id`` is the
    identifier billing sends to Stripe. ``occurred_at`` is when the work was done: the day a
    charge counts on.
    """

    __tablename__ = "usage_ledger"
    __table_args__ = (Index("ix_usage_ledger_tenant_occurred", "tenant_id", "occurred_at"),)

    key: Mapped[str] = mapped_column(String(120), unique=True)
    charge: Mapped[Charge] = mapped_column(Enum(Charge, native_enum=False, length=32))
    quantity: Mapped[float] = mapped_column(Float)
    work_id: Mapped[UUID | None] = mapped_column(GUID, default=None, index=True)
    attempt: Mapped[int | None] = mapped_column(Integer, default=None)
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
