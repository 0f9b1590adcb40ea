"""Usage and billing, as a tenant's members see it: each quota against its limit with the
80 % and 100 % states, the ledger paged newest first, and Stripe's billing portal (against
the Stripe stand-in). Billing switched off, and the past-due banner, are in the admin journey
(``test_admin_pages.py``), where an admin sets them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect
from pydantic import SecretStr

from core.settings import BillingSettings, Settings
from service.quotas.limits import next_month
from service.usage.models import Charge
from tests.stripe_standin import StripeStandIn, running_standin
from tests.web.conftest import PASSWORD, Visit, new_email, sign_up
from tests.web.operators import make_admin, sign_in, write_ledger

PORTAL = "https://billing.stripe.test/p/session/"
# What the page writes between a range's ends and before a credit.
DASH, MINUS = "\u2013", "\u2212"


@pytest.fixture
def standin() -> Iterator[StripeStandIn]:
    with running_standin() as running:
        yield running


@pytest.fixture
def web_settings(web_settings: Settings, standin: StripeStandIn) -> Settings:
    """The server bills through the Stripe stand-in."""
    billing = BillingSettings(
        stripe_api_key=SecretStr("sk_test_standin"), api_base=standin.url, request_timeout_seconds=5.0
    )
    return web_settings.model_copy(update={"billing": billing})


def set_overrides(server: str, settings: Settings, tenant_id: str, overrides: dict[str, int | None]) -> None:
    """An admin's overrides, through the admin API."""
    email = new_email("operator")
    make_admin(settings, email)
    with httpx.Client(base_url=server, timeout=30) as admin:
        signed_in = admin.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        done = admin.patch(f"/v1/admin/tenants/{tenant_id}/quotas", json={"overrides": overrides})
        assert done.status_code == 200, done.text


def test_usage_and_billing_page(
    visit: Callable[..., Visit], server: str, web_settings: Settings, standin: StripeStandIn
) -> None:
    owner, email = visit(), new_email("owner")
    sign_up(owner, "Quiet Hours Films", email)
    page = owner.page
    tenant_id = page.request.get(f"{server}/v1/me").json()["tenant"]["id"]
    now = datetime.now(UTC)
    # 52 fine-tune charges of 100 s, a video's 200 s, then its outputs, then a credit of 400 s:
    # 5000 GPU seconds this month, newest first the credit.
    charges = [(Charge.FINE_TUNE_GPU_SECONDS, 100.0, now - timedelta(minutes=60 - i)) for i in range(52)]
    write_ledger(
        web_settings,
        tenant_id,
        *charges,
        (Charge.GENERATION_GPU_SECONDS, 200.0, now - timedelta(minutes=5)),
        (Charge.OUTPUT_BYTES, 2_500_000.0, now - timedelta(minutes=4)),
        (Charge.FINE_TUNE_GPU_SECONDS, -400.0, now - timedelta(minutes=1)),
    )
    set_overrides(server, web_settings, tenant_id, {"gpu_seconds_per_month": 6000, "storage_bytes": 0})

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    page.wait_for_url(f"{server}/app/usage")
    expect(page.get_by_role("heading", name="Usage and billing")).to_be_visible()
    expect(page.get_by_text("Plan: default")).to_be_visible()
    resets = next_month(datetime.now(UTC)).strftime("%d %B %Y")
    expect(page.get_by_text(f"GPU time starts again on {resets}")).to_be_visible()
    # 5000 of 6000 s: the warning state; storage limited to nothing: reached; models: no limit.
    gpu = page.locator("#quota-gpu_seconds_per_month")
    expect(gpu).to_contain_text("1 h 23 min")
    expect(gpu).to_contain_text("1 h 40 min")
    expect(gpu).to_contain_text("83 %")
    expect(gpu).to_contain_text("Nearly used up")
    expect(gpu.get_by_role("progressbar", name="GPU time this month: 83 % used")).to_have_attribute(
        "value", "5000.0"
    )
    storage = page.locator("#quota-storage_bytes")
    expect(storage).to_contain_text("Limit reached")
    expect(storage).to_contain_text("New work that needs it is refused")
    expect(page.locator("#quota-models")).to_contain_text("No limit")
    expect(page.locator("#quota-max_upload_bytes")).to_contain_text("Unlimited")

    # The ledger, newest first, kinds in words, the credit marked; 55 entries on two pages.
    ledger = page.get_by_role("table", name="Charges and credits, newest first")
    rows = ledger.locator("tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.nth(0)).to_contain_text("Fine-tune GPU time")
    expect(rows.nth(0)).to_contain_text("Credit")
    expect(rows.nth(0)).to_contain_text(f"{MINUS}6 min 40 s")
    expect(rows.nth(1)).to_contain_text("Video outputs stored")
    expect(rows.nth(1)).to_contain_text("2.5 MB")
    expect(rows.nth(2)).to_contain_text("Video GPU time")
    expect(rows.nth(2)).to_contain_text("3 min 20 s")
    expect(rows.nth(3)).to_contain_text("1 min 40 s")
    expect(rows.nth(3)).not_to_contain_text("Credit")
    expect(page.get_by_text(f"Showing 1{DASH}50 of 55.")).to_be_visible()
    page.get_by_role("link", name="Older").click()
    expect(page.get_by_text(f"Showing 51{DASH}55 of 55.")).to_be_visible()
    expect(rows).to_have_count(5)
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.get_by_role("link", name="Newer").click()
    expect(page.get_by_text(f"Showing 1{DASH}50 of 55.")).to_be_visible()
    owner.goto("/app/usage?limit=8")
    expect(rows).to_have_count(8)
    owner.shoot("usage")

    # Billing through Stripe: the plan, no subscription yet; the portal opens from the button.
    billing = page.get_by_role("region", name="Billing")
    expect(billing).to_contain_text("default")
    expect(billing).to_contain_text("none yet")
    page.route(
        f"{PORTAL}**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<h1>Stripe portal</h1>"),
    )
    page.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(re.compile(re.escape(PORTAL)))
    expect(page.get_by_role("heading", name="Stripe portal")).to_be_visible()
    (customer,) = standin.customers
    sessions = [r for r in standin.requests if r.path == "/v1/billing_portal/sessions"]
    assert [r.params["customer"] for r in sessions] == [customer]
    # The one page on another host is the portal, opened by the person's own click.
    assert [urlsplit(url).hostname for url in owner.foreign_requests()] == ["billing.stripe.test"]
    assert owner.console_errors == []

    # On a phone the page fits the width; pages of the ledger keep the size asked for.
    phone = visit(width=390, height=844)
    sign_in(phone, email)
    phone.goto("/app/usage?limit=5")
    expect(phone.page.get_by_text(f"Showing 1{DASH}5 of 55.")).to_be_visible()
    phone.shoot("usage-phone")
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    assert phone.foreign_requests() == [] and phone.console_errors == []


def test_the_portal_refused_by_stripe_is_said_in_words(
    visit: Callable[..., Visit], server: str, standin: StripeStandIn
) -> None:
    owner = visit()
    sign_up(owner, "Rain Delay", new_email("owner"))
    owner.goto("/app/usage")
    standin.fail_next = 1  # Stripe answers 500 to the customer create
    owner.page.get_by_role("button", name="Manage billing").click()
    expect(owner.page.get_by_text("Stripe could not open the billing portal")).to_be_visible()
    assert owner.foreign_requests() == []
