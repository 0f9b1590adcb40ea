"""Live streams wait on one poller per process: idle watchers cost a query per poll, not one each."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event

from core.settings import Settings
from service.db.engine import create_engine, session_factory
from service.events.watch import EventWatch
from service.jobs.models import FineTuneJob
from tests.helpers import fine_tune_body, sign_up, trainable_dataset
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
WATCHERS = 40
POLL = 0.05


async def test_idle_watchers_share_one_query_and_all_wake_on_an_event(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    caller = await sign_up(client)
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"))
    created = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
    )
    job_id = uuid.UUID(created.json()["id"])

    engine = create_engine(settings.database_url)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    watch = EventWatch(session_factory(engine), poll_seconds=POLL)
    woken: list[int] = []
    everyone_woke = anyio.Event()

    async def watcher(index: int) -> None:
        await watch.changed(FineTuneJob, job_id, seen=1)  # the job's "queued" event is number 1
        woken.append(index)
        if len(woken) == WATCHERS:
            everyone_woke.set()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch.run)
            for index in range(WATCHERS):
                tasks.start_soon(watcher, index)
            await anyio.sleep(20 * POLL)
            polls = [s for s in statements if "event_count" in s]
            # About one read per poll for all of them together (20 polls): not one each.
            assert 5 <= len(polls) <= 25, len(polls)
            assert woken == []

            cancelled = await client.post(f"/v1/fine-tunes/{job_id}/cancel", headers=caller.headers)
            assert cancelled.status_code == 200
            with anyio.fail_after(5):
                await everyone_woke.wait()
            assert sorted(woken) == list(range(WATCHERS))

            # Nobody waits now: the poller stops reading.
            quiet_from = len(statements)
            await anyio.sleep(10 * POLL)
            assert len(statements) == quiet_from
            tasks.cancel_scope.cancel()
    finally:
        await engine.dispose()


async def test_a_watcher_of_a_deleted_source_wakes(settings: Settings, client: Client) -> None:
    """A source that no longer exists (deleted, or never there) ends the wait rather than hanging."""
    engine = create_engine(settings.database_url)
    watch = EventWatch(session_factory(engine), poll_seconds=POLL)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch.run)
            with anyio.fail_after(5):
                await watch.changed(FineTuneJob, uuid.uuid4(), seen=0)
            tasks.cancel_scope.cancel()
    finally:
        await engine.dispose()
