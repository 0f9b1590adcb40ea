"""A person with a browser: sign up, sign out, sign in, API keys, members, error pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, Visit, new_email, sign_up


def test_account_journey(visit: Callable[..., Visit], server: str) -> None:
    person = visit()
    person.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    page = person.page
    email = new_email("editor")

    person.goto("/")
    expect(page.get_by_role("heading", name="Rushes")).to_be_visible()
    person.shoot("home")
    person.goto("/signup")
    # The password rule is on the page before anything is submitted, tied to the field.
    expect(page.get_by_label("Password")).to_have_accessible_description(re.compile("At least 10 characters"))
    page.get_by_label("Studio name").fill("Northern Light Films")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("short")
    person.shoot("signup")
    # A password the browser would stop is refused by the server too, in words.
    page.get_by_label("Password").evaluate("field => field.removeAttribute('minlength')")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("Password: should have at least 10 characters")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{server}/app")
    expect(page.get_by_role("heading", name="Northern Light Films")).to_be_visible()
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    expect(page.get_by_text("No footage yet")).to_be_visible()
    person.shoot("overview")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin"))
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    person.goto("/app/api-keys")
    page.wait_for_url(re.compile(r"/signin\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password.")
    person.shoot("signin-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/app/api-keys")  # back where the person was going

    expect(page.get_by_text("No API keys yet")).to_be_visible()
    page.get_by_label("Name").fill("render farm")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("New API key").input_value()
    assert key.startswith("rsh_")
    page.get_by_role("button", name="Copy key").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key
    person.shoot("api-key-created")

    me = httpx.get(f"{server}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert me.status_code == 200 and me.json()["email"] == email

    person.goto("/app/api-keys")
    expect(page.get_by_label("New API key")).to_have_count(0)  # shown once
    row = page.get_by_role("row", name=re.compile("render farm"))
    expect(row).not_to_contain_text("never")  # last used: just now
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke render farm").click()
    expect(row).to_contain_text("Revoked")
    expect(page.locator("#messages")).to_contain_text("The key is revoked")
    person.shoot("api-keys")
    refused = httpx.get(f"{server}/v1/me", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert refused.status_code == 401

    person.goto("/app/members")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_role("button", name="Invite", exact=True).click()
    # An email with no account is invited like any other: the page does not say which it is.
    expect(page.get_by_label("Invitation link")).to_have_value(re.compile(r"/invitations/"))
    person.shoot("members")

    missing = page.goto(f"{server}/app/no-such-page")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()

    phone = visit(width=390, height=844)
    phone.goto("/signin")
    phone.page.get_by_label("Email").fill(email)
    phone.page.get_by_label("Password").fill(PASSWORD)
    phone.page.get_by_role("button", name="Sign in").click()
    phone.page.wait_for_url(f"{server}/app")
    phone.shoot("overview-phone")
    phone.goto("/app/api-keys")
    phone.shoot("api-keys-phone")
    width = phone.page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"

    for someone in (person, phone):
        assert someone.foreign_requests() == []
        assert someone.console_errors == []  # a CSP violation would be logged here


def test_cross_site_form_post_is_refused(visit: Callable[..., Visit], server: str) -> None:
    person = visit()
    sign_up(person, "Victim Studio", new_email("victim"))
    # Another origin on the same host (so the SameSite cookie still goes along): only the
    # server's own check stands between this form and a new API key.
    port = urlsplit(server).port
    attacker = f"http://127.0.0.1:{(port or 0) + 1}"
    form = (
        f'<form method="post" action="{server}/app/api-keys">'
        '<input name="name" value="planted"><button type="submit">Win a prize</button></form>'
    )
    person.context.route(f"{attacker}/**", lambda route: route.fulfill(body=form, content_type="text/html"))
    person.page.goto(f"{attacker}/prize")
    with person.page.expect_navigation():
        person.page.get_by_role("button", name="Win a prize").click()
    expect(person.page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(person.page.get_by_text("came from another site")).to_be_visible()
    person.shoot("cross-site-refused")

    person.goto("/app/api-keys")
    expect(person.page.get_by_text("No API keys yet")).to_be_visible()


def test_another_tenant_gets_the_404_page(visit: Callable[..., Visit], server: str) -> None:
    first = visit()
    sign_up(first, "First Tenant", new_email("first"))
    first.goto("/app/api-keys")
    first.page.get_by_label("Name").fill("ci")
    first.page.get_by_role("button", name="Create key").click()
    first.goto("/app/api-keys")
    href = first.page.get_by_role("link", name="ci").get_attribute("href")
    assert href and href.startswith("/app/api-keys/")
    opened = first.page.goto(server + href)
    assert opened is not None and opened.status == 200

    second = visit()
    sign_up(second, "Second Tenant", new_email("second"))
    seen = second.page.goto(server + href)
    assert seen is not None and seen.status == 404
    expect(second.page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(second.page.get_by_text("ci", exact=True)).to_have_count(0)
    second.shoot("not-found")
    revoke = second.page.request.post(f"{server}{href}/revoke", max_redirects=0)
    assert revoke.status == 404
    assert "text/html" in revoke.headers["content-type"]

    first.goto(href)
    expect(first.page.get_by_text("Active")).to_be_visible()
    for someone in (first, second):
        assert someone.foreign_requests() == []
