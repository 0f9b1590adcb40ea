"""The tenant's danger zone over HTTP: owners export and delete (typing the name), as the API's."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import PASSWORD, Caller, add_member, sign_up

Client = AsyncTestClient[Litestar]


async def signed_in(client: Client, caller: Caller, tenant_id: str | None = None) -> None:
    client.cookies.clear()
    done = await client.post("/signin", data={"email": caller.email, "password": PASSWORD})
    assert done.status_code == 200, done.text
    if tenant_id:
        assert (await client.post("/app/switch-tenant", data={"tenant_id": tenant_id})).status_code == 200


async def test_owners_export_and_delete_the_tenant_by_its_name(client: Client) -> None:
    owner = await sign_up(client, "Danger")
    member = await add_member(client, owner)

    await signed_in(client, member, owner.tenant_id)
    assert "/app/tenant/delete" not in (await client.get("/app/members")).text
    assert (await client.get("/app/tenant/delete")).status_code == 403
    assert (await client.post("/app/tenant/delete", data={"confirm": "Danger"})).status_code == 403

    await signed_in(client, owner)
    assert "/app/tenant/delete" in (await client.get("/app/members")).text
    shown = await client.get("/app/tenant/delete")
    assert shown.status_code == 200 and 'href="/v1/tenant/export"' in shown.text
    exported = await client.get("/v1/tenant/export")  # the page's link, with the session cookie
    assert exported.status_code == 200 and exported.json()["tenant"]["id"] == owner.tenant_id
    wrong = await client.post("/app/tenant/delete", data={"confirm": "danger"})
    assert wrong.status_code == 422 and "Type the tenant&#39;s name exactly" in wrong.text
    assert (await client.get("/v1/tenant", headers=owner.headers)).status_code == 200

    deleted = await client.post("/app/tenant/delete", data={"confirm": "Danger"}, follow_redirects=False)
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/signin?notice=tenant-deleted"
    assert "The tenant was deleted" in (await client.get(deleted.headers["location"])).text
    assert (await client.get("/v1/tenant", headers=owner.headers)).status_code == 401
    assert (await client.get("/app/members", follow_redirects=False)).status_code in (303, 401)
