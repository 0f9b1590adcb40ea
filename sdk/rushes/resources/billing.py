"""Billing: the tenant's plan and payment status, and a link to Stripe's Customer Portal."""

from __future__ import annotations

from rushes import types
from rushes._base import Op
from rushes._resource import R, Resource, endpoint


class BillingResource(Resource[R]):
    @endpoint
    def get(self) -> Op[types.Billing]:
        """Whether the server bills through Stripe, the tenant's status and plan, and its subscription."""
        return Op("GET", "/v1/billing", types.Billing.from_json)

    @endpoint
    def portal(self) -> Op[types.BillingPortal]:
        """A Stripe Customer Portal link for cards and invoices (owners only).

        Raises :class:`~rushes.ConflictError` (409) while the server does not bill through Stripe.
        """
        return Op("POST", "/v1/billing/portal", types.BillingPortal.from_json)
