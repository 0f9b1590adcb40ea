"""Recording an asset's frame hashes and reading a model version's training set of them.

Every read goes through the session's tenant: a model version reaches only its own tenant's
dataset items, assets and hashes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.fingerprints import MIN_QUALITY
from core.storage import ObjectNotFoundError, ObjectStorage, TenantKeys
from service.datasets.models import DatasetItem
from service.db.tenancy import session_tenant
from service.fingerprints.models import FrameHash
from service.media import MediaError
from service.media.fingerprints import SampledFrame, fingerprint
from service.models.models import ModelVersion

logger = logging.getLogger("rushes.fingerprints")


@dataclass(frozen=True, slots=True)
class Reference:
    """One comparable frame of the training set."""

    asset_id: UUID
    seconds: float
    bits: bytes


def record(session: AsyncSession, asset_id: UUID, frames: Sequence[SampledFrame]) -> None:
    """Add an asset's frame hashes to the session (the caller commits, with the asset)."""
    session.add_all(_rows(asset_id, frames))


def _rows(asset_id: UUID, frames: Sequence[SampledFrame]) -> list[FrameHash]:
    return [
        FrameHash(asset_id=asset_id, seconds=f.seconds, bits=f.hash.bits, quality=f.hash.quality)
        for f in frames
    ]


async def training_set(
    session: AsyncSession, storage: ObjectStorage, model_version_id: UUID
) -> list[Reference]:
    """The comparable frame hashes of the footage a model version was trained on.

    Footage uploaded before hashing existed has no hashes: it is fingerprinted here, once,
    from storage, and its hashes are committed for the next check (two workers doing so at
    once add the same hashes twice, which changes no verdict). Footage that is missing or no
    longer decodes is left out, with a log line.
    """
    dataset_version_id = await session.scalar(
        select(ModelVersion.dataset_version_id).where(ModelVersion.id == model_version_id)
    )
    if dataset_version_id is None:
        return []
    asset_ids = set(
        (
            await session.scalars(
                select(DatasetItem.asset_id).where(DatasetItem.version_id == dataset_version_id)
            )
        ).all()
    )
    rows = list((await session.scalars(select(FrameHash).where(FrameHash.asset_id.in_(asset_ids)))).all())
    unhashed = asset_ids - {row.asset_id for row in rows}
    if unhashed:
        rows += await _hash_from_storage(session, storage, sorted(unhashed))
    return [
        Reference(row.asset_id, row.seconds, row.bits)
        for row in sorted(rows, key=lambda r: (str(r.asset_id), r.seconds))
        if row.quality >= MIN_QUALITY
    ]


async def _hash_from_storage(
    session: AsyncSession, storage: ObjectStorage, asset_ids: list[UUID]
) -> list[FrameHash]:
    tenant = session_tenant(session)
    if tenant is None:
        raise RuntimeError("fingerprints are read through a tenant-bound session")
    keys = TenantKeys(tenant)
    added: list[FrameHash] = []
    for asset_id in asset_ids:

        def sample(asset_id: UUID = asset_id) -> list[SampledFrame]:
            with storage.local_path(keys.footage(asset_id)) as path:
                return fingerprint(path)

        try:
            frames = await to_thread.run_sync(sample)
        except (MediaError, ObjectNotFoundError):
            logger.warning("training footage could not be fingerprinted", extra={"asset": str(asset_id)})
            continue
        rows = _rows(asset_id, frames)
        session.add_all(rows)
        added += rows
    await session.commit()
    return added
