"""A job's events as a Server-Sent Events stream that resumes from ``Last-Event-ID``.

Each event's ``seq`` is its SSE id. The stream polls the database, so it works the same
whichever replica or worker wrote the event, and ends once the job is final and every
event has been sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import anyio
from litestar.response.sse import ServerSentEventMessage
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db.tenancy import set_tenant
from service.jobs.models import FineTuneJob, JobEvent
from service.jobs.schemas import JobEventOut

POLL_SECONDS = 0.5
# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
_BATCH = 200


async def follow_events(
    sessions: async_sessionmaker[AsyncSession], tenant_id: UUID, job_id: UUID, after: int
) -> AsyncIterator[ServerSentEventMessage]:
    last, quiet = after, 0.0
    while True:
        async with sessions() as session:
            set_tenant(session, tenant_id)
            # Status before events: a final status is committed with its final event, so
            # reading it first guarantees that event is in the batch read next.
            status = await session.scalar(select(FineTuneJob.status).where(FineTuneJob.id == job_id))
            events = (
                await session.scalars(
                    select(JobEvent)
                    .where(JobEvent.job_id == job_id, JobEvent.seq > last)
                    .order_by(JobEvent.seq)
                    .limit(_BATCH)
                )
            ).all()
        for event in events:
            yield ServerSentEventMessage(
                data=JobEventOut.model_validate(event).model_dump_json(), event=event.type, id=event.seq
            )
            last = event.seq
        if status is None or (status.is_final and len(events) < _BATCH):
            return
        if events:
            quiet = 0.0
            continue
        await anyio.sleep(POLL_SECONDS)
        quiet += POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ServerSentEventMessage(comment="keep-alive")
