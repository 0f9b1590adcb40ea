"""Removes what abandoned uploads (and old idempotency keys) left behind.

MinIO ignores S3's lifecycle rule for incomplete multipart uploads, so expiry is ours:
expired sessions are discarded with their parts, and multipart uploads that no session
knows (a crash between creating one and recording it) are aborted once they are old.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import anyio
from anyio import to_thread
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import UploadSettings
from core.storage import ObjectStorage
from core.storage.keys import TENANTS_ROOT
from service.accounts import throttle
from service.db.engine import uninterrupted
from service.db.tenancy import mark_unscoped
from service.idempotency.models import IdempotencyRecord
from service.tenants.cleanup import clean_up_leftovers
from service.uploads.models import UploadSession, UploadStatus
from service.uploads.service import Uploads

logger = logging.getLogger("rushes.cleanup")


@dataclass(frozen=True, slots=True)
class CleanupReport:
    expired_sessions: int
    orphaned_multiparts: int
    expired_idempotency_keys: int
    forgotten_sign_in_counts: int


async def clean_up_uploads(
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    limits: UploadSettings,
    now: datetime | None = None,
) -> CleanupReport:
    now = now or datetime.now(UTC)
    async with sessions() as session:
        mark_unscoped(session)
        expired = (
            await session.scalars(
                select(UploadSession.id).where(
                    UploadSession.status != UploadStatus.COMPLETED, UploadSession.expires_at <= now
                )
            )
        ).all()
        uploads = Uploads(session, storage, limits)
        discarded = 0
        for upload_id in expired:
            # One upload that cannot be removed (storage down for its key) must not keep the
            # rest: log it and try it again next round. Loaded one at a time, because a
            # rollback expires every object the session holds.
            upload = await session.get(UploadSession, upload_id)
            if upload is None:
                continue
            try:
                await uploads.discard(upload)
                discarded += 1
            except Exception:
                logger.exception("could not remove expired upload %s", upload_id)
                await session.rollback()
        # Completed sessions no longer own a multipart upload; only unfinished ones do.
        known = set(
            (
                await session.scalars(
                    select(UploadSession.storage_upload_id).where(
                        UploadSession.status != UploadStatus.COMPLETED
                    )
                )
            ).all()
        )
        # Idempotency keys share the upload sessions' lifetime: a client retries within it.
        forgotten = await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.created_at <= now - timedelta(seconds=limits.session_ttl_seconds)
            )
        )
        stale_counts = await throttle.forget_stale(session, now)
        await session.commit()
    cutoff = now - timedelta(seconds=limits.session_ttl_seconds)
    pending = await to_thread.run_sync(storage.list_multipart, TENANTS_ROOT)
    orphans = [p for p in pending if p.upload_id not in known and p.initiated <= cutoff]
    for orphan in orphans:
        await to_thread.run_sync(storage.abort_multipart, orphan.key, orphan.upload_id)
    report = CleanupReport(discarded, len(orphans), cast(CursorResult[Any], forgotten).rowcount, stale_counts)
    if discarded or orphans or report.expired_idempotency_keys or stale_counts:
        logger.info("upload cleanup: %s", report)
    return report


async def run_cleanup_forever(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, limits: UploadSettings
) -> None:
    while True:
        try:
            await uninterrupted(clean_up_uploads(sessions, storage, limits))
        except Exception:
            logger.exception("upload cleanup failed; trying again next round")
        try:
            await uninterrupted(clean_up_leftovers(sessions, storage))
        except Exception:
            logger.exception("cleanup of deleted tenants and lost outputs failed; trying again next round")
        await anyio.sleep(limits.cleanup_interval_seconds)
