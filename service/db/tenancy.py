"""The one place tenant isolation is enforced.

A session carries the caller's tenant in ``session.info``. Every ORM statement that
touches a ``TenantScoped`` class gets ``tenant_id = :tenant`` added to it (SELECT,
UPDATE and DELETE alike, joins and relationship loads included), and every new
tenant-scoped row is stamped with that tenant. A session that names no tenant may
not touch tenant-scoped rows at all unless it is explicitly marked unscoped: the
default is to refuse, so a handler that forgets to authenticate cannot read anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast
from uuid import UUID

from advanced_alchemy.types import GUID
from sqlalchemy import Select, Table, event, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql.selectable import Join

from service.db.base import TenantScoped

_TENANT = "tenant_id"
_UNSCOPED = "unscoped"


class TenantScopeError(RuntimeError):
    """A query on tenant-owned rows was made without a tenant: a programming error."""


def set_tenant(session: AsyncSession | Session, tenant_id: UUID) -> None:
    session.info[_TENANT] = tenant_id


def session_tenant(session: AsyncSession | Session) -> UUID | None:
    tenant: UUID | None = session.info.get(_TENANT)
    return tenant


@contextmanager
def unscoped(session: AsyncSession | Session) -> Iterator[None]:
    """Lift tenant filtering for the block: authentication, admin pages, workers, cleanup."""
    previous = session.info.get(_UNSCOPED, False)
    session.info[_UNSCOPED] = True
    try:
        yield
    finally:
        session.info[_UNSCOPED] = previous


def mark_unscoped(session: AsyncSession | Session) -> None:
    """For sessions that serve platform-wide work for their whole life (admin, cleanup)."""
    session.info[_UNSCOPED] = True


def unscoped_session(sessions: async_sessionmaker[AsyncSession]) -> AsyncSession:
    """A new session for work that serves every tenant (queues, dispatchers)."""
    session = sessions()
    mark_unscoped(session)
    return session


def _scoped_mappers(state: ORMExecuteState) -> set[Any]:
    return {m.local_table for m in state.all_mappers if issubclass(m.class_, TenantScoped)}


@lru_cache(maxsize=1)
def _tenant_tables() -> frozenset[Any]:
    from service.db.base import Base

    return frozenset(m.local_table for m in Base.registry.mappers if issubclass(m.class_, TenantScoped))


def _direct_tables(from_: Any) -> list[Any]:
    """Tables a FROM item names directly; subqueries are statements of their own and get
    their own criteria when they select an entity."""
    if isinstance(from_, Table):
        return [from_]
    if isinstance(from_, Join):
        return _direct_tables(from_.left) + _direct_tables(from_.right)
    return []


def _unentitied_tenant_tables(state: ORMExecuteState) -> set[Any]:
    """Tenant tables a SELECT reads without naming their entity, as in
    ``select(func.count()).where(Model.x == 1)``: loader criteria cannot reach those, so such
    statements are refused rather than left unfiltered."""
    if not state.is_select:
        return set()
    statement = cast(Select[Any], state.statement)
    reached = {table for from_ in statement.get_final_froms() for table in _direct_tables(from_)}
    return (reached & _tenant_tables()) - _scoped_mappers(state)


# Listening on Session itself covers every session in the process, whichever factory made it.
@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    info = state.session.info
    tenant = info.get(_TENANT)
    if info.get(_UNSCOPED):
        return
    if tenant is None:
        if _scoped_mappers(state) or _unentitied_tenant_tables(state):
            raise TenantScopeError("query on tenant-owned rows from a session with no tenant")
        return
    if unfiltered := _unentitied_tenant_tables(state):
        raise TenantScopeError(
            f"query reads {sorted(t.name for t in unfiltered)} without their entity; select_from it"
        )
    state.statement = state.statement.options(
        # The tenant is coerced to the column's type explicitly: a lambda's closure
        # values are otherwise bound untyped, and GUIDs would not match on SQLite.
        with_loader_criteria(
            TenantScoped, lambda cls: cls.tenant_id == type_coerce(tenant, GUID), include_aliases=True
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant = session.info.get(_TENANT)
    for obj in session.new:
        if not isinstance(obj, TenantScoped):
            continue
        if obj.tenant_id is None:
            if tenant is None:
                raise TenantScopeError(f"new {type(obj).__name__} has no tenant")
            obj.tenant_id = tenant
        elif tenant is not None and obj.tenant_id != tenant and not session.info.get(_UNSCOPED):
            raise TenantScopeError(f"new {type(obj).__name__} belongs to another tenant")
