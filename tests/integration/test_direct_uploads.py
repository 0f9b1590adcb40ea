"""Uploads whose parts go straight to storage through signed URLs, checked by the ingest role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from core.storage import ObjectStorage, StoredPart, TenantKeys
from core.storage.s3 import S3Storage
from service.db.engine import create_engine, session_factory
from service.db.tenancy import unscoped_session
from service.uploads import ingest as ingest_role
from service.uploads.ingest import release_claims, verify_next
from service.uploads.models import UploadSession
from service.uploads.service import Uploads
from tests.helpers import Caller, file_sha256, sign_up, upload_body
from tests.integration.test_upload_bad_input import assert_nothing_left, assert_problem
from tests.integration.test_uploads import big_still  # noqa: F401  (a fixture: three 5 MiB parts)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
S3 = pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url)
    yield session_factory(engine)
    await engine.dispose()


async def start_direct(client: Client, caller: Caller, path: Path, **overrides: Any) -> dict[str, Any]:
    created = await client.post(
        "/v1/uploads", json=upload_body(path, **{"direct": True, **overrides}), headers=caller.headers
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def send_whole(client: Client, caller: Caller, path: Path, **overrides: Any) -> dict[str, Any]:
    """A direct upload of ``path`` started, every part sent and completed: now being checked."""
    upload = await start_direct(client, caller, path, **overrides)
    await send_direct(client, caller, upload, path.read_bytes())
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert done.status_code == 202, done.text
    return upload


async def send_direct(client: Client, caller: Caller, upload: dict[str, Any], data: bytes) -> None:
    """Sign every part and PUT its bytes to storage, as a client does: no credentials of ours."""
    signed = await client.post(
        f"/v1/uploads/{upload['id']}/part-urls",
        json={"part_numbers": list(range(1, upload["part_count"] + 1))},
        headers=caller.headers,
    )
    assert signed.status_code == 200, signed.text
    assert datetime.fromisoformat(signed.json()["expires_at"]) > datetime.now(UTC)
    async with httpx.AsyncClient() as storage_http:
        for part in signed.json()["parts"]:
            start = (part["part_number"] - 1) * upload["part_size"]
            assert "X-Amz-Signature=" in part["url"]
            sent = await storage_http.put(part["url"], content=data[start : start + part["size"]])
            assert sent.status_code == 200, sent.text


CheckOne = Callable[[], Awaitable[bool]]


@pytest.fixture
def ingest(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, settings: Settings
) -> CheckOne:
    """One round of the ingest role: checks the longest-waiting upload; whether there was one."""

    async def check_one() -> bool:
        return await verify_next(sessions, storage, settings.uploads, owner="test-worker/ingest")

    return check_one


def direct_bytes() -> float:
    return REGISTRY.get_sample_value("rushes_upload_bytes_total", {"transfer": "direct"}) or 0.0


@S3
async def test_parts_go_to_storage_and_the_ingest_role_makes_the_asset(
    client: Client,
    storage: ObjectStorage,
    ingest: CheckOne,
    big_still: Path,  # noqa: F811
) -> None:
    caller = await sign_up(client)
    data = big_still.read_bytes()
    upload = await start_direct(client, caller, big_still, content_type="image/png")
    assert upload["transfer"] == "direct" and upload["part_count"] == 3
    await send_direct(client, caller, upload, data)

    # The API lists what storage holds: sizes, and no sha256 of ours for bytes it never read.
    listed = (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).json()
    assert [(p["part_number"], p["size"], p["sha256"]) for p in listed["parts"]] == [
        (n, min(upload["part_size"], len(data) - (n - 1) * upload["part_size"]), None)
        for n in range(1, upload["part_count"] + 1)
    ]
    joined_before = direct_bytes()
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert done.status_code == 202, done.text
    assert done.json()["status"] == "verifying" and done.json()["asset_id"] is None
    assert direct_bytes() - joined_before == len(data)
    again = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert again.status_code == 202 and again.json()["status"] == "verifying"
    # Its file is being read into an asset: it cannot be taken back meanwhile.
    assert_problem(await client.delete(f"/v1/uploads/{upload['id']}", headers=caller.headers), 409, "checked")

    assert await ingest() is True
    assert await ingest() is False, "nothing else waits"
    checked = (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).json()
    assert checked["status"] == "completed" and checked["failure"] is None
    asset = (await client.get(f"/v1/assets/{checked['asset_id']}", headers=caller.headers)).json()
    assert asset["sha256"] == file_sha256(big_still) and asset["size"] == len(data)
    assert asset["kind"] == "still" and asset["media"]["width"] == 2048
    content = await client.get(f"/v1/assets/{asset['id']}/content", headers=caller.headers)
    assert content.content == data
    poster = await client.get(f"/v1/assets/{asset['id']}/poster", headers=caller.headers)
    assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
    final = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert final.status_code == 200 and final.json()["id"] == asset["id"]


@S3
async def test_bytes_that_do_not_match_fail_with_a_reason_and_leave_nothing(
    client: Client, storage: ObjectStorage, ingest: CheckOne, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await send_whole(client, caller, clip, sha256="ab" * 32)
    assert await ingest()

    failed = (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).json()
    assert failed["status"] == "failed" and failed["asset_id"] is None
    assert failed["failure"]["status"] == 422
    assert failed["failure"]["type"].endswith("/invalid")
    assert "sha256 does not match" in failed["failure"]["detail"]
    # Completing again tells the same failure, as problem details.
    assert_problem(
        await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers), 422, "sha256"
    )
    keys = TenantKeys(UUID(caller.tenant_id))
    assert storage.list_objects(keys.root) == [] and storage.list_multipart(keys.root) == []
    # A failed upload reserves no storage quota.
    quotas = (await client.get("/v1/quotas", headers=caller.headers)).json()["quotas"]
    assert [q["used"] for q in quotas if q["quota"] == "storage_bytes"] == [0]


@S3
async def test_a_duplicate_found_by_the_check_fails_naming_the_asset(
    client: Client, ingest: CheckOne, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    # Neither is an asset yet, so both pass the checks made before the ingest role's.
    first = await send_whole(client, caller, clip)
    second = await send_whole(client, caller, clip)
    assert await ingest() and await ingest()
    outcomes = [
        (await client.get(f"/v1/uploads/{u['id']}", headers=caller.headers)).json() for u in (first, second)
    ]
    assert [o["status"] for o in outcomes] == ["completed", "failed"]
    assert outcomes[1]["failure"]["status"] == 409
    assert outcomes[1]["failure"]["existing_asset_id"] == outcomes[0]["asset_id"]
    assets = (await client.get("/v1/assets", headers=caller.headers)).json()
    assert [a["id"] for a in assets["items"]] == [outcomes[0]["asset_id"]]


@S3
async def test_missing_and_wrong_sized_parts_are_named_before_anything_is_joined(
    client: Client,
    big_still: Path,  # noqa: F811
) -> None:
    caller = await sign_up(client)
    upload = await start_direct(client, caller, big_still, content_type="image/png")
    signed = await client.post(
        f"/v1/uploads/{upload['id']}/part-urls", json={"part_numbers": [1]}, headers=caller.headers
    )
    # Part 1 arrives one byte short; the others never arrive.
    async with httpx.AsyncClient() as storage_http:
        url = signed.json()["parts"][0]["url"]
        short = await storage_http.put(url, content=big_still.read_bytes()[: (5 << 20) - 1])
        assert short.status_code == 200
    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(done, 409, "not been received whole")
    assert done.json()["missing_parts"] == list(range(1, upload["part_count"] + 1))
    still = (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).json()
    assert still["status"] == "open"


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_part_urls_are_refused_where_parts_go_through_the_api(
    client: Client, storage_kind: str, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    # The local backend cannot sign, so a client that can go direct still gets the API path;
    # on S3 a client that did not ask for it gets it too.
    upload = await start_direct(client, caller, clip, direct=storage_kind == "local")
    assert upload["transfer"] == "api"
    refused = await client.post(
        f"/v1/uploads/{upload['id']}/part-urls", json={"part_numbers": [1]}, headers=caller.headers
    )
    assert_problem(refused, 409, "through the API")


@S3
@pytest.mark.parametrize(
    ("numbers", "words"),
    [
        ([], "at least 1"),
        ([1, 1], "must not repeat"),
        ([0], "greater than or equal"),
        ([2], "between 1 and 1"),
    ],
)
async def test_bad_part_numbers_are_refused(
    client: Client, tmp_path: Path, numbers: list[int], words: str
) -> None:
    caller = await sign_up(client)
    upload = await start_direct(client, caller, make_clip(tmp_path / "a.mp4"))
    refused = await client.post(
        f"/v1/uploads/{upload['id']}/part-urls", json={"part_numbers": numbers}, headers=caller.headers
    )
    # The body's own rules answer 400 as every body does; a number past the file's parts, 422.
    assert_problem(refused, 422 if numbers == [2] else 400, words)


@S3
async def test_another_tenants_upload_is_not_found(client: Client, tmp_path: Path) -> None:
    owner, other = await sign_up(client, "Owner"), await sign_up(client, "Other")
    upload = await start_direct(client, owner, make_clip(tmp_path / "a.mp4"))
    for response in (
        await client.post(
            f"/v1/uploads/{upload['id']}/part-urls", json={"part_numbers": [1]}, headers=other.headers
        ),
        await client.post(f"/v1/uploads/{upload['id']}/complete", headers=other.headers),
    ):
        assert_problem(response, 404, "No such upload")


@S3
async def test_a_claim_is_taken_once_and_handed_back_when_its_worker_restarts(
    client: Client,
    settings: Settings,
    storage: ObjectStorage,
    sessions: async_sessionmaker[AsyncSession],
    ingest: CheckOne,
    tmp_path: Path,
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await send_whole(client, caller, clip)
    # A worker that died mid-check left its claim, good for the whole lease.
    async with unscoped_session(sessions) as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.id == UUID(upload["id"]))
            .values(verify_owner="dead/ingest", verify_until=datetime.now(UTC) + timedelta(hours=1))
        )
        await session.commit()
    assert await ingest() is False, "another worker's claim holds"
    await release_claims(sessions, "dead/ingest")
    assert await ingest() is True
    async with unscoped_session(sessions) as session:
        row = await session.scalar(select(UploadSession).where(UploadSession.id == UUID(upload["id"])))
        assert row is not None and row.status == "completed" and row.verify_owner is None
    assert (await client.delete(f"/v1/assets/{row.asset_id}", headers=caller.headers)).status_code == 204
    await assert_nothing_left(settings, storage, caller)


@S3
async def test_checks_that_keep_failing_on_our_side_end_in_a_failure_not_a_loop(
    client: Client,
    storage: ObjectStorage,
    ingest: CheckOne,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await send_whole(client, caller, clip)

    def no_room(self: Uploads, upload: UploadSession) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Uploads, "_check", no_room)
    monkeypatch.setattr(ingest_role, "RETRY_SECONDS", 0.0)
    url = f"/v1/uploads/{upload['id']}"
    for attempt in range(1, ingest_role.MAX_ATTEMPTS):
        assert await ingest()
        # An error of ours is no verdict on the file: it is tried again.
        assert (await client.get(url, headers=caller.headers)).json()["status"] == "verifying", attempt
    assert await ingest()
    failed = (await client.get(url, headers=caller.headers)).json()
    assert failed["status"] == "failed" and failed["failure"]["type"].endswith("/unverifiable")
    assert failed["failure"]["status"] == 422 and "not because of the file" in failed["failure"]["detail"]
    assert await ingest() is False, "nothing is left to check"
    keys = TenantKeys(UUID(caller.tenant_id))
    assert storage.list_objects(keys.root) == [] and storage.list_multipart(keys.root) == []


@S3
async def test_a_part_sent_again_during_completion_leaves_the_upload_open_to_complete_again(
    client: Client, storage: ObjectStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = await start_direct(client, caller, clip)
    await send_direct(client, caller, upload, clip.read_bytes())
    assert isinstance(storage, S3Storage)
    listed = S3Storage.list_parts

    def list_then_resend(self: S3Storage, key: str, upload_id: str) -> list[StoredPart]:
        parts = listed(self, key, upload_id)
        # The client sends part 1 again, other bytes of the same size, right after
        # completion listed the parts.
        url = self.presigned_part(key, upload_id, 1, parts[0].size, timedelta(minutes=5))
        httpx.put(url, content=clip.read_bytes()[::-1])
        return parts

    monkeypatch.setattr(S3Storage, "list_parts", list_then_resend)
    raced = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert_problem(raced, 409, "complete it again")
    monkeypatch.setattr(S3Storage, "list_parts", listed)
    assert (await client.get(f"/v1/uploads/{upload['id']}", headers=caller.headers)).json()[
        "status"
    ] == "open"
    again = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert again.status_code == 202, again.text
