"""One poller per API process that wakes live event streams when their source has news.

Each open stream used to read the database twice every half second, so 100 watchers of
idle jobs cost about 400 queries a second. Now a stream waits here, and the process's one
poller reads the event counters of every watched source in one query per kind of source
(``SELECT id, event_count … WHERE id IN (…)``), then wakes the streams whose source has
events past what they sent, or is gone. Events are found wherever they were written (any
replica, any worker), and the poller reads nothing while no stream is open. The counter is
bumped in the same transaction as the event it numbers, so a committed counter always has
its events committed beside it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from uuid import UUID

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.db.tenancy import unscoped_session
from service.events.models import EventSource

logger = logging.getLogger("rushes.events")

POLL_SECONDS = 0.5
# Ids per query: far under every database's limit on bound parameters.
_CHUNK = 500


@dataclass(eq=False)
class _Waiter:
    seen: int
    woken: anyio.Event = field(default_factory=anyio.Event)


class EventWatch:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], poll_seconds: float = POLL_SECONDS
    ) -> None:
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self._waiting: dict[type[EventSource], dict[UUID, set[_Waiter]]] = {}
        self._someone = anyio.Event()

    async def changed(self, source: type[EventSource], source_id: UUID, seen: int) -> None:
        """Return once the source has an event numbered past ``seen``, or no longer exists."""
        waiter = _Waiter(seen)
        by_id = self._waiting.setdefault(source, {})
        by_id.setdefault(source_id, set()).add(waiter)
        self._someone.set()
        try:
            await waiter.woken.wait()
        finally:
            waiters = by_id.get(source_id, set())
            waiters.discard(waiter)
            if not waiters:
                by_id.pop(source_id, None)
            if not by_id:
                self._waiting.pop(source, None)

    async def run(self) -> None:
        """The process's poll loop; runs until cancelled (the app's lifespan)."""
        while True:
            if not self._waiting:
                self._someone = anyio.Event()
                await self._someone.wait()
            try:
                await self.poll()
            except Exception:
                # A database blip must not end every stream; they keep waiting, with keep-alives.
                logger.exception("event watch poll failed; trying again")
            await anyio.sleep(self.poll_seconds)

    async def poll(self) -> None:
        """Wake every stream whose source moved past what it has seen."""
        async with unscoped_session(
            self.sessions
        ) as session:  # counters only, of sources streams were allowed
            for source, by_id in list(self._waiting.items()):
                ids = list(by_id)
                counts: dict[UUID, int] = {}
                for start in range(0, len(ids), _CHUNK):
                    rows = await session.execute(
                        select(source.id, source.event_count).where(
                            source.id.in_(ids[start : start + _CHUNK])
                        )
                    )
                    counts.update({source_id: count for source_id, count in rows.tuples()})
                for source_id in ids:
                    count = counts.get(source_id)
                    for waiter in list(by_id.get(source_id, ())):
                        if count is None or count > waiter.seen:
                            waiter.woken.set()
