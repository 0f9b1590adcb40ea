"""A tenant's billing as its members and admins see it, and the Customer Portal."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.settings import BillingSettings
from service.accounts.models import Tenant
from service.billing.customers import billing_account, ensure_customer
from service.billing.models import BillingSent
from service.billing.schemas import BillingOut, PortalOut, TenantBillingOut
from service.billing.sender import still_to_send
from service.billing.stripe_api import BillingUnavailable, require_enabled, stripe_client
from service.db.tenancy import unscoped
from service.quotas.limits import default_plan
from service.quotas.models import Plan
from service.usage.models import LedgerEntry


async def _tenant(session: AsyncSession, tenant_id: UUID) -> Tenant:
    with unscoped(session):
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    return tenant


async def tenant_billing(session: AsyncSession, settings: BillingSettings, tenant_id: UUID) -> BillingOut:
    tenant = await _tenant(session, tenant_id)
    account = await billing_account(session, tenant_id)
    plan = await session.get(Plan, tenant.plan_id) if tenant.plan_id else await default_plan(session)
    return BillingOut(
        enabled=settings.enabled,
        status=tenant.status,
        plan=plan.name if plan else None,
        plan_id=tenant.plan_id,
        has_customer=account is not None,
        subscription_status=account.subscription_status if account else None,
    )


async def admin_tenant_billing(
    session: AsyncSession, settings: BillingSettings, tenant_id: UUID, now: datetime | None = None
) -> TenantBillingOut:
    view = await tenant_billing(session, settings, tenant_id)
    account = await billing_account(session, tenant_id)
    now = now or datetime.now(UTC)
    with unscoped(session):
        sent = await session.scalar(
            select(func.count(BillingSent.id)).where(BillingSent.tenant_id == tenant_id)
        )
        unsent = await session.scalar(
            select(func.count(LedgerEntry.id)).where(
                LedgerEntry.tenant_id == tenant_id, *still_to_send(settings, now)
            )
        )
    return TenantBillingOut(
        **view.model_dump(),
        tenant_id=tenant_id,
        stripe_customer_id=account.stripe_customer_id if account else None,
        stripe_subscription_id=account.stripe_subscription_id if account else None,
        sent_entries=int(sent or 0),
        unsent_entries=int(unsent or 0),
    )


async def portal_session(session: AsyncSession, settings: BillingSettings, tenant_id: UUID) -> PortalOut:
    """A Customer Portal session for the tenant's Stripe customer, made now (they expire)."""
    require_enabled(settings)
    try:
        async with stripe_client(settings) as client:
            customer = await ensure_customer(session, client, tenant_id)
            params: dict[str, str] = {"customer": customer}
            if settings.portal_return_url:
                params["return_url"] = settings.portal_return_url
            portal = await client.v1.billing_portal.sessions.create_async(params=params)  # type: ignore[arg-type]
    except stripe.StripeError as exc:
        raise BillingUnavailable(
            f"Stripe could not open the billing portal: {exc.user_message or exc}"
        ) from None
    return PortalOut(url=portal.url)
