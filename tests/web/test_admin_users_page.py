"""The admin console's users, over HTTP: every account, oldest first, paged as
``GET /v1/admin/users``; anyone but a platform admin is refused with the admin API's 403."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from tests.helpers import PASSWORD, Caller, sign_up, sign_up_admin

Client = AsyncTestClient[Litestar]
DASH = "\u2013"  # between a page's first and last row


async def signed_in(client: Client, caller: Caller) -> None:
    client.cookies.clear()
    done = await client.post("/signin", data={"email": caller.email, "password": PASSWORD})
    assert done.status_code == 200, done.text


async def test_admins_list_every_user_and_no_one_else_can(client: Client, settings: Settings) -> None:
    admin = await sign_up_admin(client, settings)
    users = [await sign_up(client, f"Studio {n}") for n in range(3)]
    await signed_in(client, users[0])
    refused = await client.get("/admin/users")
    assert refused.status_code == 403 and "Only platform admins may do this." in refused.text

    await signed_in(client, admin)
    shown = (await client.get("/admin/users")).text
    emails = [admin.email, *(user.email for user in users)]
    assert [shown.index(email) for email in emails] == sorted(shown.index(email) for email in emails)
    assert shown.count("Platform admin</span>") == 1 and f"Showing 1{DASH}4 of 4." in shown
    second = (await client.get("/admin/users?limit=2&offset=2")).text
    assert users[1].email in second and users[0].email not in second
    assert f"Showing 3{DASH}4 of 4." in second and 'href="/admin/users?offset=0&amp;limit=2"' in second
