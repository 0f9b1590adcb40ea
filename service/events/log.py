"""One event log per kind of source: append in the caller's transaction, page, and follow live.

A source (a fine-tune job, a generation) numbers its events from its own counter, so the
API and a worker writing at once never take the same number. The live stream is
Server-Sent Events whose id is the number, resuming after ``Last-Event-ID``. Between
reads it waits on the process's one ``EventWatch`` (``watch.py``), which sees events
whichever replica or worker wrote them; it ends once the source is final and every event
has been sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import anyio
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.attributes import set_committed_value

from core.errors import Invalid
from service.db.pagination import PageRequest, fetch_page
from service.db.tenancy import set_tenant
from service.events.models import EventRecord, EventSource
from service.events.schemas import EventOut
from service.events.watch import EventWatch

# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
_BATCH = 200

SourceT = TypeVar("SourceT", bound=EventSource)
EventT = TypeVar("EventT", bound=EventRecord)
# The source's Literal of event types, so that mypy checks every emitter's names.
KindT = TypeVar("KindT", bound=str)


def resume_after(after: int, last_event_id: str | None) -> int:
    """Where a stream starts: after ``after``, or after the ``Last-Event-ID`` a reconnecting client sends."""
    if last_event_id is None:
        return after
    if not last_event_id.isdigit():
        raise Invalid("Last-Event-ID must be an event's sequence number.")
    return max(after, int(last_event_id))


@dataclass(frozen=True, slots=True)
class EventLog(Generic[SourceT, EventT, KindT]):
    source: type[SourceT]
    event: type[EventT]
    # The event table's foreign key to its source, e.g. ``JobEvent.job_id``.
    source_key: InstrumentedAttribute[UUID]
    out: type[EventOut]

    async def record(
        self, session: AsyncSession, source: SourceT, type_: KindT, data: dict[str, Any]
    ) -> EventT:
        """Append an event in the caller's transaction.

        The number comes from an atomic increment on the source row, not from the loaded
        object, so writers racing on one source never take the same number (SQLite reads
        outside the write lock; PostgreSQL would serialise on the row anyway).
        """
        seq = await session.scalar(
            update(self.source)
            .where(self.source.id == source.id)
            .values(event_count=self.source.event_count + 1)
            .returning(self.source.event_count)
            .execution_options(synchronize_session=False)
        )
        set_committed_value(source, "event_count", seq)
        event = self.event(
            tenant_id=source.tenant_id, seq=seq, type=type_, data=data, **{self.source_key.key: source.id}
        )
        session.add(event)
        return event

    async def page(
        self, session: AsyncSession, source_id: UUID, after: int, page: PageRequest
    ) -> tuple[list[EventT], int]:
        stmt = (
            select(self.event)
            .where(self.source_key == source_id, self.event.seq > after)
            .order_by(self.event.seq)
        )
        rows, total = await fetch_page(session, stmt, page)
        return list(rows), total

    async def follow(
        self,
        sessions: async_sessionmaker[AsyncSession],
        watch: EventWatch,
        tenant_id: UUID,
        source_id: UUID,
        after: int,
    ) -> AsyncIterator[ServerSentEventMessage]:
        last = after
        while True:
            async with sessions() as session:
                set_tenant(session, tenant_id)
                # Status before events: a final status is committed with its final event, so
                # reading it first guarantees that event is in the batch read next.
                status = await session.scalar(select(self.source.status).where(self.source.id == source_id))
                events = (
                    await session.scalars(
                        select(self.event)
                        .where(self.source_key == source_id, self.event.seq > last)
                        .order_by(self.event.seq)
                        .limit(_BATCH)
                    )
                ).all()
            for event in events:
                yield ServerSentEventMessage(
                    data=self.out.model_validate(event).model_dump_json(), event=event.type, id=event.seq
                )
                last = event.seq
            if status is None or (status.is_final and len(events) < _BATCH):
                return
            if events:
                continue
            with anyio.move_on_after(KEEPALIVE_SECONDS) as quiet:
                await watch.changed(self.source, source_id, last)
            if quiet.cancelled_caught:
                yield ServerSentEventMessage(comment="keep-alive")
