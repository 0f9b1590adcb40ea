from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.params import page_limit, page_offset

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int


def provide_page(
    limit: int = page_limit(),
    offset: int = page_offset(),
) -> PageRequest:
    return PageRequest(limit, offset)


async def fetch_page(
    session: AsyncSession, stmt: Select[tuple[T]], page: PageRequest
) -> tuple[Sequence[T], int]:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = (await session.scalars(stmt.limit(page.limit).offset(page.offset))).all()
    return rows, int(total or 0)


def page_body(items: Sequence[Any], total: int, page: PageRequest) -> dict[str, Any]:
    return {"items": list(items), "total": total, "limit": page.limit, "offset": page.offset}
