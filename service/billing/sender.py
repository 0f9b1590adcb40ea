"""Sends the usage ledger to Stripe as meter events; the workers' ``billing`` role.

The ledger is a transactional outbox: every charge is written in the transaction that
measured it (``service.usage.ledger``), and an entry without a ``billing_sent`` row is
still to be sent. Each round sends the oldest unsent entries, one meter event each, with
the entry's id as the event's ``identifier`` and as the request's idempotency key, then
records what Stripe accepted. A sender killed between Stripe's acceptance and that record
sends the same entry again when it (or another replica) next runs: Stripe answers the
repeated idempotency key with its first answer and keeps one event per identifier, so the
usage is counted once. Several senders at once are safe for the same reason, and the
unique ``billing_sent.ledger_entry_id`` makes their records one.

Stripe takes an event's time from the past 35 days up to 5 minutes ahead (the
``timestamp`` parameter of ``billing.meter_events.create``): an entry is sent with the time
its work was done, clamped into that window; entries older than the window are never sent.
A credit (negative entry) is sent as a negative value on the same meter, which Stripe's
``sum`` meters net against the period's usage (``docs/billing.md``).

Each round also cancels the subscriptions of deleted tenants (``service.billing.closing``),
under the same backoff.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio
import stripe
from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import BillingSettings
from service.billing.closing import close_deleted
from service.billing.customers import ensure_customer
from service.billing.models import BillingSent
from service.billing.stripe_api import stripe_client
from service.db.engine import uninterrupted
from service.db.inserts import insert_ignoring_duplicates
from service.db.tenancy import unscoped_session
from service.usage.models import Charge, LedgerEntry

logger = logging.getLogger("rushes.billing")

# Stripe's window for an event's time: the past 35 days, up to 5 minutes ahead.
WINDOW = timedelta(days=35)
# Entries near the window's far edge are dated this far inside it, so the time a request
# takes (or a retry) cannot push them out.
_EDGE_MARGIN = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SendReport:
    found: int  # unsent entries this round read
    accepted: int
    failed: int


def _now() -> datetime:
    return datetime.now(UTC)


def meter_timestamp(occurred_at: datetime, now: datetime) -> int:
    """When the work was done, moved into the part of Stripe's window that is safe to send."""
    return int(min(max(occurred_at, now - WINDOW + _EDGE_MARGIN), now).timestamp())


def meter_value(quantity: float) -> str:
    """A quantity as Stripe's payload takes it: a decimal string, milli-units at most (Stripe
    refuses values of more than 15 significant digits)."""
    text = f"{quantity:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def retry_delay(failures: int, settings: BillingSettings) -> float:
    backoff = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** min(failures - 1, 40))
    # Jitter spreads the retries of replicas that failed together (one outage).
    return float(backoff * random.uniform(0.5, 1.0))


def still_to_send(settings: BillingSettings, now: datetime) -> list[ColumnElement[bool]]:
    """Ledger entries still to send: within Stripe's window, of a charge with a meter, unsent."""
    charges = [charge for charge in Charge if charge.value in settings.meter_events]
    return [
        LedgerEntry.occurred_at >= now - WINDOW,
        LedgerEntry.charge.in_(charges),
        ~exists().where(BillingSent.ledger_entry_id == LedgerEntry.id),
    ]


async def unsent(
    session: AsyncSession, settings: BillingSettings, now: datetime, limit: int
) -> list[LedgerEntry]:
    """The oldest entries still to send."""
    rows = await session.scalars(
        select(LedgerEntry)
        .where(*still_to_send(settings, now))
        .order_by(LedgerEntry.occurred_at, LedgerEntry.id)
        .limit(limit)
    )
    return list(rows)


async def send_once(
    sessions: async_sessionmaker[AsyncSession],
    settings: BillingSettings,
    client: stripe.StripeClient,
    now: datetime | None = None,
) -> SendReport:
    """One round: send the oldest unsent entries and record each Stripe accepts."""
    now = now or _now()
    async with unscoped_session(sessions) as session:
        entries = await unsent(session, settings, now, settings.send_batch)
    customers: dict[UUID, str] = {}
    accepted = failed = 0
    for entry in entries:
        event_name = settings.meter_events[entry.charge.value]
        value = meter_value(entry.quantity)
        try:
            if entry.tenant_id not in customers:
                async with unscoped_session(sessions) as session:
                    customers[entry.tenant_id] = await ensure_customer(session, client, entry.tenant_id)
            await client.v1.billing.meter_events.create_async(
                params={
                    "event_name": event_name,
                    "identifier": str(entry.id),
                    "payload": {"stripe_customer_id": customers[entry.tenant_id], "value": value},
                    "timestamp": meter_timestamp(entry.occurred_at, now),
                },
                options={"idempotency_key": f"rushes-meter-{entry.id}"},
            )
        except stripe.StripeError as exc:
            # Left unsent: the next round tries it again, after the backoff.
            failed += 1
            logger.warning(
                "meter event for ledger entry %s not accepted: %s",
                entry.id,
                exc.user_message or exc.__class__.__name__,
                extra={"ledger_entry": str(entry.id), "http_status": exc.http_status},
            )
            continue
        await _record(sessions, entry, event_name, value)
        accepted += 1
    return SendReport(len(entries), accepted, failed)


async def _record(
    sessions: async_sessionmaker[AsyncSession], entry: LedgerEntry, event_name: str, value: str
) -> None:
    async with unscoped_session(sessions) as session:
        await session.execute(
            insert_ignoring_duplicates(session, BillingSent, ["ledger_entry_id"]).values(
                tenant_id=entry.tenant_id,
                ledger_entry_id=entry.id,
                event_name=event_name,
                value=value,
                sent_at=_now(),
            )
        )
        await session.commit()


async def run_billing_sender(sessions: async_sessionmaker[AsyncSession], settings: BillingSettings) -> None:
    """Rounds until cancelled: a full round goes again at once, a round with failures waits
    the backoff, the rest wait the poll interval. Returns at once when billing is off.

    A round first cancels deleted tenants' subscriptions, then sends the ledger; a failure
    of either is a failing round."""
    if not settings.enabled:
        logger.info("billing is off (no Stripe key): the billing role sends nothing")
        return
    failures = 0
    while True:
        try:
            async with stripe_client(settings) as client:
                closing = await uninterrupted(close_deleted(sessions, client, settings.send_batch))
                report = await uninterrupted(send_once(sessions, settings, client))
            failed, found = closing.failed + report.failed, report.found
        except Exception:
            logger.exception("billing round failed; trying again after the backoff")
            failed, found = 1, 0
        if failed:
            failures += 1
            await anyio.sleep(retry_delay(failures, settings))
            continue
        failures = 0
        if found < settings.send_batch:
            await anyio.sleep(settings.poll_interval_seconds)
