from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from service.accounts.models import TenantStatus
from service.schemas import Output


class BillingOut(Output):
    enabled: bool = Field(description="Whether this server bills through Stripe.")
    status: TenantStatus = Field(
        description="past_due: a payment failed; nothing new starts until it is paid."
    )
    plan: str | None = Field(description="The plan's name; None when no plan exists (all unlimited).")
    plan_id: UUID | None = Field(description="The tenant's own plan; None: the default plan.")
    has_customer: bool = Field(description="Whether the tenant has a Stripe customer yet.")
    subscription_status: str | None = Field(description="Stripe's status of the tenant's subscription.")


class TenantBillingOut(BillingOut):
    """An admin's view: the Stripe ids and how much of the ledger has reached Stripe."""

    tenant_id: UUID
    stripe_customer_id: str | None
    stripe_subscription_id: str | None
    sent_entries: int = Field(description="Ledger entries Stripe accepted as meter events.")
    unsent_entries: int = Field(description="Ledger entries within Stripe's 35-day window still to send.")


class PortalOut(Output):
    url: str = Field(
        description="A Stripe Customer Portal session for cards and invoices; open it once, soon."
    )


class StripeEventOut(Output):
    outcome: Literal["processed", "ignored", "duplicate"]
