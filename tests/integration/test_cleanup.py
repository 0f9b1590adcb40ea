from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.db.engine import create_engine, session_factory
from service.settings import Settings
from service.storage import ObjectStorage, TenantKeys
from service.uploads.cleanup import clean_up_uploads
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
