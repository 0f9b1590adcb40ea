from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.billing import events, service
from service.billing.schemas import BillingOut, PortalOut, StripeEventOut, TenantBillingOut


class BillingController(Controller):
    """The caller's own tenant's billing."""

    path = "/v1/billing"
    tags = ["billing"]

    @get(operation_id="getBilling", opt=access(Access.MEMBER))
    async def get_billing(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> BillingOut:
        """Whether billing is on, the tenant's status and plan, and whether it has a Stripe customer."""
        return await service.tenant_billing(db_session, settings.billing, principal.tenant_id)

    @post("/portal", operation_id="createBillingPortalSession", status_code=201, opt=access(Access.OWNER))
    async def create_portal(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> PortalOut:
        """A Stripe Customer Portal link for cards and invoices (409 while billing is off)."""
        return await service.portal_session(db_session, settings.billing, principal.tenant_id)

    @post(
        "/stripe/webhook",
        operation_id="receiveStripeEvent",
        status_code=200,
        opt=access(Access.PUBLIC),
        include_in_schema=True,
    )
    async def receive_stripe_event(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> StripeEventOut:
        """Stripe's webhook: anyone may call it, but only a body Stripe signed with this
        server's webhook secret, within 300 s, is acted on; anything else is a 400."""
        body = await request.body()
        event = events.verify(body, request.headers.get("stripe-signature"), settings.billing)
        return StripeEventOut(outcome=await events.handle(db_session, settings.billing, event))


class AdminBillingController(Controller):
    path = "/v1/admin/tenants"
    tags = ["admin"]
    opt = access(Access.ADMIN)

    @get("/{tenant_id:uuid}/billing", operation_id="adminGetTenantBilling")
    async def get_billing(
        self,
        tenant_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> TenantBillingOut:
        """The tenant's Stripe customer and subscription, and how much of its ledger reached Stripe."""
        return await service.admin_tenant_billing(db_session, settings.billing, tenant_id)
