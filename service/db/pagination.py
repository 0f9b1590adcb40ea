"""Pages of a list: by offset, or after a cursor (the last item's id).

A cursor pages a list that changes while it is read: each page starts after the row the
client saw last, in the list's own order, so rows made meanwhile (newest-first lists get
them at the front) are not repeated and rows are not skipped, as offsets would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from core.errors import Invalid
from service.params import page_limit, page_offset, page_starting_after

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int
    starting_after: UUID | None = None


def provide_page(
    limit: int = page_limit(),
    offset: int = page_offset(),
    starting_after: UUID | None = page_starting_after(),
) -> PageRequest:
    if starting_after is not None and offset:
        raise Invalid("Give starting_after or offset, not both.")
    return PageRequest(limit, offset, starting_after)


async def fetch_page(
    session: AsyncSession, stmt: Select[tuple[T]], page: PageRequest
) -> tuple[Sequence[T], int]:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.scalars(await page_of(session, stmt, page))).all()
    return rows, int(total or 0)


async def page_of(session: AsyncSession, stmt: Select[Any], page: PageRequest) -> Select[Any]:
    """``stmt`` cut to the page asked for: after its cursor, or from its offset."""
    if page.starting_after is not None:
        stmt = await _after(session, stmt, page.starting_after)
    return stmt.limit(page.limit).offset(page.offset)


async def _after(session: AsyncSession, stmt: Select[Any], cursor: UUID) -> Select[Any]:
    """``stmt`` narrowed to the rows after ``cursor`` in its order (its id breaks ties)."""
    entity = stmt.column_descriptions[0]["entity"]
    identity = entity.id
    keys = [_key(clause) for clause in stmt._order_by_clauses]
    descending = keys[-1][1] if keys else False
    keys.append((identity, descending))
    # The cursor's row is read by its id alone, not through the list's filters: a row that has
    # left the list since it was seen (a job that started, an invitation revoked) still says
    # where the next page starts. The session's tenant scope applies as to every read.
    found = (
        await session.execute(
            select(*(column for column, _ in keys)).select_from(entity).where(identity == cursor)
        )
    ).first()
    if found is None:
        raise Invalid("starting_after names no item of this list.")
    later: list[ColumnElement[bool]] = []
    for index, (column, desc) in enumerate(keys):
        same = [keys[before][0] == found[before] for before in range(index)]
        later.append(and_(*same, column < found[index] if desc else column > found[index]))
    return (
        stmt.where(or_(*later))
        .order_by(None)
        .order_by(*(column.desc() if desc else column.asc() for column, desc in keys))
    )


def _key(clause: Any) -> tuple[Any, bool]:
    """An ORDER BY term as (column, descending)."""
    if isinstance(clause, UnaryExpression) and clause.modifier in (operators.desc_op, operators.asc_op):
        return clause.element, clause.modifier is operators.desc_op
    return clause, False


def page_body(items: Sequence[Any], total: int, page: PageRequest) -> dict[str, Any]:
    return {"items": list(items), "total": total, "limit": page.limit, "offset": page.offset}
