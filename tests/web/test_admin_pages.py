"""The admin console: platform admins only (everyone else gets the API's 403), tenants with
their usage, a tenant's status, plan, overrides, compute share, ledger and billing, and plans."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.sync_api import expect

from core.settings import Settings
from service.usage.models import Charge
from tests.helpers import PASSWORD, sign_up, sign_up_admin
from tests.web.conftest import Visit, new_email
from tests.web.conftest import sign_up as sign_up_in_browser
from tests.web.operators import make_admin, sign_in, write_ledger
from tests.web.test_page_routes import page_routes

Client = AsyncTestClient[Litestar]


async def test_only_platform_admins_reach_the_console(
    app: Litestar, client: Client, settings: Settings
) -> None:
    admin = await sign_up_admin(client, settings)
    owner = await sign_up(client, "Owners")
    api_refusal = await client.get("/v1/admin/tenants", headers=owner.headers)
    assert api_refusal.status_code == 403
    routes = [(method, path) for method, path, _ in page_routes(app) if path.startswith("/admin")]
    assert ("GET", "/admin") in routes and len(routes) >= 12
    signed_in = await client.post(
        "/signin", data={"email": owner.email, "password": PASSWORD}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    own = ("POST", f"/admin/tenants/{owner.tenant_id}/status")
    for method, path in [*routes, own, ("GET", "/admin/no/such/page")]:
        # A tenant owner is refused like the admin API refuses them, before anything is read or changed.
        response = await client.request(method, path, data={"status": "suspended", "name": "x"})
        assert response.status_code == 403, (method, path)
        assert "text/html" in response.headers["content-type"]
        assert api_refusal.json()["detail"].replace("'", "&#39;") in response.text
    client.cookies.clear()
    # An admin's own session cannot be made to post from another site either (the app-wide guard).
    await client.post("/signin", data={"email": admin.email, "password": PASSWORD}, follow_redirects=False)
    forged = await client.post(
        f"/admin/tenants/{owner.tenant_id}/status",
        data={"status": "suspended"},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403 and "another site" in forged.text
    shown = await client.get(f"/v1/admin/tenants/{owner.tenant_id}", headers=admin.headers)
    assert shown.json()["status"] == "active"  # neither the owner nor the forged post changed it
    client.cookies.clear()
    assert not [path for path in app.openapi_schema.to_schema()["paths"] if path.startswith("/admin")]
    # An admin's unknown console address is the 404 page; a tenant id that is not one too.
    assert (await client.get("/admin", headers=admin.headers)).status_code == 200
    assert (await client.get("/admin/nowhere", headers=admin.headers)).status_code == 404
    missing = await client.get(f"/admin/tenants/{owner.user_id}", headers=admin.headers)
    assert missing.status_code == 404 and "No such tenant." in missing.text


async def test_admin_forms_answer_odd_numbers_in_words(client: Client, settings: Settings) -> None:
    admin = await sign_up_admin(client, settings)
    owner = await sign_up(client, "Owners")
    await client.post("/signin", data={"email": admin.email, "password": PASSWORD}, follow_redirects=False)
    # "²" passes str.isdigit, which int() then refuses: a word, not a 500.
    plan = await client.post("/admin/plans", data={"name": "Odd", "models": "²"})
    assert plan.status_code == 400 and "Models: enter a whole number" in plan.text
    # "limit" chosen with nothing but separators typed is not quietly "unlimited".
    tenant = f"/admin/tenants/{owner.tenant_id}"
    saved = await client.post(f"{tenant}/quotas", data={"mode_models": "limit", "limit_models": " , "})
    assert saved.status_code == 400 and "Models: enter the limit" in saved.text
    shown = await client.get(f"/v1/admin/tenants/{owner.tenant_id}/quotas", headers=admin.headers)
    assert shown.status_code == 200 and shown.json()["overrides"] == {}


def test_admin_console_journey(visit: Callable[..., Visit], web_settings: Settings) -> None:
    studio = visit()
    sign_up_in_browser(studio, "Harbour Lights Pictures", new_email("producer"))
    tenant_id = studio.page.request.get(f"{studio.base}/v1/me").json()["tenant"]["id"]
    now = datetime.now(UTC)
    write_ledger(
        web_settings,
        tenant_id,
        (Charge.FINE_TUNE_GPU_SECONDS, 5400.0, now),
        (Charge.GENERATION_GPU_SECONDS, 90.0, now),
        (Charge.FINE_TUNE_GPU_SECONDS, -600.0, now),
    )
    email = new_email("operator")
    make_admin(web_settings, email)
    admin = visit()
    sign_in(admin, email)
    page = admin.page

    # The tenants, with this month's GPU time (charges less the credit: 4890 s) and plan.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    page.wait_for_url(f"{admin.base}/admin")
    row = page.get_by_role("row", name=re.compile("Harbour Lights Pictures"))
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("default")
    expect(row).to_contain_text("1 h 21 min")
    expect(page.get_by_role("row", name=re.compile("Platform"))).to_be_visible()
    admin.shoot("admin-tenants")
    page.get_by_label("Tenant name contains").fill("harbour")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row")).to_have_count(2)  # the header and the one tenant
    page.get_by_label("Tenant name contains").fill("nobody by this name")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No tenant's name contains")).to_be_visible()

    # A plan with limits, made from its form; a bad limit is refused in words first.
    page.get_by_role("navigation", name="Admin console").get_by_role("link", name="Plans").click()
    expect(page.get_by_role("row", name=re.compile("default"))).to_contain_text("Unlimited")
    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Name", exact=True).fill("Indie")
    page.get_by_label("GPU time this month (seconds)").fill("6000")
    page.get_by_label("Models (a count)").fill("two")
    page.get_by_role("button", name="Create plan").click()
    expect(page.get_by_role("alert")).to_contain_text("Models: enter a whole number")
    page.get_by_label("Models (a count)").fill("3")
    page.get_by_label("Storage (bytes)").fill("5000000000")
    page.get_by_role("button", name="Create plan").click()
    expect(page.get_by_role("status")).to_contain_text("The plan was created.")
    indie = page.get_by_role("row", name=re.compile("Indie"))
    expect(indie).to_contain_text("1 h 40 min")
    expect(indie).to_contain_text("5.0 GB")
    page.get_by_role("link", name="Indie").click()
    expect(page.get_by_label("Models (a count)")).to_have_value("3")
    admin.shoot("admin-plan")
    page.get_by_label("Models (a count)").fill("4")
    page.get_by_role("button", name="Save plan").click()
    expect(page.get_by_role("row", name=re.compile("Indie"))).to_contain_text("4")
    admin.shoot("admin-plans")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # every limit fits

    # The tenant: onto the plan, with an override, a compute share; its ledger and billing.
    page.get_by_role("link", name="Tenants").click()
    page.get_by_role("link", name="Harbour Lights Pictures").click()
    expect(page.locator("#billing-off")).to_contain_text("Billing is off")
    expect(page.get_by_role("table", name="Charges and credits, newest first")).to_contain_text("Credit")
    page.get_by_label("Plan", exact=True).select_option(label="Indie")
    page.locator("#mode-storage_bytes").select_option("limit")
    page.get_by_label("Storage override (bytes)").fill("abc")
    page.get_by_role("button", name="Save plan and overrides").click()
    expect(page.get_by_role("alert")).to_contain_text("Storage: enter a whole number")
    page.get_by_label("Storage override (bytes)").fill("1000000")
    page.locator("#mode-models").select_option("unlimited")
    page.get_by_role("button", name="Save plan and overrides").click()
    expect(page.get_by_role("status")).to_contain_text("The plan and quota overrides were saved.")
    expect(page.locator("#quota-gpu_seconds_per_month")).to_contain_text("1 h 40 min")
    expect(page.locator("#quota-gpu_seconds_per_month")).to_contain_text("Nearly used up")  # 4890 of 6000
    expect(page.locator("#quota-storage_bytes")).to_contain_text("1.0 MB")
    expect(page.locator("#quota-models")).to_contain_text("Unlimited")
    expect(page.get_by_label("Storage override (bytes)")).to_have_value("1000000")
    page.get_by_label("Fair-share weight").fill("0")
    page.get_by_role("button", name="Save compute share").click()
    expect(page.get_by_role("alert")).to_contain_text("Weight: input should be greater than 0")
    page.get_by_label("Fair-share weight").fill("2.5")
    page.get_by_label("Concurrency cap").fill("1")
    page.get_by_role("button", name="Save compute share").click()
    expect(page.get_by_role("status")).to_contain_text("The compute share was saved")
    expect(page.get_by_label("Fair-share weight")).to_have_value("2.5")
    expect(page.get_by_label("Concurrency cap")).to_have_value("1")
    admin.shoot("admin-tenant")

    # The tenant sees the same figures and the plan the admin chose.
    studio.goto("/app/usage")
    expect(studio.page.get_by_text("Plan: Indie")).to_be_visible()
    expect(studio.page.locator("#quota-gpu_seconds_per_month")).to_contain_text("Nearly used up")
    expect(studio.page.locator("#billing-off")).to_be_visible()

    # Past due: its members still read, but are told nothing new starts.
    page.get_by_role("button", name="Mark past due").click()
    expect(page.get_by_role("status")).to_contain_text("nothing new starts until billing is settled")
    expect(page.locator("#tenant-status")).to_have_text("Payment past due")
    studio.goto("/app/usage")
    expect(studio.page.get_by_role("alert")).to_contain_text("A payment failed: nothing new can start.")
    # Suspended: its session stops working; activated: it works again.
    page.get_by_role("button", name="Suspend").click()
    expect(page.locator("#tenant-status")).to_have_text("Suspended")
    studio.goto("/app/usage")
    expect(studio.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(studio.page.get_by_text("This tenant is suspended")).to_be_visible()
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#tenant-status")).to_have_text("Active")
    studio.goto("/app/usage")
    expect(studio.page.get_by_role("heading", name="Usage and billing")).to_be_visible()
    expect(studio.page.get_by_role("alert")).to_have_count(0)

    # A plan in use cannot be deleted: said in words; once the tenant moves off it, it can.
    page.get_by_role("link", name="Plans").click()
    page.get_by_role("button", name="Delete Indie").click()
    expect(page.get_by_role("alert")).to_contain_text("1 tenant(s) are on plan 'Indie'")
    page.goto(f"{admin.base}/admin/tenants/{tenant_id}")
    page.get_by_label("Plan", exact=True).select_option(label="The default plan")
    page.get_by_role("button", name="Save plan and overrides").click()
    expect(page.get_by_text("(the default plan)")).to_be_visible()
    page.goto(f"{admin.base}/admin/plans")
    page.get_by_role("button", name="Delete Indie").click()
    expect(page.get_by_role("status")).to_contain_text("The plan was deleted.")
    expect(page.get_by_role("row", name=re.compile("Indie"))).to_have_count(0)

    for person in (studio, admin):
        assert person.foreign_requests() == []
        assert person.console_errors == []
