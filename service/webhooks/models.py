from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.work.lease import Deferrable, Leased
from core.work.status import WorkStatus
from service.db.base import Base, TenantScoped


class DeliveryStatus(enum.StrEnum):
    """A delivery's status as the API shows it; the row holds a ``WorkStatus`` (``public_status``)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# What each status of the row means to the endpoint's owner. A cancelled delivery is one its
# endpoint's disabling stopped: it waits, pending, and is queued again when the endpoint is
# enabled again.
PUBLIC_STATUS: dict[WorkStatus, DeliveryStatus] = {
    WorkStatus.QUEUED: DeliveryStatus.PENDING,
    WorkStatus.RUNNING: DeliveryStatus.PENDING,
    WorkStatus.CANCELLED: DeliveryStatus.PENDING,
    WorkStatus.SUCCEEDED: DeliveryStatus.SUCCEEDED,
    WorkStatus.FAILED: DeliveryStatus.FAILED,
}


def work_statuses(status: DeliveryStatus) -> list[WorkStatus]:
    """The row statuses the API shows as ``status``."""
    return [work for work, public in PUBLIC_STATUS.items() if public is status]


class WebhookEndpoint(TenantScoped, Base):
    """A tenant's URL for events of its work. Its signing secret is derived, never stored (``signing.py``)."""

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


class WebhookDelivery(TenantScoped, Leased, Deferrable, Base):
    """One event for one endpoint; the unique pair is what makes fan-out safe to repeat.

    Queued work like a fine-tune (``core.work``): the dispatcher claims it under a lease, a
    refused attempt goes back to the queue until ``not_before`` (the retry's backoff), and
    ``attempts`` counts the attempts of the current round (a redelivery starts a new one).
    Its cancel is its endpoint's disabling (``service.pause_deliveries``). ``step`` and
    ``gpu_seconds`` stay 0.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "not_before"),
    )
    default_max_attempts = 10

    endpoint_id: Mapped[UUID] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    # No foreign key: the log outlives the job's events, and the payload is kept here.
    event_id: Mapped[UUID]
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        lazy="selectin", order_by="(WebhookAttempt.created_at, WebhookAttempt.id)", viewonly=True
    )

    @property
    def public_status(self) -> DeliveryStatus:
        return PUBLIC_STATUS[self.status]

    @property
    def next_attempt_at(self) -> datetime | None:
        """When the next attempt is due; while an attempt runs, when its lease lapses; None once final."""
        if self.status is WorkStatus.RUNNING:
            return self.lease_expires_at
        if self.status in (WorkStatus.SUCCEEDED, WorkStatus.FAILED):
            return None
        return self.not_before  # queued, or cancelled: waiting for its endpoint to be enabled


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
