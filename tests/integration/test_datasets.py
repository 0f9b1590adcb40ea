from __future__ import annotations

from pathlib import Path
from uuid import UUID

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from service.datasets.service import lock_version
from service.db.engine import create_engine, session_factory
from service.db.tenancy import set_tenant
from tests.helpers import Caller, sign_up, upload_file
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]


async def two_assets(client: Client, caller: Caller, tmp_path: Path) -> list[str]:
    return [
        (await upload_file(client, caller, make_clip(tmp_path / f"c{i}.mp4", pattern_seed=i)))["id"]
        for i in range(2)
    ]


async def test_versions_hold_assets_with_captions(client: Client, tmp_path: Path) -> None:
    caller = await sign_up(client)
    assets = await two_assets(client, caller, tmp_path)
    dataset = await client.post("/v1/datasets", json={"name": "Harbour look"}, headers=caller.headers)
    assert dataset.status_code == 201
    ds = dataset.json()["id"]
    body = {
        "trigger_word": "hrbr",
        "items": [{"asset_id": assets[1], "caption": "dawn, fog"}, {"asset_id": assets[0]}],
    }
    v1 = await client.post(f"/v1/datasets/{ds}/versions", json=body, headers=caller.headers)
    assert v1.status_code == 201, v1.text
    assert v1.json()["number"] == 1 and v1.json()["locked"] is False
    assert v1.json()["items"] == [
        {"asset_id": assets[1], "caption": "dawn, fog"},
        {"asset_id": assets[0], "caption": None},
    ]
    v2 = await client.post(
        f"/v1/datasets/{ds}/versions", json={"items": [{"asset_id": assets[0]}]}, headers=caller.headers
    )
    assert v2.json()["number"] == 2
    edited = await client.put(
        f"/v1/datasets/{ds}/versions/2",
        json={"items": [{"asset_id": assets[0], "caption": "new"}]},
        headers=caller.headers,
    )
    assert edited.status_code == 200 and edited.json()["items"][0]["caption"] == "new"
    listed = (await client.get(f"/v1/datasets/{ds}/versions", headers=caller.headers)).json()
    assert [v["number"] for v in listed["items"]] == [1, 2]
    # An asset a version holds cannot be deleted from under it.
    held = await client.delete(f"/v1/assets/{assets[0]}", headers=caller.headers)
    assert held.status_code == 409


async def test_bad_versions_are_refused(client: Client, tmp_path: Path) -> None:
    caller = await sign_up(client)
    other = await sign_up(client, "Other")
    (mine,) = (await two_assets(client, caller, tmp_path))[:1]
    theirs = (await upload_file(client, other, make_clip(tmp_path / "t.mp4")))["id"]
    ds = (await client.post("/v1/datasets", json={"name": "d"}, headers=caller.headers)).json()["id"]
    url = f"/v1/datasets/{ds}/versions"
    foreign = await client.post(url, json={"items": [{"asset_id": theirs}]}, headers=caller.headers)
    assert foreign.status_code == 422
    assert foreign.json()["unknown_assets"] == [theirs]
    repeated = await client.post(
        url, json={"items": [{"asset_id": mine}, {"asset_id": mine}]}, headers=caller.headers
    )
    assert repeated.status_code == 400
    empty = await client.post(url, json={"items": []}, headers=caller.headers)
    assert empty.status_code == 400
    spaced = await client.post(
        url, json={"trigger_word": "two words", "items": [{"asset_id": mine}]}, headers=caller.headers
    )
    assert spaced.status_code == 400
    duplicate = await client.post("/v1/datasets", json={"name": "d"}, headers=caller.headers)
    assert duplicate.status_code == 409


async def test_a_locked_version_is_immutable(client: Client, settings: Settings, tmp_path: Path) -> None:
    caller = await sign_up(client)
    assets = await two_assets(client, caller, tmp_path)
    ds = (await client.post("/v1/datasets", json={"name": "d"}, headers=caller.headers)).json()["id"]
    version = (
        await client.post(
            f"/v1/datasets/{ds}/versions", json={"items": [{"asset_id": assets[0]}]}, headers=caller.headers
        )
    ).json()
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session:
        set_tenant(session, UUID(caller.tenant_id))
        await lock_version(session, UUID(version["id"]))
        await session.commit()
    await engine.dispose()
    got = (await client.get(f"/v1/datasets/{ds}/versions/1", headers=caller.headers)).json()
    assert got["locked"] is True
    body = {"items": [{"asset_id": assets[1]}]}
    assert (
        await client.put(f"/v1/datasets/{ds}/versions/1", json=body, headers=caller.headers)
    ).status_code == 409
    assert (await client.delete(f"/v1/datasets/{ds}/versions/1", headers=caller.headers)).status_code == 409
    assert (await client.delete(f"/v1/datasets/{ds}", headers=caller.headers)).status_code == 409
    unchanged = (await client.get(f"/v1/datasets/{ds}/versions/1", headers=caller.headers)).json()
    assert unchanged["items"] == [{"asset_id": assets[0], "caption": None}]
