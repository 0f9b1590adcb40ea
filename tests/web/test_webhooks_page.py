"""The webhooks pages: a browser journey through an owner's endpoint, then the forms and the
delivery log over HTTP (faster), against the same services as ``/v1/webhooks``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from playwright.sync_api import Dialog, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from service.db.engine import create_engine, session_factory
from tests.helpers import PASSWORD, Caller, add_member, sign_up
from tests.integration.test_webhooks import HOOKS, LATER, add_events, create_hook, dispatch, make_job
from tests.web.conftest import Visit, new_email
from tests.web.conftest import sign_up as sign_up_in_browser
from tests.webhook_receiver import Receiver, running_receiver

Client = AsyncTestClient[Litestar]
# A public address written as one, so no name needs resolving where the tests run.
PUBLIC_URL = "https://93.184.215.14/rushes-hook"
PRIVATE_URL = "https://10.1.2.3/hook"


def test_an_owner_manages_an_endpoint_in_the_browser(visit: Callable[..., Visit]) -> None:
    owner = visit()
    sign_up_in_browser(owner, "Hooks Studio", new_email("hooks"))
    page = owner.page
    owner.goto("/app/webhooks")
    expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()

    page.get_by_label("URL").fill(PUBLIC_URL)
    page.get_by_label("Description").fill("render notifier")
    page.get_by_label("fine_tune.progress").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.get_by_label("Signing secret")
    expect(secret).to_have_value(re.compile(r".{20,}"))
    expect(page.get_by_role("button", name="Copy secret")).to_be_visible()
    row = page.locator("tbody tr", has_text=PUBLIC_URL)
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("none yet")
    owner.shoot("webhooks")

    # Shown once: the list, loaded again, no longer holds it.
    owner.goto("/app/webhooks")
    expect(page.get_by_label("Signing secret")).to_have_count(0)
    page.get_by_role("link", name=PUBLIC_URL).click()
    expect(page.get_by_role("heading", name="Webhook endpoint")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("fine_tune.progress")

    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#messages")).to_contain_text("The endpoint is disabled")
    expect(page.locator(".facts")).to_contain_text("Disabled")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()

    # A private address is refused in words beside the form, never as JSON.
    page.get_by_label("URL").fill(PRIVATE_URL)
    page.get_by_role("button", name="Save changes").click()
    errors = page.get_by_role("alert")
    expect(errors).to_contain_text("10.1.2.3, which is not a public address (private)")
    assert "{" not in errors.inner_text()
    expect(page.get_by_label("URL")).to_have_value(PRIVATE_URL)
    expect(page.locator(".facts")).to_contain_text(PUBLIC_URL)  # the stored one is unchanged
    owner.shoot("webhook")

    def accept(dialog: Dialog) -> None:
        assert "Delete the endpoint" in dialog.message
        dialog.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete endpoint").click()
    page.wait_for_url(f"{owner.base}/app/webhooks?notice=webhook-deleted")
    expect(page.locator("#messages")).to_contain_text("The webhook endpoint was deleted")
    expect(page.get_by_text("No webhook endpoints yet.")).to_be_visible()
    assert owner.foreign_requests() == []
    assert owner.console_errors == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks": HOOKS})


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def signed_in(client: Client, caller: Caller) -> None:
    client.cookies.clear()
    done = await client.post("/signin", data={"email": caller.email, "password": PASSWORD})
    assert done.status_code == 200, done.text


async def test_forms_refuse_in_words_and_change_the_endpoint(client: Client) -> None:
    owner = await sign_up(client, "Forms")
    await signed_in(client, owner)
    none_ticked = await client.post("/app/webhooks", data={"url": PUBLIC_URL})
    assert none_ticked.status_code == 400
    assert "Events: list should have at least 1 item" in none_ticked.text
    bad_scheme = await client.post(
        "/app/webhooks", data={"url": "ftp://x.example/", "event_types": ["quota.warning"]}
    )
    assert bad_scheme.status_code == 400
    assert "The webhook URL must be an absolute https:// URL." in bad_scheme.text

    made = await client.post(
        "/app/webhooks", data={"url": PUBLIC_URL, "event_types": ["fine_tune.succeeded", "quota.warning"]}
    )
    assert made.status_code == 201
    (hook,) = (await client.get("/v1/webhooks")).json()["items"]
    assert hook["event_types"] == ["fine_tune.succeeded", "quota.warning"]
    assert "Copy its signing secret now" in made.text
    assert "Copy its signing secret now" not in (await client.get("/app/webhooks")).text

    edited = await client.post(
        f"/app/webhooks/{hook['id']}",
        data={"url": PUBLIC_URL + "/v2", "description": "v2", "event_types": ["generation.succeeded"]},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    stored = (await client.get(f"/v1/webhooks/{hook['id']}")).json()
    assert (stored["url"], stored["description"], stored["event_types"]) == (
        PUBLIC_URL + "/v2",
        "v2",
        ["generation.succeeded"],
    )
    assert (await client.post(f"/app/webhooks/{hook['id']}/disable")).status_code == 200
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()["enabled"] is False
    assert (await client.post(f"/app/webhooks/{hook['id']}/enable")).status_code == 200
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).json()["enabled"] is True
    assert (await client.post(f"/app/webhooks/{hook['id']}/delete")).status_code == 200
    assert (await client.get(f"/v1/webhooks/{hook['id']}")).status_code == 404


async def test_the_delivery_log_shows_attempts_and_sends_again(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession], receiver: Receiver
) -> None:
    owner = await sign_up(client, "Deliveries")
    hook = await create_hook(client, owner, receiver.url)
    job_id = await make_job(sessions, owner)
    await add_events(sessions, owner.tenant_id, job_id, "failed")
    receiver.fail_next = 1
    await dispatch(settings, sessions)
    await signed_in(client, owner)
    listed = await client.get("/app/webhooks")
    assert "Pending" in listed.text and "fine_tune.failed" in listed.text
    shown = await client.get(f"/app/webhooks/{hook['id']}")
    assert "HTTP 500" in shown.text and "Send again" not in shown.text  # still being retried

    await dispatch(settings, sessions, now=datetime.now(UTC) + LATER)
    shown = await client.get(f"/app/webhooks/{hook['id']}")
    assert "Delivered" in shown.text and "HTTP 200" in shown.text
    (delivery,) = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    again = await client.post(f"/app/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert again.status_code == 200
    assert "The delivery is queued again" in again.text and "Pending" in again.text


async def test_members_see_endpoints_and_other_tenants_get_the_404_page(client: Client) -> None:
    owner = await sign_up(client, "Owner")
    hook = await create_hook(client, owner, PUBLIC_URL)
    member = await add_member(client, owner)
    await signed_in(client, member)
    switched = await client.post("/app/switch-tenant", data={"tenant_id": owner.tenant_id})
    assert switched.status_code == 200
    shown = await client.get(f"/app/webhooks/{hook['id']}")
    assert shown.status_code == 200 and PUBLIC_URL in shown.text
    assert "Delete endpoint" not in shown.text and "Save changes" not in shown.text
    assert "Add an endpoint" not in (await client.get("/app/webhooks")).text

    stranger = await sign_up(client, "Stranger")
    await signed_in(client, stranger)
    for method, path in [
        ("GET", f"/app/webhooks/{hook['id']}"),
        ("POST", f"/app/webhooks/{hook['id']}"),
        ("POST", f"/app/webhooks/{hook['id']}/disable"),
        ("POST", f"/app/webhooks/{hook['id']}/delete"),
    ]:
        response = await client.request(
            method, path, data={"url": PUBLIC_URL, "event_types": ["quota.warning"]}
        )
        assert response.status_code == 404, (method, path)
        assert "Page not found" in response.text
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=owner.headers)).json()["enabled"] is True
