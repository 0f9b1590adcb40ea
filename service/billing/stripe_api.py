"""The Stripe client billing uses, made from settings, and the one error its callers see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from core.errors import Conflict, DomainError
from core.settings import BillingSettings


class BillingUnavailable(DomainError):
    """Stripe could not be reached, or refused the request: nothing the caller did wrong."""

    status, problem = 503, "billing-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after=30)
        self.headers = {"Retry-After": "30"}


def require_enabled(settings: BillingSettings) -> None:
    if not settings.enabled:
        raise Conflict("Billing is not enabled on this server.")


@asynccontextmanager
async def stripe_client(settings: BillingSettings) -> AsyncIterator[stripe.StripeClient]:
    """A client for one unit of work (a request, a sender's round), closed after it.

    No retries of the library's own: every caller here retries on its own terms (the sender
    with backoff, Stripe redelivering a webhook, a person pressing the button again).
    """
    http = stripe.HTTPXClient(timeout=settings.request_timeout_seconds)
    base = settings.api_base.rstrip("/") or None
    client = stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses={"api": base} if base else None,
        max_network_retries=0,
        http_client=http,
    )
    try:
        yield client
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
