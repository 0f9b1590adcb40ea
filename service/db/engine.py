from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

import service.audit.record  # registers the audit log's recorder on every session
import service.db.tenancy  # noqa: F401  (registers tenant scoping on every session)

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; the busy timeout turns lock
    # contention into a short wait instead of an error.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    # Statement parameters hold password and token hashes: keep them out of errors and logs.
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=pool_size, **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def uninterrupted(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even when the caller is cancelled meanwhile.

    Background loops run each round through this, so a stopping worker's cancellation lands
    between rounds. Cancelled in the middle of a query, SQLAlchemy hands the connection to a
    task that closes it after aiosqlite's thread may already have stopped; that task then
    waits forever, and the process never exits.
    """
    with anyio.CancelScope(shield=True):
        result = await work
    return result
