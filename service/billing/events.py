"""Stripe's webhook events: verified, handled once, and acted on by re-reading Stripe.

Stripe signs each delivery (``Stripe-Signature``); the ``stripe`` library's own check
verifies it and refuses timestamps older than 300 s, and this module also refuses those
more than 300 s ahead, so a captured delivery cannot be replayed later. An event is handled
once: its id is recorded, unique, in the same transaction as what it changed, so a
redelivery (or a concurrent second delivery) changes nothing.

Stripe does not promise the order of events, so none is trusted for the state it carries:
each names an object, and the object is read again from Stripe, whose answer is the state
now. A late ``invoice.payment_failed`` for an invoice since paid therefore does nothing,
and a late ``customer.subscription.updated`` after a ``deleted`` finds the subscription
cancelled.

- ``invoice.paid``, ``invoice.payment_failed``: the invoice paid → a past-due tenant is
  active again; unpaid after a failed attempt → an active tenant is past due. A suspended
  tenant is left to admins.
- ``customer.subscription.created``, ``.updated``, ``.deleted``: a live subscription
  moves its tenant to the plan of its price (``Plan.stripe_price_id``); a cancelled one
  moves it to the default plan.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import stripe
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from core.settings import BillingSettings
from service.accounts.models import Tenant, TenantStatus
from service.billing.models import BillingAccount, StripeEvent
from service.billing.stripe_api import BillingUnavailable, stripe_client
from service.db.inserts import insert_ignoring_duplicates
from service.db.tenancy import unscoped
from service.quotas.models import Plan

logger = logging.getLogger("rushes.billing")

# Seconds a signature's timestamp may lie behind or ahead of this server's clock.
TOLERANCE_SECONDS = 300
HANDLED = (
    "invoice.paid",
    "invoice.payment_failed",
    # Created too: a subscription made active from the start (in Stripe's dashboard, say) may
    # never be updated, and a tenant deleted meanwhile must still have it cancelled.
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
# Subscription states in which its price is the tenant's plan; any other ends it.
_LIVE_SUBSCRIPTION = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")

Outcome = Literal["processed", "ignored", "duplicate"]


class BadSignature(DomainError):
    status, problem = 400, "bad-signature"


def verify(
    payload: bytes, header: str | None, settings: BillingSettings, now: float | None = None
) -> dict[str, Any]:
    """The event, once its signature is Stripe's and its timestamp within 300 s either way."""
    try:
        event = stripe.Webhook.construct_event(
            payload, header, settings.webhook_secret.get_secret_value(), tolerance=TOLERANCE_SECONDS
        )
    except (stripe.SignatureVerificationError, ValueError) as exc:
        raise BadSignature(f"Not a Stripe event signed for this server: {exc}") from None
    # Verified above, so the header holds a well-formed ``t=``.
    signed_at = int(next(part[2:] for part in (header or "").split(",") if part.startswith("t=")))
    if signed_at > (now or time.time()) + TOLERANCE_SECONDS:
        raise BadSignature("The Stripe-Signature timestamp is in the future.")
    body: dict[str, Any] = event.to_dict()
    if not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
        raise BadSignature("The event has no id or type.")
    return body


async def handle(session: AsyncSession, settings: BillingSettings, event: dict[str, Any]) -> Outcome:
    """Act on a verified event once; ``duplicate`` when it was handled before."""
    with unscoped(session):
        if await session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])):
            return "duplicate"
        outcome: Outcome = "ignored"
        if event["type"] in HANDLED:
            obj = event.get("data", {}).get("object", {})
            account = await session.scalar(
                select(BillingAccount).where(BillingAccount.stripe_customer_id == obj.get("customer"))
            )
            if account is not None and isinstance(obj.get("id"), str):
                try:
                    async with stripe_client(settings) as client:
                        if event["type"].startswith("invoice."):
                            await _invoice(session, client, account, obj["id"])
                        else:
                            await _subscription(session, client, account, obj["id"])
                except stripe.StripeError as exc:
                    # Not recorded: Stripe delivers the event again later.
                    raise BillingUnavailable(f"Stripe could not be read: {exc.user_message or exc}") from None
                outcome = "processed"
        inserted = await session.execute(
            insert_ignoring_duplicates(session, StripeEvent, ["event_id"])
            .values(event_id=event["id"], type=event["type"], outcome=outcome)
            .returning(StripeEvent.id)
        )
        if inserted.first() is None:  # a concurrent delivery of the same event won
            await session.rollback()
            return "duplicate"
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return "duplicate"
    logger.info("stripe event %s (%s): %s", event["id"], event["type"], outcome)
    return outcome


async def _tenant(session: AsyncSession, account: BillingAccount) -> Tenant:
    tenant = await session.scalar(select(Tenant).where(Tenant.id == account.tenant_id).with_for_update())
    assert tenant is not None  # the account's row is removed with its tenant
    return tenant


async def _invoice(
    session: AsyncSession, client: stripe.StripeClient, account: BillingAccount, invoice_id: str
) -> None:
    invoice = await client.v1.invoices.retrieve_async(invoice_id)
    tenant = await _tenant(session, account)
    if invoice.status == "paid":
        if tenant.status == TenantStatus.PAST_DUE:
            tenant.status = TenantStatus.ACTIVE
    elif (
        invoice.status in ("open", "uncollectible")
        and invoice.attempted
        and tenant.status == TenantStatus.ACTIVE
    ):
        tenant.status = TenantStatus.PAST_DUE


async def _subscription(
    session: AsyncSession, client: stripe.StripeClient, account: BillingAccount, subscription_id: str
) -> None:
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    tenant = await _tenant(session, account)
    if subscription.status not in _LIVE_SUBSCRIPTION:
        # The end of a subscription the tenant has since replaced changes nothing.
        if account.stripe_subscription_id in (None, subscription.id):
            account.stripe_subscription_id = subscription.id
            account.subscription_status = subscription.status
            tenant.plan_id = None
        return
    account.stripe_subscription_id = subscription.id
    account.subscription_status = subscription.status
    prices = [item.price.id for item in subscription["items"].data]
    plan = await session.scalar(select(Plan).where(Plan.stripe_price_id.in_(prices)))
    if plan is None:
        logger.warning(
            "subscription %s has no price a plan sells (%s); the tenant's plan is unchanged",
            subscription.id,
            ", ".join(prices),
        )
        return
    tenant.plan_id = plan.id
