"""A POST repeated with its Idempotency-Key gets the first answer back and acts once."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from core.settings import Settings
from service.db.engine import create_engine
from service.idempotency.models import IdempotencyRecord
from tests.conftest import Parallel
from tests.helpers import sign_up

Client = AsyncTestClient[Litestar]


async def test_a_repeated_create_is_answered_from_the_first(client: Client) -> None:
    caller = await sign_up(client)
    headers = caller.headers | {"Idempotency-Key": "create-harbour-1"}
    first = await client.post("/v1/datasets", json={"name": "Harbour"}, headers=headers)
    again = await client.post("/v1/datasets", json={"name": "Harbour"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert (await client.get("/v1/datasets", headers=caller.headers)).json()["total"] == 1
    # Refusals are kept too: the same duplicate name answers the same 409 each time.
    clash = caller.headers | {"Idempotency-Key": "create-harbour-2"}
    refused = [await client.post("/v1/datasets", json={"name": "Harbour"}, headers=clash) for _ in range(2)]
    assert [r.status_code for r in refused] == [409, 409]


async def test_a_key_reused_for_another_request_is_refused(client: Client) -> None:
    caller = await sign_up(client)
    headers = caller.headers | {"Idempotency-Key": "k-1"}
    assert (await client.post("/v1/datasets", json={"name": "A"}, headers=headers)).status_code == 201
    reused = await client.post("/v1/datasets", json={"name": "B"}, headers=headers)
    assert reused.status_code == 422
    assert "different request" in reused.json()["detail"]
    too_long = await client.post(
        "/v1/datasets", json={"name": "C"}, headers=caller.headers | {"Idempotency-Key": "x" * 256}
    )
    assert too_long.status_code == 422


async def test_keys_belong_to_their_tenant(client: Client) -> None:
    first, second = await sign_up(client, "One"), await sign_up(client, "Two")
    for caller in (first, second):
        made = await client.post(
            "/v1/datasets", json={"name": "Same"}, headers=caller.headers | {"Idempotency-Key": "shared"}
        )
        assert made.status_code == 201 and "idempotent-replayed" not in made.headers
    assert (await client.get("/v1/datasets", headers=second.headers)).json()["total"] == 1


async def test_fifty_concurrent_creates_with_one_key_make_one_object(
    client: Client, parallel: Parallel
) -> None:
    caller = await sign_up(client)
    headers = caller.headers | {"Idempotency-Key": "burst"}
    answers = await parallel(
        [client.build_request("POST", "/v1/datasets", json={"name": "Burst"}, headers=headers)] * 50
    )
    statuses = {r.status_code for r in answers}
    assert statuses <= {201, 409}, statuses
    created = {r.json()["id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    assert (await client.get("/v1/datasets", headers=caller.headers)).json()["total"] == 1


async def test_an_answer_holding_a_secret_is_never_stored(client: Client, settings: Settings) -> None:
    caller = await sign_up(client)
    headers = caller.headers | {"Idempotency-Key": "ci-key-1"}
    first = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)
    again = await client.post("/v1/api-keys", json={"name": "ci"}, headers=headers)

    assert first.status_code == 201 and first.json()["key"].startswith("rsh_")
    assert again.status_code == 409 and "shown once" in again.json()["detail"]
    keys = (await client.get("/v1/api-keys", headers=caller.headers)).json()
    assert [k["name"] for k in keys["items"]].count("ci") == 1
    engine = create_engine(settings.database_url)
    async with engine.connect() as conn:
        stored = (await conn.execute(select(IdempotencyRecord.body, IdempotencyRecord.status_code))).all()
    await engine.dispose()
    assert stored == [(None, 201)]
