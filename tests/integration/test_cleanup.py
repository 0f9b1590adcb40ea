from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.uploads.cleanup import clean_up_uploads
from service.uploads.models import UploadSession
from tests.helpers import sign_up, upload_body
from tests.integration.test_upload_bad_input import assert_nothing_left
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_expired_sessions_and_orphans_are_removed(
    client: Client, settings: Settings, storage: ObjectStorage, storage_kind: str, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    upload = (await client.post("/v1/uploads", json=upload_body(clip), headers=caller.headers)).json()
    await client.put(f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes(), headers=caller.headers)
    keys = TenantKeys(UUID(caller.tenant_id))
    # A multipart upload no session knows: what a crash between creating and recording one leaves.
    storage.create_multipart(keys.footage(uuid4()))
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)

    now = datetime.now(UTC)
    untouched = await clean_up_uploads(sessions, storage, settings.uploads, now=now)
    assert untouched.expired_sessions == 0
    if storage_kind == "local":
        # moto dates every multipart upload in 2010, so on S3 the orphan is already old.
        assert untouched.orphaned_multiparts == 0
        assert len(storage.list_multipart(keys.root)) == 2

    later = now + timedelta(seconds=settings.uploads.session_ttl_seconds + 1)
    report = await clean_up_uploads(sessions, storage, settings.uploads, now=later)
    await engine.dispose()
    assert report.expired_sessions == 1
    assert untouched.orphaned_multiparts + report.orphaned_multiparts == 1
    await assert_nothing_left(settings, storage, caller)


async def test_one_upload_that_cannot_be_removed_does_not_stop_the_rest(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    ids = []
    for n in range(2):
        clip = make_clip(tmp_path / f"{n}.mp4", pattern_seed=n)
        ids.append(
            (await client.post("/v1/uploads", json=upload_body(clip), headers=caller.headers)).json()["id"]
        )

    class FailingFor(type(storage)):  # type: ignore[misc]
        """The real backend, refusing to abort one upload, as storage that is down for a key would."""

        def abort_multipart(self, key: str, upload_id: str) -> None:
            if failing and upload_id == failing[0]:
                raise OSError("storage unavailable")
            super().abort_multipart(key, upload_id)

    failing: list[str] = []
    flaky = FailingFor.__new__(FailingFor)
    flaky.__dict__.update(storage.__dict__)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    async with sessions() as session:
        mark_unscoped(session)
        failing.append((await session.get_one(UploadSession, UUID(ids[0]))).storage_upload_id)
    later = datetime.now(UTC) + timedelta(seconds=settings.uploads.session_ttl_seconds + 1)
    report = await clean_up_uploads(sessions, flaky, settings.uploads, now=later)
    await engine.dispose()
    assert report.expired_sessions == 1
    assert (await client.get(f"/v1/uploads/{ids[0]}", headers=caller.headers)).status_code == 200
    assert (await client.get(f"/v1/uploads/{ids[1]}", headers=caller.headers)).status_code == 404
