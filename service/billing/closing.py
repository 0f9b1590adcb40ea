"""Cancels deleted tenants' Stripe subscriptions; part of the workers' ``billing`` role.

Deleting a tenant deletes its billing account with every other row of it, but Stripe knows
nothing of that and would go on charging the subscription every period. So the deletion's
transaction keeps the subscription's id on the tenant's tombstone (``DeletedTenant``), an
outbox like the ledger, when Stripe may still bill it (``live_subscription``); each round of
the billing role cancels the subscriptions of tombstones not yet closed, invoicing the usage
already metered and crediting the unused time (``invoice_now``, ``prorate``), and records
``billing_closed_at``. The customer itself stays at Stripe: its invoices and tax records
must outlive the tenant.

A sender killed between Stripe's answer and the record cancels again next round with the
same idempotency key (one per tombstone), and Stripe answers with its first answer. After
the key has expired (24 hours), or when someone cancelled the subscription in Stripe
meanwhile, Stripe refuses to cancel it again or no longer finds it: both count as closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.billing.models import BillingAccount
from service.db.tenancy import unscoped_session
from service.tenants.models import DeletedTenant

logger = logging.getLogger("rushes.billing")

# Stripe's statuses of a subscription that will never bill again.
ENDED = frozenset({"canceled", "incomplete_expired"})


@dataclass(frozen=True, slots=True)
class CloseReport:
    closed: int
    failed: int


def live_subscription(account: BillingAccount | None) -> str | None:
    """The account's subscription while Stripe may still bill it: what a deletion must cancel."""
    if account is None or account.subscription_status in ENDED:
        return None
    return account.stripe_subscription_id


async def _cancel(client: stripe.StripeClient, tombstone: DeletedTenant) -> None:
    """Cancel the tombstone's subscription now; returns once Stripe bills it no more."""
    assert tombstone.stripe_subscription_id is not None  # only such tombstones are read
    subscription_id = tombstone.stripe_subscription_id
    try:
        await client.v1.subscriptions.cancel_async(
            subscription_id,
            params={"invoice_now": True, "prorate": True},
            options={"idempotency_key": f"rushes-close-{tombstone.id}"},
        )
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404 or exc.code == "resource_missing":
            return  # gone at Stripe: nothing left to bill
        # Stripe refuses to cancel a subscription that has already ended; reading it tells
        # that refusal from any other without matching the wording of its message.
        subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
        if subscription.status not in ENDED:
            raise


async def close_deleted(
    sessions: async_sessionmaker[AsyncSession], client: stripe.StripeClient, limit: int
) -> CloseReport:
    """One round: cancel the oldest still-open subscriptions of deleted tenants, and record
    each Stripe bills no more."""
    async with unscoped_session(sessions) as session:
        tombstones = list(
            await session.scalars(
                select(DeletedTenant)
                .where(
                    DeletedTenant.stripe_subscription_id.is_not(None),
                    DeletedTenant.billing_closed_at.is_(None),
                )
                .order_by(DeletedTenant.created_at, DeletedTenant.id)
                .limit(limit)
            )
        )
    closed = failed = 0
    for tombstone in tombstones:
        try:
            await _cancel(client, tombstone)
        except stripe.StripeError as exc:
            # Left open: the next round tries it again, after the backoff.
            failed += 1
            logger.warning(
                "subscription %s of deleted tenant %s not cancelled: %s",
                tombstone.stripe_subscription_id,
                tombstone.deleted_tenant_id,
                exc.user_message or exc.__class__.__name__,
                extra={"deleted_tenant": str(tombstone.deleted_tenant_id), "http_status": exc.http_status},
            )
            continue
        async with unscoped_session(sessions) as session:
            await session.execute(
                update(DeletedTenant)
                .where(DeletedTenant.id == tombstone.id)
                .values(billing_closed_at=datetime.now(UTC))
            )
            await session.commit()
        logger.info(
            "subscription %s of deleted tenant %s cancelled",
            tombstone.stripe_subscription_id,
            tombstone.deleted_tenant_id,
        )
        closed += 1
    return CloseReport(closed, failed)
