"""The cleanup role's passes over storage: what deleted tenants and lost leases left behind.

**Deleted tenants.** Deletion removes a tenant's rows, and records it (``DeletedTenant``), before
it deletes its objects (``service.tenants.deletion``). The sweep deletes what is left under the
prefix of each recorded tenant whose objects were never found deleted (storage failed or the
process died midway), and, for a day after the deletion, of every recorded tenant (a worker
that had not yet noticed may write a last file). A prefix with no tenant row and no record of
a deletion (a database restored from an older backup, or pointed at another bucket) is never
touched.

**Outputs of lost leases.** A generation worker writes its outputs, then marks the generation
succeeded; if its lease was lost in between (it stalled, or the generation was cancelled or
failed meanwhile), the mark is refused and the files stay. Outputs of a generation that did
not succeed, once it has been final for ``grace``, and of a generation whose row is gone,
are deleted. Queued and running generations are left alone: a requeued one renders again to
the same keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.storage import ObjectStorage, TenantKeys
from core.work.status import WorkStatus
from service.accounts.models import Tenant
from service.db.tenancy import unscoped_session
from service.generations.models import Generation
from service.tenants.deletion import delete_objects, objects_deleted
from service.tenants.models import DeletedTenant

logger = logging.getLogger("rushes.cleanup")

# How long after a tenant's deletion its prefix is still swept, for a late write.
LATE_WRITES = timedelta(days=1)
# How long a failed or cancelled generation's leftover outputs are kept: long enough for a
# worker that lost its lease to have finished writing them.
LOST_OUTPUT_GRACE = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LeftoversReport:
    deleted_tenants: int
    lost_outputs: int


def _folder_id(folder: str) -> UUID | None:
    """The id a folder ``…/{id}/`` is named for, or None for a folder no code of ours makes."""
    try:
        return UUID(folder.rstrip("/").rsplit("/", 1)[-1])
    except ValueError:
        return None


async def sweep_deleted_tenants(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, now: datetime | None = None
) -> int:
    """Delete the objects left by deleted tenants; how many tenants had any."""
    now = now or datetime.now(UTC)
    async with unscoped_session(sessions) as session:
        pending = (
            await session.scalars(
                select(DeletedTenant.deleted_tenant_id).where(
                    (DeletedTenant.objects_deleted_at.is_(None))
                    | (DeletedTenant.created_at > now - LATE_WRITES)
                )
            )
        ).all()
    swept = 0
    for tenant_id in pending:
        deleted = await to_thread.run_sync(delete_objects, storage, tenant_id)
        async with unscoped_session(sessions) as session:
            await objects_deleted(session, tenant_id)
            await session.commit()
        if deleted:
            logger.info("deleted %d objects left by deleted tenant %s", deleted, tenant_id)
            swept += 1
    return swept


async def clean_lost_outputs(
    sessions: async_sessionmaker[AsyncSession],
    storage: ObjectStorage,
    now: datetime | None = None,
    grace: timedelta = LOST_OUTPUT_GRACE,
) -> int:
    """Delete outputs of generations that did not succeed; how many generations had any."""
    now = now or datetime.now(UTC)
    async with unscoped_session(sessions) as session:
        tenants = (await session.scalars(select(Tenant.id))).all()
    cleaned = 0
    for tenant_id in tenants:
        keys = TenantKeys(tenant_id)
        folders = {
            generation_id: folder
            for folder in await to_thread.run_sync(storage.list_folders, f"{keys.root}outputs/")
            if (generation_id := _folder_id(folder)) is not None
        }
        if not folders:
            continue
        async with unscoped_session(sessions) as session:
            rows = (
                await session.execute(
                    select(Generation.id, Generation.status, Generation.finished_at).where(
                        Generation.id.in_(folders), Generation.tenant_id == tenant_id
                    )
                )
            ).tuples()
            found = {generation_id: (status, finished) for generation_id, status, finished in rows}
        for generation_id, folder in folders.items():
            status, finished = found.get(generation_id, (None, None))
            lost = status is None or (
                status in (WorkStatus.FAILED, WorkStatus.CANCELLED)
                and finished is not None
                and finished <= now - grace
            )
            if lost:
                await to_thread.run_sync(storage.delete_prefix, folder)
                logger.info("deleted outputs of generation %s (%s)", generation_id, status or "no row")
                cleaned += 1
    return cleaned


async def clean_up_leftovers(
    sessions: async_sessionmaker[AsyncSession], storage: ObjectStorage, now: datetime | None = None
) -> LeftoversReport:
    return LeftoversReport(
        deleted_tenants=await sweep_deleted_tenants(sessions, storage),
        lost_outputs=await clean_lost_outputs(sessions, storage, now),
    )
