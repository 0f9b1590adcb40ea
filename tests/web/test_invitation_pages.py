"""Invitations in a browser: an owner invites by email and sends the link; the invitee opens it,
creates an account with that email and accepts; another, already signed up, declines from the
link (an overview lists no invitations: only a link's token opens one); an owner revokes one; a
used link is no longer anyone's."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, Visit, new_email, sign_up


def invite(owner: Visit, email: str) -> str:
    """Invites ``email`` from the members page; returns the link shown once."""
    owner.goto("/app/members")
    owner.page.get_by_label("Email").fill(email)
    owner.page.get_by_role("button", name="Invite", exact=True).click()
    link = owner.page.get_by_label("Invitation link").input_value()
    assert re.fullmatch(rf"{re.escape(owner.base)}/invitations/[\w-]+", link), link
    return link


def test_invite_and_accept_journey(visit: Callable[..., Visit], server: str) -> None:
    owner = visit()
    sign_up(owner, "Harbour Pictures", new_email("owner"))
    grader = new_email("grader")
    link = invite(owner, grader)
    expect(owner.page.get_by_role("row", name=re.compile(re.escape(grader)))).to_be_visible()
    owner.shoot("members-invited")

    invitee = visit()
    page = invitee.page
    page.goto(link)
    page.wait_for_url(re.compile(r"/signin\?next=%2Finvitations%2F"))
    expect(page.get_by_text("sign in with the email it was sent to")).to_be_visible()
    page.get_by_role("link", name="create an account").first.click()
    page.wait_for_url(re.compile(r"/signup\?next=/invitations/"))
    page.get_by_label("Studio name").fill("Grader's own")
    page.get_by_label("Email").fill(grader)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(link)  # back at the invitation, signed in
    expect(page.get_by_role("heading", name="Invitation to Harbour Pictures")).to_be_visible()
    invitee.shoot("invitation")
    page.get_by_role("button", name="Accept the invitation to Harbour Pictures").click()
    page.wait_for_url(f"{server}/app?notice=invitation-accepted")
    expect(page.get_by_role("heading", name="Harbour Pictures")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("You joined the tenant")

    owner.goto("/app/members")
    expect(owner.page.get_by_role("row", name=re.compile(re.escape(grader)))).to_contain_text("member")
    expect(owner.page.get_by_text("No open invitations.")).to_be_visible()

    # A used link is nobody's any more, the invitee's included.
    used = page.goto(link)
    assert used is not None and used.status == 404
    expect(page.get_by_text("No such invitation for you")).to_be_visible()

    for someone in (owner, invitee):
        assert someone.foreign_requests() == []
        assert someone.console_errors == []


def test_decline_from_the_link_and_revoke(visit: Callable[..., Visit], server: str) -> None:
    owner = visit()
    sign_up(owner, "Quay Films", new_email("owner"))
    colourist = visit()
    colourist_email = new_email("colourist")
    sign_up(colourist, "Colourist Ltd", colourist_email)
    link = invite(owner, colourist_email)

    # The invited email alone shows nothing: the overview names no invitation.
    colourist.goto("/app")
    expect(colourist.page.get_by_text("Quay Films")).to_have_count(0)
    colourist.page.goto(link)
    expect(colourist.page.get_by_text("Join Quay Films as a member")).to_be_visible()
    colourist.page.get_by_role("button", name="Decline the invitation to Quay Films").click()
    colourist.page.wait_for_url(f"{server}/app?notice=invitation-declined")
    declined = colourist.page.goto(link)
    assert declined is not None and declined.status == 404

    editor = new_email("editor")
    invite(owner, editor)
    owner.goto("/app/members")
    owner.page.get_by_role("button", name=f"Revoke the invitation for {editor}").click()
    owner.page.wait_for_url(f"{server}/app/members?notice=invitation-revoked")
    expect(owner.page.get_by_role("status")).to_contain_text("The invitation was revoked")
    expect(owner.page.get_by_text("No open invitations.")).to_be_visible()
    for someone in (owner, colourist):
        assert someone.foreign_requests() == []
        assert someone.console_errors == []
