"""A Stripe customer per tenant, made the first time billing needs one."""

from __future__ import annotations

from uuid import UUID

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from service.accounts.models import Tenant
from service.billing.models import BillingAccount
from service.db.inserts import insert_ignoring_duplicates
from service.db.tenancy import unscoped


async def billing_account(session: AsyncSession, tenant_id: UUID) -> BillingAccount | None:
    with unscoped(session):
        account: BillingAccount | None = await session.scalar(
            select(BillingAccount).where(BillingAccount.tenant_id == tenant_id)
        )
    return account


async def ensure_customer(session: AsyncSession, client: stripe.StripeClient, tenant_id: UUID) -> str:
    """The tenant's Stripe customer id, creating the customer on first use.

    Two processes may ask at once (the portal and the billing role): Stripe's idempotency
    key, one per tenant, makes their two creates one customer, and the unique tenant
    makes their two records one row.
    """
    account = await billing_account(session, tenant_id)
    if account is not None:
        return account.stripe_customer_id
    with unscoped(session):
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    name = tenant.name
    # Nothing is held while Stripe answers: the read above started no write.
    await session.rollback()
    customer = await client.v1.customers.create_async(
        params={"name": name, "metadata": {"rushes_tenant_id": str(tenant_id)}},
        options={"idempotency_key": f"rushes-customer-{tenant_id}"},
    )
    with unscoped(session):
        await session.execute(
            insert_ignoring_duplicates(session, BillingAccount, ["tenant_id"]).values(
                tenant_id=tenant_id, stripe_customer_id=customer.id
            )
        )
        await session.commit()
        account = await billing_account(session, tenant_id)
    assert account is not None  # inserted, or inserted by the other asker
    return account.stripe_customer_id
