"""A worker asked to stop finishes cleanly, whenever the request arrives."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import anyio
import pytest

from service.db.engine import uninterrupted
from worker.__main__ import remember_stop_signals


@pytest.fixture
def restored_signal_handlers() -> Iterator[None]:
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("restored_signal_handlers")
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_before_the_supervisor_listens_is_remembered_not_fatal(number: signal.Signals) -> None:
    asked = remember_stop_signals()
    assert not asked.is_set()
    os.kill(os.getpid(), number)  # delivered to this (main) thread before kill returns
    assert asked.is_set()


async def test_a_cancelled_round_runs_to_its_end_and_the_cancellation_lands_after() -> None:
    steps: list[str] = []

    async def round_() -> str:
        steps.append("started")
        await anyio.sleep(0.2)  # a query in flight when the stop comes
        steps.append("finished")
        return "done"

    async def loop() -> None:
        steps.append(await uninterrupted(round_()))
        await anyio.sleep(60)  # where a stop should land: between rounds
        steps.append("never")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(loop)
        await anyio.sleep(0.05)
        tasks.cancel_scope.cancel()
    assert steps == ["started", "finished", "done"]
