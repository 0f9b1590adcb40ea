"""Deleting a tenant: every row that is its, then every object under its prefix.

The rows go first, in one transaction, so a tenant is either wholly there or wholly gone from
the database: its sessions and API keys stop working when it commits, and its queued and
running work is gone, which a worker holding a lease notices at its next heartbeat (the row
is no longer held, so it stops and writes nothing more through the queue). The objects go
next. The same transaction records the deletion (``DeletedTenant``), so whatever is left under
``tenants/{id}/`` afterwards (storage failed midway, the process died, or a worker that had not
yet noticed wrote a last file) is deleted by the cleanup role's sweep
(``service.tenants.cleanup``). So a crash at any point leaves nothing that cleanup cannot
finish, and the sweep touches no prefix but a deleted tenant's.

Which rows are the tenant's is read from the schema, not listed by hand, so a table added
later is covered: a row is the tenant's if a column of it names the tenant (``tenant_id``, or
any foreign key to ``tenant.id``), or, for tables without such a column, if a foreign key of
it points at a row that is the tenant's (events of its jobs, and so on). Users are not the
tenant's: an account outlives its tenants (its other memberships, and platform admins, need it).

The tenant's Stripe subscription is not a row here: the tombstone keeps its id, and the
billing role cancels it at Stripe (``service.billing.closing``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from uuid import UUID

from anyio import to_thread
from sqlalchemy import Column, ColumnElement, Table, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import NotFound
from core.storage import ObjectStorage, TenantKeys
from service.accounts.models import Tenant
from service.audit import record as audit
from service.billing.closing import live_subscription
from service.billing.customers import billing_account
from service.db.models import metadata
from service.db.tenancy import unscoped
from service.tenants.models import DeletedTenant

logger = logging.getLogger("rushes.tenants")

TENANT_TABLE: Table = Tenant.__table__  # type: ignore[assignment]


def tenant_column(table: Table) -> Column[UUID] | None:
    """The column of ``table`` that names the owning tenant, if it has one."""
    if table is TENANT_TABLE:
        return table.c.id
    for column in table.columns:
        if column.name == "tenant_id" or any(fk.column.table is TENANT_TABLE for fk in column.foreign_keys):
            return column
    return None


def owned_rows(table: Table, tenant_id: UUID) -> ColumnElement[bool] | None:
    """A condition on ``table`` true for the rows that are the tenant's; None when its rows never are."""
    if (column := tenant_column(table)) is not None:
        return column == tenant_id
    reached = []
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent is table:
            continue
        if (through := owned_rows(parent, tenant_id)) is not None:
            reached.append(fk.parent.in_(select(fk.column).where(through)))
    return or_(*reached) if reached else None


@cache
def deletion_order() -> tuple[Table, ...]:
    """Every table that can hold the tenant's rows, dependents before what they depend on, the
    tenant itself last, so no foreign key is ever left pointing at a deleted row."""
    probe = UUID(int=0)
    return tuple(t for t in reversed(metadata.sorted_tables) if owned_rows(t, probe) is not None)


async def delete_rows(session: AsyncSession, tenant_id: UUID) -> None:
    """Delete every row of the tenant in the session's transaction; the caller commits."""
    with unscoped(session):
        for table in deletion_order():
            condition = owned_rows(table, tenant_id)
            assert condition is not None  # deletion_order keeps only tables that have one
            await session.execute(delete(table).where(condition))


def delete_objects(storage: ObjectStorage, tenant_id: UUID) -> int:
    """Delete every object under the tenant's prefix and abort its pending multipart uploads;
    how many of both there were. Blocking: run it in a thread."""
    root = TenantKeys(tenant_id).root
    pending = storage.list_multipart(root)
    for upload in pending:
        storage.abort_multipart(upload.key, upload.upload_id)
    return len(pending) + storage.delete_prefix(root)


async def objects_deleted(session: AsyncSession, tenant_id: UUID) -> None:
    """Notes that nothing of the tenant was left in storage just now; the caller commits."""
    await session.execute(
        update(DeletedTenant)
        .where(DeletedTenant.deleted_tenant_id == tenant_id)
        .values(objects_deleted_at=datetime.now(UTC))
    )


async def delete_tenant(session: AsyncSession, storage: ObjectStorage, tenant_id: UUID) -> None:
    """Delete the tenant: its rows (committed), then its objects. A storage failure after the
    commit is logged, not raised: the tenant is gone, and the cleanup sweep removes the rest."""
    with unscoped(session):
        tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound("No such tenant.")
    # Read before it is deleted with the rest: what Stripe must still be told.
    account = await billing_account(session, tenant_id)
    customer_id = account.stripe_customer_id if account else None
    subscription_id = live_subscription(account)
    await delete_rows(session, tenant_id)
    session.add(
        DeletedTenant(
            deleted_tenant_id=tenant_id,
            stripe_customer_id=customer_id,
            stripe_subscription_id=subscription_id,
        )
    )
    # Platform-level (no tenant id), so the entry outlives the tenant's own log.
    await audit.record(
        session,
        "tenant.deleted",
        tenant_id=None,
        object_type="tenant",
        object_id=tenant_id,
        detail={"name": tenant.name},
    )
    await session.commit()
    # What the session loaded (the tenant, the caller's key) no longer exists: nothing may flush it.
    session.expunge_all()
    try:
        deleted = await to_thread.run_sync(delete_objects, storage, tenant_id)
    except Exception:
        logger.exception("tenant %s deleted; its objects are left to the cleanup sweep", tenant_id)
        return
    await objects_deleted(session, tenant_id)
    await session.commit()
    logger.info("tenant %s deleted with %d objects", tenant_id, deleted)
