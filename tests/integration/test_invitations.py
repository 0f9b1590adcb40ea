"""Membership by invitation: an owner invites an email with a role and an expiry, the person
signed in with that email accepts or declines with the link's token, owners list and revoke
what is open, and a removed member's keys stay revoked for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.settings import Settings
from service.accounts.models import Invitation
from service.db.engine import create_engine
from tests.helpers import PASSWORD, Caller, add_member, invite_and_accept, sign_up

Client = AsyncTestClient[Litestar]


async def invite(client: Client, owner: Caller, email: str, **body: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/tenant/invitations", json={"email": email, **body}, headers=owner.headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def answer(client: Client, caller: Caller | None, verb: str, token: str) -> Any:
    """Accepts or declines (``verb``) the invitation whose link carries ``token``; no caller:
    the client's signed-in session."""
    headers = caller.headers if caller else None
    return await client.post(f"/v1/invitations/{verb}", json={"token": token}, headers=headers)


async def open_ids(client: Client, caller: Caller, path: str) -> list[str]:
    listed = await client.get(path, headers=caller.headers)
    assert listed.status_code == 200, listed.text
    items = listed.json()
    return [item["id"] for item in (items["items"] if isinstance(items, dict) else items)]


async def test_an_invitation_is_accepted_by_the_person_it_names(client: Client) -> None:
    owner = await sign_up(client, "Owner Co")
    joiner = await sign_up(client, "Joiner")
    invitation = await invite(client, owner, joiner.email.upper(), role="owner", expires_in_days=3)
    assert invitation["email"] == joiner.email and invitation["role"] == "owner"
    assert invitation["status"] == "pending" and invitation["link"] == f"/invitations/{invitation['token']}"
    expires = datetime.fromisoformat(invitation["expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    assert await open_ids(client, owner, "/v1/tenant/invitations") == [invitation["id"]]

    # Nobody else can answer it, not even holding its link: not the inviting owner, not a third person.
    bystander = await sign_up(client, "Bystander")
    for someone in (owner, bystander):
        stolen = await answer(client, someone, "accept", invitation["token"])
        assert stolen.status_code == 404

    accepted = await answer(client, joiner, "accept", invitation["token"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tenant"]["id"] == owner.tenant_id and accepted.json()["role"] == "owner"
    members = (await client.get("/v1/tenant/members", headers=owner.headers)).json()["items"]
    assert {m["email"]: m["role"] for m in members} == {owner.email: "owner", joiner.email: "owner"}
    # Used once: it is settled, listed nowhere, and cannot be accepted again.
    again = await answer(client, joiner, "accept", invitation["token"])
    assert again.status_code == 404
    assert await open_ids(client, owner, "/v1/tenant/invitations") == []
    login = await client.post(
        "/v1/auth/login", json={"email": joiner.email, "password": PASSWORD, "tenant_id": owner.tenant_id}
    )
    assert login.status_code == 200 and login.json()["role"] == "owner"
    # Already a member: inviting them again is refused (owners see members' emails anyway).
    client.cookies.clear()
    repeat = await client.post("/v1/tenant/invitations", json={"email": joiner.email}, headers=owner.headers)
    assert repeat.status_code == 409


async def test_the_answer_does_not_say_whether_the_email_has_an_account(client: Client) -> None:
    owner = await sign_up(client)
    existing = await sign_up(client, "Existing")
    known = await invite(client, owner, existing.email)
    unknown = await invite(client, owner, "not-signed-up-yet@example.com")
    assert known.keys() == unknown.keys()
    assert (known["status"], known["role"], known["invited_by"]) == (
        unknown["status"],
        unknown["role"],
        unknown["invited_by"],
    )
    # The email signs up later and accepts with the link it was sent.
    signed_up = await client.post(
        "/v1/auth/signup",
        json={"email": "not-signed-up-yet@example.com", "password": PASSWORD, "tenant_name": "Late"},
    )
    assert signed_up.status_code == 201
    accepted = await answer(client, None, "accept", unknown["token"])
    assert accepted.status_code == 200 and accepted.json()["role"] == "member"


async def test_decline_revoke_replace_and_expiry_close_an_invitation(
    client: Client, settings: Settings
) -> None:
    owner = await sign_up(client)
    invitee = await sign_up(client, "Invitee")

    declined = await invite(client, owner, invitee.email)
    no = await answer(client, invitee, "decline", declined["token"])
    assert no.status_code == 204
    late = await answer(client, invitee, "accept", declined["token"])
    assert late.status_code == 404
    gone = await client.delete(f"/v1/tenant/invitations/{declined['id']}", headers=owner.headers)
    assert gone.status_code == 409 and "declined" in gone.json()["detail"]

    revoked = await invite(client, owner, invitee.email)
    path = f"/v1/tenant/invitations/{revoked['id']}"
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    assert (await client.delete(path, headers=owner.headers)).status_code == 204
    late = await answer(client, invitee, "accept", revoked["token"])
    assert late.status_code == 404

    # Inviting again replaces the open invitation: only the newest link works.
    first = await invite(client, owner, invitee.email)
    second = await invite(client, owner, invitee.email, role="owner")
    assert await open_ids(client, owner, "/v1/tenant/invitations") == [second["id"]]
    stale = await answer(client, invitee, "accept", first["token"])
    assert stale.status_code == 404

    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(
            update(Invitation).where(Invitation.email == invitee.email).values(expires_at=past)
        )
    await engine.dispose()
    assert await open_ids(client, owner, "/v1/tenant/invitations") == []
    expired = await answer(client, invitee, "accept", second["token"])
    assert expired.status_code == 404

    too_long = await client.post(
        "/v1/tenant/invitations", json={"email": invitee.email, "expires_in_days": 31}, headers=owner.headers
    )
    assert too_long.status_code == 400


async def test_an_account_with_the_invited_email_but_not_the_link_cannot_answer(
    client: Client,
) -> None:
    """Emails are never verified: whoever signs up first with the invited email must not see
    or answer the invitation without its link, and its link is no use to any other account."""
    owner = await sign_up(client, "Target Co")
    invitation = await invite(client, owner, "x@example.com", role="owner")
    squatter = await client.post(
        "/v1/auth/signup", json={"email": "x@example.com", "password": PASSWORD, "tenant_name": "Squat"}
    )
    assert squatter.status_code == 201, squatter.text

    # No route lists it to the email: the old listing is gone, and the caller's own views hold
    # nothing of it.
    assert (await client.get("/v1/me/invitations")).status_code in {404, 405}
    for view in ("/v1/me", "/app"):
        seen = await client.get(view)
        assert seen.status_code == 200, view
        assert invitation["id"] not in seen.text and "Target Co" not in seen.text, view
    # The id (in the old routes' place, or as the token) answers nothing, nor does a wrong token.
    for verb in ("accept", "decline"):
        by_id = await client.post(f"/v1/invitations/{invitation['id']}/{verb}", json={})
        assert by_id.status_code in {404, 405}, by_id.text
        for token in (invitation["id"], invitation["token"][:-1], "not-the-token"):
            refused = await answer(client, None, verb, token)
            assert refused.status_code == 404, refused.text
            assert refused.json()["detail"] == "No such invitation for you, or it is no longer open."
    missing = await client.post("/v1/invitations/accept", json={})
    assert missing.status_code == 400, missing.text

    # The link in another account's hands is no use either.
    client.cookies.clear()
    other = await sign_up(client, "Other")
    for verb in ("accept", "decline"):
        assert (await answer(client, other, verb, invitation["token"])).status_code == 404
    assert await open_ids(client, owner, "/v1/tenant/invitations") == [invitation["id"]]

    # The invited email with the link joins, with the invited role.
    login = await client.post("/v1/auth/login", json={"email": "x@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    accepted = await answer(client, None, "accept", invitation["token"])
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["tenant"]["id"] == owner.tenant_id and accepted.json()["role"] == "owner"
    members = (await client.get("/v1/tenant/members", headers=owner.headers)).json()["items"]
    assert {m["email"]: m["role"] for m in members}["x@example.com"] == "owner"


async def test_another_tenants_invitation_is_not_found(client: Client) -> None:
    owner = await sign_up(client, "A")
    other = await sign_up(client, "B")
    invitation = await invite(client, owner, "someone@example.com")
    refused = await client.delete(f"/v1/tenant/invitations/{invitation['id']}", headers=other.headers)
    assert refused.status_code == 404
    assert (
        "someone@example.com" not in (await client.get("/v1/tenant/invitations", headers=other.headers)).text
    )
    assert await open_ids(client, owner, "/v1/tenant/invitations") == [invitation["id"]]


async def test_a_removed_members_keys_stay_revoked_after_they_rejoin(client: Client) -> None:
    owner = await sign_up(client, "Owner")
    member = await add_member(client, owner)
    # A second key made in the tenant, beside the one add_member made.
    second = await client.post("/v1/api-keys", json={"name": "spare"}, headers=member.headers)
    spare = {"Authorization": f"Bearer {second.json()['key']}"}
    assert (await client.get("/v1/me", headers=spare)).status_code == 200
    # The member's own tenant (made at sign-up) keeps its key: only this tenant's are revoked.
    home_key = await client.post(
        "/v1/auth/login", json={"email": member.email, "password": PASSWORD}
    )  # signs in to their first tenant, their own
    assert home_key.status_code == 200
    home = (await client.post("/v1/api-keys", json={"name": "home"})).json()["key"]
    client.cookies.clear()

    removed = await client.delete(f"/v1/tenant/members/{member.user_id}", headers=owner.headers)
    assert removed.status_code == 204
    for headers in (member.headers, spare):
        assert (await client.get("/v1/me", headers=headers)).status_code == 401
    keys = (await client.get("/v1/api-keys", headers=owner.headers)).json()["items"]
    made_by_member = [k for k in keys if k["created_by"] == member.user_id]
    assert len(made_by_member) == 2 and all(k["revoked_at"] for k in made_by_member)
    home_headers = {"Authorization": f"Bearer {home}"}
    assert (await client.get("/v1/me", headers=home_headers)).status_code == 200

    rejoined = Caller(member.email, "", member.user_id, home_headers)
    await invite_and_accept(client, owner, rejoined)
    for headers in (member.headers, spare):
        assert (await client.get("/v1/me", headers=headers)).status_code == 401
    keys = (await client.get("/v1/api-keys", headers=owner.headers)).json()["items"]
    assert all(k["revoked_at"] for k in keys if k["created_by"] == member.user_id)
