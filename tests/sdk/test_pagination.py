"""The pagers against canned servers: one that pages properly, and ones that ignore where a
page should start, which must end in ``PagingError`` rather than a loop that never ends."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

import httpx
import pytest
import rushes

LIMIT = 2
CREATED = "2026-01-01T00:00:00Z"


def dataset(n: int) -> dict[str, Any]:
    return {"id": f"d{n}", "name": f"n{n}", "description": "", "created_at": CREATED, "updated_at": CREATED}


def member(n: int) -> dict[str, Any]:
    return {"user_id": f"u{n}", "email": f"{n}@example.com", "role": "member", "created_at": CREATED}


def server(
    make: Callable[[int], dict[str, Any]], total: int, honour: bool, requests: list[httpx.Request]
) -> httpx.MockTransport:
    """Answers a list of ``total`` items, newest first, ``LIMIT`` at a time; one that does not
    ``honour`` ``starting_after`` and ``offset`` answers the first page every time."""
    items = [make(n) for n in range(total)]

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        start = 0
        if honour and "starting_after" in request.url.params:
            start = [item["id"] for item in items].index(request.url.params["starting_after"]) + 1
        elif honour:
            start = int(request.url.params.get("offset", 0))
        page = {"items": items[start : start + LIMIT], "total": total, "limit": LIMIT, "offset": start}
        return httpx.Response(200, json=page)

    return httpx.MockTransport(answer)


def test_an_honest_server_is_read_to_the_end_by_cursor_and_by_offset() -> None:
    requests: list[httpx.Request] = []
    with rushes.Client(api_key="rsh_x", transport=server(dataset, 5, True, requests)) as client:
        assert [d.id for d in client.datasets.list()] == ["d0", "d1", "d2", "d3", "d4"]
    assert [r.url.params.get("starting_after") for r in requests] == [None, "d1", "d3"]
    requests.clear()
    with rushes.Client(api_key="rsh_x", transport=server(member, 5, True, requests)) as client:
        assert [m.user_id for m in client.tenant.members.list()] == ["u0", "u1", "u2", "u3", "u4"]
    assert [r.url.params.get("offset") for r in requests] == [None, "2", "4"]


@pytest.mark.parametrize(
    ("make", "where"),
    [(dataset, "starting_after=d1"), (member, "offset=2")],
    ids=["cursor", "offset"],
)
def test_a_server_answering_the_same_page_again_stops_the_pager(
    make: Callable[[int], dict[str, Any]], where: str
) -> None:
    requests: list[httpx.Request] = []
    seen: list[Any] = []
    with rushes.Client(api_key="rsh_x", transport=server(make, 5, False, requests)) as client:
        pager = client.datasets.list() if make is dataset else client.tenant.members.list()
        with pytest.raises(rushes.PagingError) as stuck:
            seen.extend(islice(pager, 10))  # bounded, so that a pager that loops fails the test
    # The first page once, then the error: nothing repeated, and two requests only.
    assert len(seen) == LIMIT and len(requests) == 2
    assert where in stuck.value.message and "never end" in stuck.value.message


async def test_the_async_pager_stops_too() -> None:
    requests: list[httpx.Request] = []
    seen: list[str] = []

    async def read(pager: rushes.AsyncPager[Any]) -> None:
        async for item in pager:
            seen.append(item.id)
            if len(seen) == 10:  # a pager that loops fails the test rather than hang it
                return

    async with rushes.AsyncClient(api_key="rsh_x", transport=server(dataset, 5, False, requests)) as client:
        with pytest.raises(rushes.PagingError):
            await read(client.datasets.list())
    assert seen == ["d0", "d1"] and len(requests) == 2
