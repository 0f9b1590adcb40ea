"""The ``ingest`` worker role: checks direct uploads once storage holds them whole.

Their bytes went straight to storage, so the API never read them. Here each file is read
once: its sha256 and size against the ones announced, its media probed, its poster and
fingerprints made. It then becomes an asset, or its session ``failed`` with the reason.
An upload is claimed for ``verify_lease_seconds``, so several workers with this role check
different uploads, and one that dies leaves its upload to another once the claim runs out
(or at once, when it starts again under the same name).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import UploadSettings
from core.storage import ObjectStorage
from service.db.engine import uninterrupted
from service.db.tenancy import set_tenant, unscoped_session
from service.uploads.models import UploadSession, UploadStatus
from service.uploads.service import Uploads

logger = logging.getLogger("rushes.ingest")

# A check that failed on our side (storage, disk, the database) is tried again after this
# long, this many times in all; then the upload fails, rather than being downloaded again
# every minute until its session expires.
RETRY_SECONDS = 60.0
MAX_ATTEMPTS = 3


def _claimable(now: datetime) -> ColumnElement[bool]:
    return and_(
        UploadSession.status == UploadStatus.VERIFYING,
        or_(UploadSession.verify_until.is_(None), UploadSession.verify_until <= now),
    )


async def _claim(
    sessions: async_sessionmaker[AsyncSession], owner: str, lease: timedelta
) -> tuple[UUID, UUID] | None:
    """Take the longest-waiting unclaimed upload: its id and its tenant's; None when there is
    none, or another worker took it."""
    now = datetime.now(UTC)
    async with unscoped_session(sessions) as session:
        candidate = (
            await session.execute(
                select(UploadSession.id, UploadSession.tenant_id)
                .where(_claimable(now))
                .order_by(UploadSession.updated_at)
                .limit(1)
            )
        ).first()
        if candidate is None:
            return None
        upload_id, tenant_id = candidate
        claimed = await session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload_id, _claimable(now))
            .values(verify_owner=owner, verify_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return (upload_id, tenant_id) if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


async def verify_next(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, limits: UploadSettings, owner: str
) -> bool:
    """Check one waiting upload; whether there was one to check."""
    claim = await _claim(sessions, owner, timedelta(seconds=limits.verify_lease_seconds))
    if claim is None:
        return False
    upload_id, tenant_id = claim
    try:
        async with sessions() as session:
            # The checks run as the upload's tenant, as the API's requests do.
            set_tenant(session, tenant_id)
            upload = await session.get_one(UploadSession, upload_id)
            await Uploads(session, storage, limits).verify(upload)
    except Exception:
        logger.exception("could not check upload %s", upload_id)
        async with sessions() as session:
            set_tenant(session, tenant_id)
            await _after_failed_attempt(Uploads(session, storage, limits), upload_id, owner)
    return True


async def _after_failed_attempt(uploads: Uploads, upload_id: UUID, owner: str) -> None:
    upload = await uploads.session.get(UploadSession, upload_id)
    if upload is None or upload.verify_owner != owner:
        return
    upload.verify_attempts += 1
    upload.verify_until = datetime.now(UTC) + timedelta(seconds=RETRY_SECONDS)
    await uploads.session.commit()
    if upload.verify_attempts >= MAX_ATTEMPTS:
        await uploads.give_up(upload)


async def release_claims(sessions: async_sessionmaker[AsyncSession], owner: str) -> None:
    """Hand back what a previous run under this name was checking when it died."""
    async with unscoped_session(sessions) as session:
        await session.execute(
            update(UploadSession)
            .where(UploadSession.verify_owner == owner, UploadSession.status == UploadStatus.VERIFYING)
            .values(verify_owner=None, verify_until=None)
        )
        await session.commit()


async def run_ingest_forever(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, limits: UploadSettings, owner: str
) -> None:
    await uninterrupted(release_claims(sessions, owner))
    while True:
        try:
            found = await uninterrupted(verify_next(sessions, storage, limits, owner))
        except Exception:
            logger.exception("the ingest round failed; trying again")
            found = False
        if not found:
            await anyio.sleep(limits.verify_poll_seconds)
