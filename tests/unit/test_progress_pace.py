"""Progress you can watch: a fine-tune's step reports become progress events at most every half
second (every step when steps are slow), beats at most every heartbeat interval and on the last
step, each with the step time and the time left; a generation's pace gives its time left."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest

from service.jobs.queue import Beat, Lease
from trainer.progress import StepReport
from worker import generate, run_job


class Recorder:
    """Stands in for the job queue: records what the heartbeat asks of it, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    async def heartbeat(
        self, lease: Lease, *, step: int | None, gpu_seconds: float, data: Any = None
    ) -> Beat:
        self.calls.append(("beat", step or 0, data or {}))
        return Beat(held=True, cancel=False)

    async def event(self, lease: Lease, type_: str, data: dict[str, Any]) -> bool:
        assert type_ == "progress"
        self.calls.append(("event", data["step"], data))
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _report(step: int, total: int) -> StepReport:
    return StepReport(
        step=step,
        total_steps=total,
        loss=0.5,
        learning_rate=1e-4,
        samples_per_second=1.0,
        peak_memory_bytes=1,
        peak_memory_kind="process_peak_rss",
        checkpoint_key=None,
        validation_keys=(),
    )


async def _run(
    step_seconds: float, total: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, int, dict[str, Any]]]:
    clock = Clock()
    monkeypatch.setattr(run_job.time, "monotonic", clock)
    queue = Recorder()
    lease = Lease(job_id=None, tenant_id=None, worker_id="w", attempt=1, estimated_bytes=1)  # type: ignore[arg-type]
    beat = run_job.Heartbeat(queue, lease, run_job.Pulse(share=1.0), interval=5.0)  # type: ignore[arg-type]

    def train() -> None:
        for step in range(1, total + 1):
            assert beat(_report(step, total)) is None
            clock.now += step_seconds

    await anyio.to_thread.run_sync(train)
    return queue.calls


async def test_fast_steps_are_coalesced_to_a_few_events_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = await _run(0.2, 10, monkeypatch)

    # Steps every 0.2 s: the first beats, then an event each time half a second has passed,
    # and the last step beats (a milestone).
    assert [(kind, step) for kind, step, _ in calls] == [
        ("beat", 1),
        ("event", 4),
        ("event", 7),
        ("beat", 10),
    ]
    _, _, at_four = calls[1]
    assert at_four["step_seconds"] == pytest.approx(0.2) and at_four["eta_seconds"] == pytest.approx(1.2)
    assert calls[-1][2]["eta_seconds"] == 0 and calls[0][2]["eta_seconds"] is None


async def test_slow_steps_each_get_an_event_and_beats_keep_their_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = await _run(2.0, 6, monkeypatch)

    assert [step for _, step, _ in calls] == [1, 2, 3, 4, 5, 6]
    # Beats (which extend the lease and charge GPU time) stay every 5 s at most.
    assert [step for kind, step, _ in calls if kind == "beat"] == [1, 4, 6]
    assert calls[3][2]["eta_seconds"] == pytest.approx(4.0)


def test_a_generations_time_left_is_timed_from_its_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(generate.time, "monotonic", clock)
    pace = generate.Pace(steps=20)
    assert pace.eta_seconds() is None
    clock.now += 30  # loading the base and encoding prompts: not a step
    pace.step(1)
    assert pace.eta_seconds() is None
    clock.now += 2.0
    pace.step(5)
    assert pace.eta_seconds() == pytest.approx(0.5 * 15)
