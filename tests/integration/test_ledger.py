"""The usage ledger against the work rows' own accounts, over randomised runs of fine-tunes
(heartbeats, successes, failures on the tenant's input and the platform's fault, cancels, lost
leases, resumes) and generations (succeeded, failed, cancelled), played through the real queues
and the worker's own failure path. Two independent accounts must agree: what the lease updates
add to each row, and what the ledger entries written beside them add up to in the usage report
and the quota view."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.db.engine import create_engine, session_factory
from service.generations.queue import GenerationQueue
from service.jobs.queue import JobQueue, Lease
from service.jobs.scheduling import WorkerSlot
from tests.helpers import Caller, fine_tune_body, make_model_version, sign_up
from tests.media_samples import make_clip
from worker.run_job import Pulse, _finish_failed

Client = AsyncTestClient[Litestar]
FineTuneEnd = Literal["succeeded", "failed", "platform_fault", "cancelled", "lost"]
GenerationEnd = Literal["succeeded", "failed", "cancelled"]
WORKER = "ledger-test"
seconds = st.floats(min_value=0.0, max_value=500.0, allow_nan=False).map(lambda x: round(x, 3))


@dataclass(frozen=True)
class FineTune:
    beats: list[float]
    end: FineTuneEnd
    final: float
    resume: bool


@dataclass(frozen=True)
class Render:
    seconds: float
    output: int
    end: GenerationEnd


work = st.one_of(
    st.builds(
        FineTune,
        beats=st.lists(seconds, max_size=3),
        end=st.sampled_from(["succeeded", "failed", "platform_fault", "cancelled", "lost"]),
        final=seconds,
        resume=st.booleans(),
    ),
    st.builds(
        Render,
        seconds=seconds,
        output=st.integers(min_value=1, max_value=10**9),
        end=st.sampled_from(["succeeded", "failed", "cancelled"]),
    ),
)


class Player:
    """Plays one tenant's work through the API and the queues, one piece at a time."""

    def __init__(self, client: Client, settings: Settings, caller: Caller, dataset: tuple[str, str]) -> None:
        self.client, self.caller = client, caller
        self.engine = create_engine(settings.database_url)
        self.jobs = JobQueue(session_factory(self.engine), settings.jobs)
        self.generations = GenerationQueue(session_factory(self.engine), settings.generations)
        self.dataset_id, self.model_id = dataset

    async def post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=self.caller.headers)
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def lease(self, job_id: str) -> Lease:
        lease = await self.jobs.lease(WORKER, WorkerSlot(free_bytes=2**40))
        assert lease is not None and str(lease.job_id) == job_id
        return lease

    async def fine_tune(self, run: FineTune) -> None:
        job = await self.post("/v1/fine-tunes", fine_tune_body(self.dataset_id, 1, model_id=self.model_id))
        lease = await self.lease(job["id"])
        for beat in run.beats:
            assert (await self.jobs.heartbeat(lease, step=1, gpu_seconds=beat)).held
        if run.end == "lost":  # the worker died: the attempt counts, the job is queued again
            await self.jobs.abandon(lease)
            lease = await self.lease(job["id"])
        if run.end == "platform_fault":
            await _finish_failed(self.jobs, lease, Pulse(share=0.0), "internal error", platform_fault=True)
        else:
            status = {"failed": WorkStatus.FAILED, "cancelled": WorkStatus.CANCELLED}.get(
                run.end, WorkStatus.SUCCEEDED
            )
            assert await self.jobs.finish(lease, status, gpu_seconds=run.final)
        if run.resume and run.end in ("failed", "platform_fault", "cancelled"):
            await self.post(f"/v1/fine-tunes/{job['id']}/resume")
            lease = await self.lease(job["id"])
            assert await self.jobs.finish(lease, WorkStatus.SUCCEEDED, gpu_seconds=run.final)

    async def render(self, run: Render) -> None:
        generation = await self.post("/v1/generations", {"model_id": self.model_id, "prompt": "rain"})
        (claimed,) = await self.generations.claim_batch(WORKER, ["tiny"], 1)
        assert str(claimed.id) == generation["id"]
        if run.end == "succeeded":
            ended = await self.generations.finish_succeeded(
                WORKER, claimed.id, output_bytes=run.output, gpu_seconds=run.seconds
            )
        elif run.end == "failed":
            ended = await self.generations.finish_failed(
                WORKER, claimed.id, "broken", gpu_seconds=run.seconds
            )
        else:
            ended = await self.generations.finish_cancelled(WORKER, claimed.id, gpu_seconds=run.seconds)
        assert ended


async def _items(client: Client, caller: Caller, path: str) -> list[dict[str, Any]]:
    response = await client.get(f"{path}?limit=200", headers=caller.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "a.mp4")


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(runs=st.lists(work, min_size=1, max_size=6))
async def test_ledger_sums_equal_the_work_rows_accounts(
    client: Client, settings: Settings, storage: ObjectStorage, clip: Path, runs: list[FineTune | Render]
) -> None:
    # Each example is its own tenant, so examples never share a ledger.
    caller = await sign_up(client, f"Ledger {uuid.uuid4().hex[:6]}")
    version = await make_model_version(client, caller, settings, storage, clip)
    (dataset,) = await _items(client, caller, "/v1/datasets")
    player = Player(client, settings, caller, (dataset["id"], version["model_id"]))
    try:
        for run in runs:
            await (player.fine_tune(run) if isinstance(run, FineTune) else player.render(run))
    finally:
        await player.engine.dispose()

    jobs = await _items(client, caller, "/v1/fine-tunes")
    generations = await _items(client, caller, "/v1/generations")
    fine_tune_seconds = sum(j["gpu_seconds"] - j["waived_gpu_seconds"] for j in jobs)
    generation_seconds = sum(g["gpu_seconds"] for g in generations if g["status"] != "failed")
    output_bytes = sum(g["output_bytes"] or 0 for g in generations if g["status"] == "succeeded")

    usage = (await client.get("/v1/usage", headers=caller.headers)).json()
    assert usage["fine_tunes"]["gpu_seconds"] == pytest.approx(fine_tune_seconds, abs=1e-6)
    assert usage["generations"]["gpu_seconds"] == pytest.approx(generation_seconds, abs=1e-6)
    assert usage["generations"]["output_bytes"] == output_bytes
    assert sum(d["fine_tune_gpu_seconds"] for d in usage["days"]) == pytest.approx(
        fine_tune_seconds, abs=1e-6
    )
    entries = await _items(client, caller, "/v1/usage/ledger")
    # Credits are only ever given to fine-tunes that failed by the platform's fault.
    waived = {j["id"] for j in jobs if j["waived_gpu_seconds"] > 0}
    assert {e["work_id"] for e in entries if e["quantity"] < 0} <= waived
    quotas = (await client.get("/v1/quotas", headers=caller.headers)).json()
    (gpu,) = [q for q in quotas["quotas"] if q["quota"] == "gpu_seconds_per_month"]
    assert gpu["used"] == pytest.approx(fine_tune_seconds + generation_seconds, abs=1e-6)
