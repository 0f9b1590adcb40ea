"""What is kept of a deleted tenant: that it was deleted, so its files can be swept, and what
Stripe must still be told."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base


class DeletedTenant(Base):
    """One per deleted tenant, written in the transaction that deletes its rows.

    The cleanup sweep deletes objects under the prefix of these tenants only: never of a tenant
    merely missing from the database (one restored from an older backup, or pointed at another
    bucket). The column is not named ``tenant_id`` and has no foreign key: the tenant is gone,
    and no later deletion may mistake this row for one of its own.

    It is also billing's outbox for the tenant (``service.billing.closing``): its billing account
    is deleted with its rows, but Stripe would go on charging its subscription, so the ids are
    kept here until the billing role has cancelled it.
    """

    __tablename__ = "deleted_tenant"

    deleted_tenant_id: Mapped[UUID] = mapped_column(GUID, unique=True)
    # When the objects under its prefix were last found deleted; None until the first success.
    objects_deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # The tenant's Stripe customer (kept at Stripe: its invoices outlive the tenant); None without one.
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # Its subscription, when Stripe may still bill it: the billing role cancels it.
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # When Stripe was found to bill that subscription no more; None until then.
    billing_closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
