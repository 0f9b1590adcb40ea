"""State changes shared by every kind of queued work (fine-tunes, generations).

Each change is a conditional update on the status it expects, so an API request and a
worker claiming or finishing the same row at the same moment never overwrite each other:
the loser reads again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict
from core.work.status import WorkStatus
from service.events.log import EventLog
from service.events.models import EventSource

SourceT = TypeVar("SourceT", bound=EventSource)
# Rounds of read-then-update a cancel makes before it gives up on a row that keeps changing.
_TRIES = 3


async def transition(session: AsyncSession, row: EventSource, expected: WorkStatus, **values: object) -> bool:
    """Set ``values`` on ``row`` if it is still in ``expected``; whether it was."""
    table = type(row)
    result = await session.execute(
        update(table)
        .where(table.id == row.id, table.status == expected)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], result).rowcount == 1


async def cancel(
    session: AsyncSession,
    log: EventLog[SourceT, Any, Any],
    load: Callable[[], Awaitable[SourceT]],
    noun: str,
) -> SourceT:
    """A queued row ends now; a running one is flagged, and its worker stops it at its next step."""
    for _ in range(_TRIES):
        row = await load()
        if row.status.is_final:
            raise Conflict(f"This {noun} has already {row.status.value}.")
        if row.status is WorkStatus.QUEUED:
            changed = await transition(
                session, row, WorkStatus.QUEUED, status=WorkStatus.CANCELLED, finished_at=datetime.now(UTC)
            )
            event = "cancelled"
        else:
            if row.cancel_requested:
                return row
            changed = await transition(session, row, WorkStatus.RUNNING, cancel_requested=True)
            event = "cancel_requested"
        if changed:
            await log.record(session, row, event, {"step": row.step})
            await session.commit()
            await session.refresh(row)
            return row
        await session.rollback()
    raise Conflict(f"The {noun} is changing state; try again.")
