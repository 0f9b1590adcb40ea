"""Every kind of bad upload gets a 4xx problem-details answer and leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text, update

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from service.db.engine import create_engine
from service.uploads.models import UploadSession
from tests.helpers import Caller, sign_up, upload_body
from tests.media_samples import make_clip, make_corrupt, make_not_media, make_still

Client = AsyncTestClient[Litestar]
TABLES = ("upload_session", "upload_part", "asset")


async def rows_for(settings: Settings, tenant_id: str) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    async with engine.connect() as conn:
        counts = {}
        for table in TABLES:
            # Raw SQL on purpose: the check must not depend on the scoping it checks.
            result = await conn.execute(text(f"SELECT tenant_id FROM {table}"))
            counts[table] = sum(1 for (tid,) in result if _uuid(tid) == UUID(tenant_id))
    await engine.dispose()
    return counts


def _uuid(value: object) -> UUID:
    return (
        value
        if isinstance(value, UUID)
        else UUID(bytes=value)
        if isinstance(value, bytes)
        else UUID(str(value))
    )


async def assert_nothing_left(settings: Settings, storage: ObjectStorage, caller: Caller) -> None:
    keys = TenantKeys(UUID(caller.tenant_id))
    assert storage.list_objects(keys.root) == []
    assert storage.list_multipart(keys.root) == []
    assert await rows_for(settings, caller.tenant_id) == dict.fromkeys(TABLES, 0)


async def start(client: Client, caller: Caller, path: Path, **overrides: object) -> dict[str, object]:
    response = await client.post("/v1/uploads", json=upload_body(path, **overrides), headers=caller.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: object, status: int, words: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert words.lower() in (body["detail"] + str(body.get("errors", ""))).lower(), body


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_wrong_checksum(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start(client, caller, clip, sha256="ab" * 32)
    await client.put(f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes(), headers=caller.headers)
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(done, 422, "sha256 does not match")
    await assert_nothing_left(settings, storage, caller)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: make_not_media(d / "notes.mp4"), "not a video or image"),
        (lambda d: make_corrupt(d / "cut.mp4", kind="truncated_faststart"), ""),
        (lambda d: make_corrupt(d / "flipped.mp4", kind="bitflip"), ""),
        (lambda d: make_clip(d / "old.avi", codec="mpeg4", container="avi"), "not supported"),
    ],
    ids=["not-media", "truncated", "bitflip", "unsupported-codec"],
)
@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_media_that_cannot_be_used(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path, make: object, words: str
) -> None:
    caller = await sign_up(client)
    path: Path = make(tmp_path)  # type: ignore[operator]
    upload = await start(client, caller, path)
    await client.put(f"/v1/uploads/{upload['id']}/parts/1", content=path.read_bytes(), headers=caller.headers)
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(done, 422, words)
    await assert_nothing_left(settings, storage, caller)


@pytest.mark.parametrize(
    ("name", "declared", "probed"),
    [("still.png", "video/mp4", "image/png"), ("clip.mp4", "image/png", "video/mp4")],
)
async def test_a_declared_type_that_contradicts_the_file_is_refused(
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    tmp_path: Path,
    name: str,
    declared: str,
    probed: str,
) -> None:
    caller = await sign_up(client)
    path = make_still(tmp_path / name) if name.endswith(".png") else make_clip(tmp_path / name)
    upload = await start(client, caller, path, content_type=declared)
    await client.put(f"/v1/uploads/{upload['id']}/parts/1", content=path.read_bytes(), headers=caller.headers)
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(done, 422, f"({probed}), not {declared} as declared")
    await assert_nothing_left(settings, storage, caller)


async def test_part_of_the_wrong_size(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start(client, caller, clip, size=clip.stat().st_size + 10)
    short = await client.put(
        f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes(), headers=caller.headers
    )
    assert_problem(short, 422, "must be exactly")

    parts = (await client.get(f"/v1/uploads/{upload['id']}/parts", headers=caller.headers)).json()
    assert parts == []
    assert (await client.delete(f"/v1/uploads/{upload['id']}", headers=caller.headers)).status_code == 204
    await assert_nothing_left(settings, storage, caller)


async def test_part_that_does_not_match_its_digest(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start(client, caller, clip)
    bad = await client.put(
        f"/v1/uploads/{upload['id']}/parts/1",
        content=clip.read_bytes(),
        headers=caller.headers | {"Content-Digest": "sha-256=:" + "A" * 43 + "=:"},
    )
    assert_problem(bad, 422, "content-digest")
    assert (await client.get(f"/v1/uploads/{upload['id']}/parts", headers=caller.headers)).json() == []


async def test_missing_parts_leave_no_asset(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start(client, caller, clip)
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(done, 409, "not been received")
    assert done.json()["missing_parts"] == [1]
    counts = await rows_for(settings, caller.tenant_id)
    assert counts["asset"] == 0
    assert storage.list_objects(TenantKeys(UUID(caller.tenant_id)).root) == []
    await client.delete(f"/v1/uploads/{upload['id']}", headers=caller.headers)
    await assert_nothing_left(settings, storage, caller)


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"size": 0}, "greater than or equal to 1"),
        ({"filename": "../../etc/passwd"}, "without folders"),
        ({"filename": "clips/a.mp4"}, "without folders"),
        ({"filename": "a\x00b.mp4"}, "control characters"),
        ({"filename": "a\nb.mp4"}, "control characters"),
        ({"surprise": True}, "extra"),
        ({"rights": {"kind": "licensed"}}, "licence_ref"),
        ({"rights": {"kind": "found-it-online"}}, "rights"),
        ({"content_type": "application/x-msdownload"}, "video/* or image/*"),
        ({"sha256": "not-a-hash"}, "sha256"),
        ({"part_size": 1024}, "part_size must be between"),
    ],
    ids=[
        "zero-bytes",
        "traversal",
        "folder",
        "nul",
        "newline",
        "unknown-field",
        "no-licence",
        "bad-rights",
        "bad-type",
        "bad-hash",
        "tiny-parts",
    ],
)
async def test_bad_session_requests(
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    tmp_path: Path,
    overrides: dict[str, object],
    words: str,
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    response = await client.post("/v1/uploads", json=upload_body(clip, **overrides), headers=caller.headers)
    assert 400 <= response.status_code < 500
    assert_problem(response, response.status_code, words)
    await assert_nothing_left(settings, storage, caller)


async def test_oversized_json_body(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    body = upload_body(clip, filename="a.mp4" + " " * (2 << 20))
    response = await client.post("/v1/uploads", json=body, headers=caller.headers)
    assert_problem(response, 413, "")
    await assert_nothing_left(settings, storage, caller)


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_expired_session(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start(client, caller, clip)
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(UploadSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await engine.dispose()
    late = await client.put(
        f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes(), headers=caller.headers
    )
    assert_problem(late, 410, "expired")
    await assert_nothing_left(settings, storage, caller)
    assert (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).status_code == 404
