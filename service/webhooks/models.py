from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db.base import Base, TenantScoped


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookEndpoint(TenantScoped, Base):
    """A tenant's URL for job events. Its signing secret is derived, never stored (``signing.py``)."""

    __tablename__ = "webhook_endpoint"

    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(Text, default="")
    event_types: Mapped[list[str]] = mapped_column(JsonB)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Events from this time on are delivered: set at creation and whenever the endpoint is
    # enabled again, so a paused endpoint is not sent what happened while it was off.
    enabled_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    secret_version: Mapped[int] = mapped_column(Integer, default=1)
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class WebhookDelivery(TenantScoped, Base):
    """One event for one endpoint; the unique pair is what makes fan-out safe to repeat."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    # No foreign key: the log outlives the job's events, and the payload is kept here.
    event_id: Mapped[UUID]
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16), default=DeliveryStatus.PENDING
    )
    # Attempts in the current round (a redelivery starts a new one). Claims advance it, and
    # recording an attempt's result requires it unchanged, so it doubles as the claim token.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; while an attempt runs, when its claim lapses. None once final.
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        lazy="selectin", order_by="(WebhookAttempt.created_at, WebhookAttempt.id)", viewonly=True
    )


class WebhookAttempt(TenantScoped, Base):
    """One request made for a delivery and what came of it."""

    __tablename__ = "webhook_attempt"

    delivery_id: Mapped[UUID] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(2048))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    duration_ms: Mapped[int] = mapped_column(Integer)
