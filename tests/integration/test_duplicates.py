"""Duplicate uploads: a file the tenant's library already holds (same sha256) is not stored twice."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from service.db.engine import create_engine, session_factory
from service.db.tenancy import set_tenant
from service.media import MediaInfo
from service.media.fingerprints import SampledFrame
from service.uploads.models import UploadSession
from service.uploads.service import DuplicateAsset, Uploads
from tests.helpers import Caller, file_sha256, sign_up, upload_body, upload_file
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
DUPLICATE = "https://docs.rushes.dev/problems/duplicate-asset"


async def _open(client: Client, caller: Caller, clip: Path, **overrides: Any) -> dict[str, Any]:
    """A session with every part sent, not yet completed."""
    created = await client.post("/v1/uploads", json=upload_body(clip, **overrides), headers=caller.headers)
    assert created.status_code == 201, created.text
    upload: dict[str, Any] = created.json()
    data = clip.read_bytes()
    for number in range(1, upload["part_count"] + 1):
        chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
        sent = await client.put(
            f"/v1/uploads/{upload['id']}/parts/{number}", content=chunk, headers=caller.headers
        )
        assert sent.status_code == 200, sent.text
    return upload


async def _assets(client: Client, caller: Caller, sha256: str) -> list[str]:
    found = await client.get("/v1/assets", params={"sha256": sha256}, headers=caller.headers)
    assert found.status_code == 200, found.text
    return [a["id"] for a in found.json()["items"]]


def _stored_only(storage: ObjectStorage, caller: Caller, *asset_ids: str) -> bool:
    """Whether the tenant's storage holds exactly these assets' objects, and no unfinished upload."""
    keys = TenantKeys(UUID(caller.tenant_id))
    expected = {key for asset_id in asset_ids for key in keys.asset_objects(UUID(asset_id))}
    stored = {info.key for info in storage.list_objects(keys.root)}
    return stored == expected and storage.list_multipart(keys.root) == []


async def test_a_declared_duplicate_is_refused_with_the_existing_asset(
    client: Client, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "rain.mp4")
    asset = await upload_file(client, caller, clip)

    again = await client.post(
        "/v1/uploads", json=upload_body(clip, filename="rain again.mp4"), headers=caller.headers
    )
    assert again.status_code == 409, again.text
    problem = again.json()
    assert problem["type"] == DUPLICATE
    assert problem["existing_asset_id"] == asset["id"]
    assert asset["id"] in problem["detail"]
    # Nothing was opened for it.
    sessions = await client.get("/v1/uploads", params={"sha256": asset["sha256"]}, headers=caller.headers)
    assert sessions.json()["items"] == []
    # The lookup a client can make itself, in either case.
    assert await _assets(client, caller, asset["sha256"]) == [asset["id"]]
    assert await _assets(client, caller, asset["sha256"].upper()) == [asset["id"]]
    assert await _assets(client, caller, "0" * 64) == []


@pytest.mark.parametrize("sha256", ["abc", "g" * 64, "0" * 65, "' OR 1=1 --"])
async def test_the_asset_lookup_takes_only_a_sha256(client: Client, sha256: str) -> None:
    caller = await sign_up(client)
    found = await client.get("/v1/assets", params={"sha256": sha256}, headers=caller.headers)
    assert found.status_code == 400, found.text
    assert found.headers["content-type"].startswith("application/problem+json")


async def test_a_duplicate_found_at_completion_is_discarded(
    client: Client, storage: ObjectStorage, tmp_path: Path
) -> None:
    # Two sessions for the same bytes, both opened before either became an asset.
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "rain.mp4")
    first = await _open(client, caller, clip)
    second = await _open(client, caller, clip, filename="copy.mp4")
    done = await client.post(f"/v1/uploads/{first['id']}/complete", headers=caller.headers)
    assert done.status_code == 201, done.text
    asset = done.json()

    refused = await client.post(f"/v1/uploads/{second['id']}/complete", headers=caller.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == DUPLICATE
    assert refused.json()["existing_asset_id"] == asset["id"]
    # Not stored twice: the session, its parts and the assembled file are gone.
    assert await _assets(client, caller, file_sha256(clip)) == [asset["id"]]
    assert _stored_only(storage, caller, asset["id"])
    assert (await client.get(f"/v1/uploads/{second['id']}", headers=caller.headers)).status_code == 404


async def test_allow_duplicate_stores_the_file_again(
    client: Client, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "rain.mp4")
    first = await upload_file(client, caller, clip)
    upload = await _open(client, caller, clip, allow_duplicate=True)
    done = await client.post(
        f"/v1/uploads/{upload['id']}/complete", json={"allow_duplicate": True}, headers=caller.headers
    )
    assert done.status_code == 201, done.text
    second = done.json()
    assert second["id"] != first["id"] and second["sha256"] == first["sha256"]
    assert sorted(await _assets(client, caller, first["sha256"])) == sorted([first["id"], second["id"]])
    assert _stored_only(storage, caller, first["id"], second["id"])
    # Completing again still names the asset it made.
    again = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert again.status_code == 200 and again.json()["id"] == second["id"]


async def test_another_tenants_identical_file_is_not_a_duplicate(client: Client, tmp_path: Path) -> None:
    ours, theirs = await sign_up(client, "Harbour Films"), await sign_up(client, "Other Studio")
    clip = make_clip(tmp_path / "rain.mp4")
    their_asset = await upload_file(client, theirs, clip)
    # The lookup and the upload reveal nothing of the other tenant's library.
    assert await _assets(client, ours, their_asset["sha256"]) == []
    our_asset = await upload_file(client, ours, clip)
    assert our_asset["id"] != their_asset["id"]
    assert await _assets(client, ours, our_asset["sha256"]) == [our_asset["id"]]
    assert await _assets(client, theirs, our_asset["sha256"]) == [their_asset["id"]]


async def test_parallel_completions_of_the_same_bytes_make_one_asset(
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "rain.mp4")
    uploads = [await _open(client, caller, clip, filename=f"take {n}.mp4") for n in range(2)]
    # Both completions pass the early check and assemble their file side by side, so only the
    # final check under the lock stands between them and two assets.
    both_assembling = threading.Barrier(len(uploads), timeout=30)
    check = Uploads._check

    def check_together(self: Uploads, upload: UploadSession) -> tuple[MediaInfo, list[SampledFrame]]:
        both_assembling.wait()
        return check(self, upload)

    monkeypatch.setattr(Uploads, "_check", check_together)
    tenant_id = UUID(caller.tenant_id)
    # The test client runs one request at a time, so the two completions run here, each in its own
    # session, as two API replicas would.
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)

    async def complete(upload_id: str) -> UUID | DuplicateAsset:
        async with sessions() as session:
            set_tenant(session, tenant_id)
            try:
                completion = await Uploads(session, storage, settings.uploads).complete(UUID(upload_id))
            except DuplicateAsset as refused:
                return refused
            return completion.body.id

    try:
        answers = await asyncio.gather(*(complete(u["id"]) for u in uploads))
    finally:
        await engine.dispose()

    made = [a for a in answers if isinstance(a, UUID)]
    refused = [a for a in answers if isinstance(a, DuplicateAsset)]
    assert len(made) == 1 and len(refused) == 1, answers
    assert refused[0].extra == {"existing_asset_id": str(made[0])}
    assert await _assets(client, caller, file_sha256(clip)) == [str(made[0])]
    assert _stored_only(storage, caller, str(made[0]))
