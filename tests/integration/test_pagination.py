"""Cursor pages (``starting_after``): a list read while it grows shows each item once, and a
cursor whose item has since left the list still says where the next page starts."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import Caller, sign_up

Client = AsyncTestClient[Litestar]


async def _dataset(client: Client, caller: Caller, name: str) -> str:
    made = await client.post("/v1/datasets", json={"name": name}, headers=caller.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _page(client: Client, caller: Caller, query: str) -> dict[str, Any]:
    listed = await client.get(f"/v1/datasets?{query}", headers=caller.headers)
    assert listed.status_code == 200, listed.text
    return dict(listed.json())


async def test_reading_a_newest_first_list_while_it_grows_sees_each_item_once(client: Client) -> None:
    caller = await sign_up(client)
    first = [await _dataset(client, caller, f"set {n}") for n in range(7)]
    seen: list[str] = []
    query = "limit=2"
    while True:
        page = await _page(client, caller, query)
        seen += [item["id"] for item in page["items"]]
        # New work lands at the front of a newest-first list while the client reads on; with
        # offsets every page after this one would repeat an item.
        await _dataset(client, caller, f"new after {len(seen)}")
        if len(page["items"]) < 2:
            break
        query = f"limit=2&starting_after={seen[-1]}"
    assert seen == first[::-1]


async def test_a_cursor_from_elsewhere_or_with_an_offset_is_refused(client: Client) -> None:
    caller, other = await sign_up(client), await sign_up(client)
    await _dataset(client, caller, "mine")
    theirs = await _dataset(client, other, "theirs")
    for query in (f"starting_after={theirs}", "starting_after=01a24c90-3653-711c-9b5d-06f1ed04b6e2"):
        refused = await client.get(f"/v1/datasets?{query}", headers=caller.headers)
        assert refused.status_code == 422, refused.text
        assert "starting_after" in refused.json()["detail"]
    both = await client.get(f"/v1/datasets?offset=1&starting_after={theirs}", headers=caller.headers)
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert (await client.get("/v1/datasets?starting_after=nope", headers=caller.headers)).status_code == 400


async def test_a_cursor_page_starts_right_after_its_item(client: Client) -> None:
    caller = await sign_up(client)
    for n in range(3):
        made = await client.post("/v1/api-keys", json={"name": f"k{n}"}, headers=caller.headers)
        assert made.status_code == 201, made.text
    listed = await client.get("/v1/api-keys?limit=50", headers=caller.headers)
    order = [item["id"] for item in listed.json()["items"]]
    for index, cursor in enumerate(order):
        rest = await client.get(f"/v1/api-keys?limit=2&starting_after={cursor}", headers=caller.headers)
        assert [item["id"] for item in rest.json()["items"]] == order[index + 1 : index + 3]
        assert rest.json()["total"] == len(order)


async def test_a_cursor_whose_item_left_the_list_still_pages(client: Client) -> None:
    owner = await sign_up(client)
    for n in range(3):
        made = await client.post(
            "/v1/tenant/invitations", json={"email": f"p{n}@example.com"}, headers=owner.headers
        )
        assert made.status_code == 201, made.text
    first = await client.get("/v1/tenant/invitations?limit=2", headers=owner.headers)
    seen = [item["id"] for item in first.json()["items"]]
    # The last item seen is revoked: open invitations no longer include it.
    revoked = await client.delete(f"/v1/tenant/invitations/{seen[-1]}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    rest = await client.get(
        f"/v1/tenant/invitations?limit=2&starting_after={seen[-1]}", headers=owner.headers
    )
    assert rest.status_code == 200, rest.text
    assert [item["email"] for item in rest.json()["items"]] == ["p0@example.com"]
