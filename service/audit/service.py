"""Reading the audit log: a tenant's (its owners) or every tenant's (admins), newest first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid
from service.audit.models import AuditEntry
from service.audit.schemas import AuditEntryOut, AuditFilter
from service.db.pagination import PageRequest, fetch_page


def _utc(moment: datetime) -> datetime:
    """A time without a zone is UTC's, as every time the API answers is."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _conditions(found: AuditFilter) -> list[ColumnElement[bool]]:
    since = _utc(found.since) if found.since else None
    until = _utc(found.until) if found.until else None
    if since and until and since >= until:
        raise Invalid("since must be earlier than until.")
    conditions: list[ColumnElement[bool]] = []
    if found.action:
        conditions.append(AuditEntry.action.startswith(found.action, autoescape=True))
    if found.actor is not None:
        conditions.append(AuditEntry.actor_user_id == found.actor)
    if found.object_id is not None:
        conditions.append(AuditEntry.object_id == found.object_id)
    if since is not None:
        conditions.append(AuditEntry.created_at >= since)
    if until is not None:
        conditions.append(AuditEntry.created_at < until)
    if found.tenant_id is not None:
        conditions.append(AuditEntry.tenant_id == found.tenant_id)
    return conditions


async def list_entries(
    session: AsyncSession, found: AuditFilter, page: PageRequest
) -> tuple[list[AuditEntryOut], int]:
    """Entries that pass ``found``, newest first (ids are time-ordered)."""
    stmt = select(AuditEntry).where(*_conditions(found)).order_by(AuditEntry.id.desc())
    rows, total = await fetch_page(session, stmt, page)
    return [AuditEntryOut.model_validate(row) for row in rows], total


async def tenant_entries(
    session: AsyncSession, tenant_id: UUID, found: AuditFilter, page: PageRequest
) -> tuple[list[AuditEntryOut], int]:
    """One tenant's entries, whatever tenant ``found`` names: its owners see no other's.

    Entries are not ``TenantScoped`` rows (platform actions have no tenant), so the session's
    tenant filter does not reach them; this is the one read a tenant's caller makes of them.
    """
    if page.starting_after is not None:
        # A cursor is read by its id alone (``service.db.pagination``): another tenant's entry
        # may not say where this tenant's page starts.
        mine = await session.scalar(
            select(AuditEntry.id).where(
                AuditEntry.id == page.starting_after, AuditEntry.tenant_id == tenant_id
            )
        )
        if mine is None:
            raise Invalid("starting_after names no item of this list.")
    return await list_entries(session, replace(found, tenant_id=tenant_id), page)
