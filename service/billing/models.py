"""What billing keeps: each tenant's Stripe customer, what Stripe accepted, the Stripe events seen."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class BillingAccount(TenantScoped, Base):
    """A tenant's Stripe customer, made on demand, and the subscription Stripe last reported."""

    __tablename__ = "billing_account"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Stripe's status of that subscription (active, past_due, canceled...), as last re-read.
    subscription_status: Mapped[str | None] = mapped_column(String(32), default=None)


class BillingSent(TenantScoped, Base):
    """A ledger entry Stripe accepted as a meter event.

    The ledger is the outbox: an entry without a row here is still to be sent. Its unique
    ``ledger_entry_id`` makes a second sender's identical record a no-op.
    """

    __tablename__ = "billing_sent"

    ledger_entry_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("usage_ledger.id", ondelete="CASCADE"), unique=True
    )
    event_name: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class StripeEvent(Base):
    """A Stripe webhook event handled once: its unique id turns a redelivery into a no-op."""

    __tablename__ = "stripe_event"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    # What handling it did: processed, or ignored (a type or customer billing does not act on).
    outcome: Mapped[str] = mapped_column(String(16))
