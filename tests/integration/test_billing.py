"""Stripe billing against a Stripe stand-in on loopback, with the real ``stripe`` client: meter
events from the ledger (once per entry, even when the sender is killed mid-send), the
Customer Portal, webhook events verified by the library's own signature code, and a deleted
tenant's subscription cancelled at Stripe."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import stripe
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import BillingSettings, Settings
from core.storage import ObjectStorage
from service.app import create_app
from service.billing.closing import close_deleted
from service.billing.models import BillingSent, StripeEvent
from service.billing.sender import meter_timestamp, meter_value, run_billing_sender, send_once
from service.billing.stripe_api import stripe_client
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped, set_tenant
from service.tenants.models import DeletedTenant
from service.usage.models import Charge, LedgerEntry
from tests.conftest import free_port
from tests.helpers import Caller, add_member, sign_up, sign_up_admin
from tests.stripe_standin import StripeStandIn, running_standin
from tests.workers import Workers

Client = AsyncTestClient[Litestar]
SECRET = "whsec_standin_secret"
WEBHOOK = "/v1/billing/stripe/webhook"


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    with running_standin() as running:
        yield running


@pytest.fixture
def billed(settings: Settings, standin: StripeStandIn) -> Settings:
    billing = BillingSettings(
        stripe_api_key=SecretStr("sk_test_standin"),
        webhook_secret=SecretStr(SECRET),
        api_base=standin.url,
        request_timeout_seconds=5.0,
        poll_interval_seconds=0.2,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
    )
    return settings.model_copy(update={"billing": billing})


@pytest.fixture
async def client(billed: Settings, storage: ObjectStorage) -> AsyncIterator[Client]:
    async with AsyncTestClient(create_app(billed, storage)) as test_client:
        yield test_client


async def _write_ledger(
    settings: Settings, tenant_id: str, *entries: tuple[Charge, float, datetime]
) -> list[str]:
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        set_tenant(session, uuid.UUID(tenant_id))
        rows = [
            LedgerEntry(key=f"test:{uuid.uuid4()}", charge=charge, quantity=quantity, occurred_at=at)
            for charge, quantity, at in entries
        ]
        session.add_all(rows)
        await session.commit()
    await engine.dispose()
    return [str(row.id) for row in rows]


async def _sent(settings: Settings) -> list[str]:
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine) as session:
        mark_unscoped(session)
        ids = [str(i) for i in await session.scalars(select(BillingSent.ledger_entry_id))]
    await engine.dispose()
    return ids


async def _send_round(settings: Settings) -> tuple[int, int, int]:
    engine = create_engine(settings.database_url)
    try:
        async with stripe_client(settings.billing) as stripe_api:
            report = await send_once(session_factory(engine), settings.billing, stripe_api)
    finally:
        await engine.dispose()
    return report.found, report.accepted, report.failed


def test_meter_values_and_timestamps_fit_stripe() -> None:
    now = datetime(2027, 3, 10, tzinfo=UTC)
    assert meter_value(12.5) == "12.5"
    assert meter_value(-3600.0) == "-3600"
    assert meter_value(1 / 3) == "0.333"
    assert meter_value(-0.0001) == "0"
    # Within the past 35 days: as is; at the window's edge: an hour inside; ahead: now.
    assert meter_timestamp(now - timedelta(days=3), now) == int((now - timedelta(days=3)).timestamp())
    edge = now - timedelta(days=35) + timedelta(hours=1)
    assert meter_timestamp(now - timedelta(days=35), now) == int(edge.timestamp())
    assert meter_timestamp(now + timedelta(minutes=10), now) == int(now.timestamp())


async def test_each_ledger_entry_becomes_one_meter_event(
    client: Client, billed: Settings, standin: StripeStandIn
) -> None:
    a, b = await sign_up(client, "Studio A"), await sign_up(client, "Studio B")
    now = datetime.now(UTC)
    charge, credit, output, old = await _write_ledger(
        billed,
        a.tenant_id,
        (Charge.FINE_TUNE_GPU_SECONDS, 120.25, now - timedelta(days=2)),
        (Charge.FINE_TUNE_GPU_SECONDS, -120.25, now - timedelta(days=1)),
        (Charge.OUTPUT_BYTES, 2048, now - timedelta(hours=1)),
        (Charge.GENERATION_GPU_SECONDS, 9, now - timedelta(days=40)),  # past Stripe's window
    )
    (other,) = await _write_ledger(billed, b.tenant_id, (Charge.GENERATION_GPU_SECONDS, 7.5, now))

    standin.fail_next = 2  # the first customer create and the first meter event after it
    assert await _send_round(billed) == (4, 2, 2)
    assert await _send_round(billed) == (2, 2, 0)  # what failed goes next round
    assert await _send_round(billed) == (0, 0, 0)

    assert sorted(standin.accepted_identifiers()) == sorted([charge, credit, output, other])
    assert sorted(await _sent(billed)) == sorted([charge, credit, output, other])
    assert old not in [r.params.get("identifier") for r in standin.requests]
    events = {event["identifier"]: event for event in standin.meter_events}
    assert events[charge]["event_name"] == "rushes_fine_tune_gpu_seconds"
    assert events[charge]["payload"]["value"] == "120.25"
    assert events[credit]["payload"]["value"] == "-120.25"  # a credit nets against the period
    assert events[output]["event_name"] == "rushes_output_bytes"
    assert events[other]["event_name"] == "rushes_generation_gpu_seconds"
    assert events[charge]["timestamp"] == int((now - timedelta(days=2)).timestamp())
    # One customer per tenant, made once whatever the retries: the same idempotency key each time.
    assert len(standin.customers) == 2
    assert events[charge]["payload"]["stripe_customer_id"] == events[output]["payload"]["stripe_customer_id"]
    assert events[charge]["payload"]["stripe_customer_id"] != events[other]["payload"]["stripe_customer_id"]
    customer_keys = {r.headers["idempotency-key"] for r in standin.requests if r.path == "/v1/customers"}
    assert customer_keys == {f"rushes-customer-{a.tenant_id}", f"rushes-customer-{b.tenant_id}"}


async def test_portal_and_billing_views(client: Client, billed: Settings, standin: StripeStandIn) -> None:
    owner = await sign_up(client, "Studio")
    member = await add_member(client, owner)
    admin = await sign_up_admin(client, billed)
    shown = await client.get("/v1/billing", headers=member.headers)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "enabled": True,
        "status": "active",
        "plan": "default",
        "plan_id": None,
        "has_customer": False,
        "subscription_status": None,
    }
    assert (await client.post("/v1/billing/portal", headers=member.headers)).status_code == 403
    portal = await client.post("/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 201, portal.text
    assert portal.json()["url"].startswith("https://billing.stripe.test/p/session/")
    (customer,) = standin.customers
    assert (await client.get("/v1/billing", headers=member.headers)).json()["has_customer"] is True
    assert customer not in (await client.get("/v1/billing", headers=member.headers)).text
    # A second portal reuses the customer.
    assert (await client.post("/v1/billing/portal", headers=owner.headers)).status_code == 201
    assert len(standin.customers) == 1
    seen = await client.get(f"/v1/admin/tenants/{owner.tenant_id}/billing", headers=admin.headers)
    assert seen.status_code == 200, seen.text
    assert seen.json()["stripe_customer_id"] == customer
    assert (seen.json()["sent_entries"], seen.json()["unsent_entries"]) == (0, 0)
    # Stripe down: a 503 that says so, never an unhandled error.
    standin.fail_next = 1
    down = await client.post("/v1/billing/portal", headers=owner.headers)
    assert down.status_code == 503
    assert down.json()["type"].endswith("/billing-unavailable")


def _event(event_id: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def _deliver(
    client: Client, event: dict[str, Any], *, secret: str = SECRET, at: int | None = None
) -> Any:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=at)
    return await client.post(
        WEBHOOK, content=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"}
    )


async def _billing(client: Client, caller: Caller) -> dict[str, Any]:
    return dict((await client.get("/v1/billing", headers=caller.headers)).json())


async def test_webhook_events_are_handled_once_whatever_their_order(
    client: Client, billed: Settings, standin: StripeStandIn
) -> None:
    owner = await sign_up(client, "Studio")
    admin = await sign_up_admin(client, billed)
    assert (await client.post("/v1/billing/portal", headers=owner.headers)).status_code == 201
    (customer,) = standin.customers
    plans = {}
    for name in ("Indie", "Studio"):
        body = {"name": name, "stripe_price_id": f"price_{name.lower()}", "gpu_seconds_per_month": 3600}
        made = await client.post("/v1/admin/plans", json=body, headers=admin.headers)
        assert made.status_code == 201, made.text
        assert made.json()["stripe_price_id"] == f"price_{name.lower()}"
        plans[name] = made.json()["id"]

    # A payment fails: past due; the same event again changes nothing.
    standin.invoice("in_1", customer, "open")
    failed = _event("evt_failed", "invoice.payment_failed", {"id": "in_1", "customer": customer})
    assert (await _deliver(client, failed)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["status"] == "past_due"
    assert (await _deliver(client, failed)).json() == {"outcome": "duplicate"}
    # Paid: active again. A second failure event for the same invoice arriving late (it is
    # paid now) leaves it active, and so does a stale paid event for an unpaid invoice.
    standin.invoice("in_1", customer, "paid")
    paid = _event("evt_paid", "invoice.paid", {"id": "in_1", "customer": customer})
    assert (await _deliver(client, paid)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["status"] == "active"
    late = _event("evt_failed_late", "invoice.payment_failed", {"id": "in_1", "customer": customer})
    assert (await _deliver(client, late)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["status"] == "active"

    # A subscription made active from the start is known from its creation: Indie.
    standin.subscription("sub_1", customer, "active", "price_indie")
    created = _event(
        "evt_sub_created", "customer.subscription.created", {"id": "sub_1", "customer": customer}
    )
    assert (await _deliver(client, created)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["plan_id"] == plans["Indie"]
    # The subscription is read again: its stale payload names Indie, Stripe says Studio.
    standin.subscription("sub_1", customer, "active", "price_studio")
    stale = {"id": "sub_1", "customer": customer, "items": {"data": [{"price": {"id": "price_indie"}}]}}
    updated = _event("evt_sub_updated", "customer.subscription.updated", stale)
    assert (await _deliver(client, updated)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["plan_id"] == plans["Studio"]
    # Deleted, then an update delivered late: the tenant stays on the default plan.
    standin.subscription("sub_1", customer, "canceled", "price_studio")
    deleted = _event(
        "evt_sub_deleted", "customer.subscription.deleted", {"id": "sub_1", "customer": customer}
    )
    assert (await _deliver(client, deleted)).json() == {"outcome": "processed"}
    assert (await _billing(client, owner))["plan_id"] is None
    late_update = _event(
        "evt_sub_updated_late", "customer.subscription.updated", {"id": "sub_1", "customer": customer}
    )
    assert (await _deliver(client, late_update)).json() == {"outcome": "processed"}
    shown = await _billing(client, owner)
    assert (shown["plan_id"], shown["subscription_status"]) == (None, "canceled")

    # Events billing does not act on, and customers it does not know, are recorded and ignored.
    other = _event("evt_other", "charge.succeeded", {"id": "ch_1", "customer": customer})
    assert (await _deliver(client, other)).json() == {"outcome": "ignored"}
    stranger = _event("evt_stranger", "invoice.paid", {"id": "in_9", "customer": "cus_unknown"})
    assert (await _deliver(client, stranger)).json() == {"outcome": "ignored"}


async def test_webhook_refuses_what_stripe_did_not_sign_now(
    client: Client, billed: Settings, standin: StripeStandIn
) -> None:
    owner = await sign_up(client, "Studio")
    assert (await client.post("/v1/billing/portal", headers=owner.headers)).status_code == 201
    (customer,) = standin.customers
    standin.invoice("in_1", customer, "open")
    event = _event("evt_1", "invoice.payment_failed", {"id": "in_1", "customer": customer})
    now = int(time.time())
    refused = [
        await _deliver(client, event, secret="whsec_someone_else"),
        await _deliver(client, event, at=now - 400),  # stale: past the 300 s tolerance
        await _deliver(client, event, at=now + 400),  # ahead of this server's clock
        await client.post(WEBHOOK, content=json.dumps(event), headers={"Content-Type": "application/json"}),
        await client.post(WEBHOOK, content=b"not json", headers={"Stripe-Signature": "t=1,v1=00"}),
    ]
    for response in refused:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["type"].endswith("/bad-signature")
    # Signed properly but not JSON: still a 400, never a 5xx.
    body = "not json"
    header = stripe.WebhookSignature.generate_signature_header(body, SECRET)
    assert (await client.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})).status_code == 400
    assert (await _billing(client, owner))["status"] == "active"
    engine = create_engine(billed.database_url)
    async with AsyncSession(engine) as session:
        assert await session.scalar(select(func.count(StripeEvent.id))) == 0
    await engine.dispose()
    # Within the tolerance either way, it is accepted.
    assert (await _deliver(client, event, at=now + 200)).json() == {"outcome": "processed"}


async def test_a_sender_killed_mid_send_sends_each_entry_once(
    client: Client, billed: Settings, standin: StripeStandIn, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Studio")
    now = datetime.now(UTC)
    first, second, third = await _write_ledger(
        billed,
        owner.tenant_id,
        *((Charge.GENERATION_GPU_SECONDS, 10.0 + n, now - timedelta(minutes=3 - n)) for n in range(3)),
    )
    # Stripe accepts the second entry, then the connection hangs until the sender is killed.
    standin.stall = {second}
    workers = Workers(billed, tmp_path, roles="billing")
    try:
        sender = workers.start()
        with anyio.fail_after(120):  # it imports much on a busy machine
            while not standin.stalled.is_set():  # noqa: ASYNC110  (a thread's event, set by the stand-in)
                await anyio.sleep(0.1)
        assert sender.poll() is None
        sender.send_signal(signal.SIGKILL)
        sender.wait()
        assert standin.accepted_identifiers() == [first, second]
        assert await _sent(billed) == [first]  # accepted by Stripe, not recorded here
        standin.release.set()
        workers.start()  # a fresh sender finds the second entry unsent and sends it again
        with anyio.fail_after(120):
            while len(await _sent(billed)) < 3:  # noqa: ASYNC110  (another process writes it)
                await anyio.sleep(0.2)
    finally:
        workers.stop_all()
    assert standin.accepted_identifiers() == [first, second, third]
    assert standin.meter_requests(second) == 2
    assert sorted(await _sent(billed)) == sorted([first, second, third])


async def _subscribed(client: Client, standin: StripeStandIn, name: str, sub_id: str, status: str) -> Caller:
    """A tenant with a Stripe customer and a subscription in ``status``, as Stripe's webhook told it."""
    owner = await sign_up(client, name)
    assert (await client.post("/v1/billing/portal", headers=owner.headers)).status_code == 201
    customer = next(c["id"] for c in standin.customers.values() if c["name"] == name)
    standin.subscription(sub_id, customer, status, "price_metered")
    event = _event(f"evt_{sub_id}", "customer.subscription.updated", {"id": sub_id, "customer": customer})
    assert (await _deliver(client, event)).json() == {"outcome": "processed"}
    return owner


async def _delete(client: Client, owner: Caller, name: str) -> None:
    deleted = await client.request("DELETE", "/v1/tenant", json={"confirm": name}, headers=owner.headers)
    assert deleted.status_code == 204, deleted.text


async def _tombstones(settings: Settings) -> dict[str, DeletedTenant]:
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine) as session:
        mark_unscoped(session)
        rows = {str(row.deleted_tenant_id): row for row in await session.scalars(select(DeletedTenant))}
    await engine.dispose()
    return rows


async def _still_open(settings: Settings) -> bool:
    return any(t.billing_closed_at is None for t in (await _tombstones(settings)).values())


async def _close_round(billing: BillingSettings, settings: Settings) -> tuple[int, int]:
    engine = create_engine(settings.database_url)
    try:
        async with stripe_client(billing) as stripe_api:
            report = await close_deleted(session_factory(engine), stripe_api, billing.send_batch)
    finally:
        await engine.dispose()
    return report.closed, report.failed


async def test_a_deleted_tenants_subscription_is_cancelled_once(
    client: Client, billed: Settings, standin: StripeStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    subscribed = await _subscribed(client, standin, "Subscribed", "sub_live", "active")
    ended = await _subscribed(client, standin, "Ended", "sub_ended", "canceled")
    unbilled = await sign_up(client, "Unbilled")
    admin = await sign_up_admin(client, billed)
    await _delete(client, subscribed, "Subscribed")
    await _delete(client, ended, "Ended")
    removed = await client.delete(f"/v1/admin/tenants/{unbilled.tenant_id}", headers=admin.headers)
    assert removed.status_code == 204, removed.text

    tombstones = await _tombstones(billed)
    live = tombstones[subscribed.tenant_id]
    assert live.stripe_customer_id == standin.subscriptions["sub_live"]["customer"]
    assert (live.stripe_subscription_id, live.billing_closed_at) == ("sub_live", None)
    # A subscription that already ended has nothing to cancel; a tenant without a customer, nothing at all.
    assert tombstones[ended.tenant_id].stripe_customer_id == standin.subscriptions["sub_ended"]["customer"]
    assert tombstones[ended.tenant_id].stripe_subscription_id is None
    none = tombstones[unbilled.tenant_id]
    assert (none.stripe_customer_id, none.stripe_subscription_id, none.billing_closed_at) == (
        None,
        None,
        None,
    )

    # Stripe failing, then unreachable: left open for the next round.
    standin.fail_next = 1
    assert await _close_round(billed.billing, billed) == (0, 1)
    unreachable = billed.billing.model_copy(update={"api_base": f"http://127.0.0.1:{free_port()}"})
    assert await _close_round(unreachable, billed) == (0, 1)
    assert (await _tombstones(billed))[subscribed.tenant_id].billing_closed_at is None
    assert standin.subscriptions["sub_live"]["status"] == "active"
    warnings = [
        r.getMessage() for r in caplog.records if r.name == "rushes.billing" and r.levelname == "WARNING"
    ]
    assert len([w for w in warnings if "sub_live" in w and "not cancelled" in w]) == 2
    assert "sk_test_standin" not in caplog.text

    before = datetime.now(UTC)
    assert await _close_round(billed.billing, billed) == (1, 0)
    closed_at = (await _tombstones(billed))[subscribed.tenant_id].billing_closed_at
    assert closed_at is not None and closed_at >= before
    assert standin.subscriptions["sub_live"]["status"] == "canceled"
    cancels = standin.cancels("sub_live")
    assert len(cancels) == 2  # the 500, then the cancel (the unreachable round never arrived)
    assert all(r.params == {"invoice_now": "true", "prorate": "true"} for r in cancels)
    assert {r.headers["idempotency-key"] for r in cancels} == {f"rushes-close-{live.id}"}

    # Closed: the next round sends nothing, and the customer (its invoices) stays at Stripe.
    requests = len(standin.requests)
    assert await _close_round(billed.billing, billed) == (0, 0)
    assert len(standin.requests) == requests
    assert not [r for r in standin.requests if r.method == "DELETE" and r.path.startswith("/v1/customers")]
    assert live.stripe_customer_id in standin.customers


async def test_the_billing_role_closes_subscriptions_stripe_no_longer_bills(
    client: Client, billed: Settings, standin: StripeStandIn
) -> None:
    """Cancelled in Stripe meanwhile (Stripe refuses to cancel it again), or gone from Stripe
    (404): both are closed, by the billing role's own rounds, after a failing one."""
    cancelled = await _subscribed(client, standin, "Cancelled", "sub_cancelled", "active")
    missing = await _subscribed(client, standin, "Missing", "sub_missing", "active")
    await _delete(client, cancelled, "Cancelled")
    await _delete(client, missing, "Missing")
    standin.subscriptions["sub_cancelled"]["status"] = "canceled"  # in the dashboard, after the webhook
    del standin.subscriptions["sub_missing"]

    standin.fail_next = 1
    seen = len(standin.requests)
    engine = create_engine(billed.database_url)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run_billing_sender, session_factory(engine), billed.billing)
            with anyio.fail_after(30):
                while await _still_open(billed):  # noqa: ASYNC110  (the role, another task, writes it)
                    await anyio.sleep(0.1)
            group.cancel_scope.cancel()
    finally:
        await engine.dispose()
    refused, not_found = standin.cancels("sub_cancelled"), standin.cancels("sub_missing")
    assert (len(refused), len(not_found)) == (2, 1)  # the oldest first: the 500, then again
    # The refusal was told from others by reading the subscription: it had ended.
    reads = [r.path for r in standin.requests[seen:] if r.method == "GET"]
    assert reads == ["/v1/subscriptions/sub_cancelled"]


async def test_with_billing_off_a_deletion_records_nothing_for_stripe(
    settings: Settings, storage: ObjectStorage, standin: StripeStandIn
) -> None:
    async with AsyncTestClient(create_app(settings, storage)) as plain:
        owner = await sign_up(plain, "Unbilled")
        await _delete(plain, owner, "Unbilled")
    tombstone = (await _tombstones(settings))[owner.tenant_id]
    assert (tombstone.stripe_customer_id, tombstone.stripe_subscription_id) == (None, None)
    engine = create_engine(settings.database_url)
    try:
        with anyio.fail_after(5):  # off: the role returns at once
            await run_billing_sender(session_factory(engine), settings.billing)
    finally:
        await engine.dispose()
    assert standin.requests == []
