"""One typed training config: what the API accepts, the worker loads and runs.

Every preset, and the extremes of every bound the request exposes (just inside and just
outside), go through the API's create path; each accepted one then goes through the worker's
own config loading (``worker.run_job.load_config``) and the tiny base's specification checks,
without building a model. A refused one is a 422 that names its rule. Then the charging rule:
a run that fails by the platform's fault is not charged.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.bases.architecture import UMT5_XXL, WAN21_T2V_1_3B, umt5_encoder_dims, wan_transformer_dims
from core.bases.catalogue import WAN_GENERATION, BaseEntry, tiny_entry
from core.bases.memory import BaseDims
from core.settings import Settings
from core.training import BOUNDS, LR_SCHEDULERS, MAX_VALIDATION_PROMPTS, Bound, TrainConfig
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.jobs import presets
from service.jobs.models import FineTuneJob
from service.jobs.queue import JobQueue
from service.jobs.scheduling import WorkerSlot
from service.jobs.schemas import Hyperparameters, Preset
from tests.helpers import TINY_HYPERPARAMETERS, Caller, fine_tune_body, sign_up, trainable_dataset
from tests.media_samples import make_clip
from trainer import StepReport, TrainerInputError
from trainer.config import check_specification
from trainer.models import load_specification
from worker import run_job

Client = AsyncTestClient[Litestar]
TINY = tiny_entry()
TINY_SPEC = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
# A real base's sizes (Wan 2.1 T2V 1.3B), from its published config: no weights needed.
WAN = BaseEntry(
    id="wan2.1-t2v-1.3b",
    family="wan2.1",
    source="/models/wan",
    dims=BaseDims(
        transformer=wan_transformer_dims(WAN21_T2V_1_3B, text_tokens=512),
        text_encoder=umt5_encoder_dims(UMT5_XXL),
        vae_params=126_892_531,
        vae_base_dim=96,
    ),
    generation=WAN_GENERATION,
)
# The bounded settings a request may give, as the request schema names them.
REQUEST_BOUNDS = [BOUNDS[name] for name in Hyperparameters.model_fields if name in BOUNDS]


@pytest.fixture
async def tenant(client: Client, tmp_path: Path) -> tuple[Caller, str, int]:
    caller = await sign_up(client, "Film Co")
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"), name="Rain")
    return caller, dataset_id, number


def _inside(bound: Bound, value: float | None, integer: bool) -> float | None:
    """The extreme just inside an end of a bound (None: the bound has no such end)."""
    if value is None:
        return None
    open_end = bound.low_open if value == bound.low else bound.high_open
    if not open_end:
        return value
    step = 1 if integer else 1e-6
    return value + step if value == bound.low else value - step


def _outside(bound: Bound, value: float | None, integer: bool) -> float | None:
    if value is None:
        return None
    open_end = bound.low_open if value == bound.low else bound.high_open
    if open_end:
        return value
    step = 1 if integer else 0.5
    return value - step if value == bound.low else value + step


def _integer(bound: Bound) -> bool:
    return "int" in str(Hyperparameters.model_fields[bound.name].annotation)


def _cases() -> Iterator[tuple[str, dict[str, Any], bool | None]]:
    """(label, hyperparameters over the tiny run's, expected to be accepted or None: the base decides)."""
    for bound in REQUEST_BOUNDS:
        integer = _integer(bound)
        extra: dict[str, Any] = {}
        if bound.name == "validation_every":
            extra = {"validation_prompts": ["sks in the rain"]}
        if bound.name == "lr_warmup_steps":
            extra = {"steps": 100_000}
        for end in (bound.low, bound.high):
            inside, outside = _inside(bound, end, integer), _outside(bound, end, integer)
            if inside is not None:
                # Geometry at its extremes may be more than the tiny base places: the base decides.
                decides = None if bound.name in ("height", "width", "frames") else True
                yield f"{bound.name}={inside}", {bound.name: inside, **extra}, decides
            if outside is not None:
                yield f"{bound.name}={outside}", {bound.name: outside, **extra}, False
        if bound.high is None:
            accepted = bound.name != "lr_warmup_steps"  # it must stay fewer than steps
            yield f"{bound.name} large", {bound.name: 10**9, "steps": 100_000, **extra}, accepted
    minima = {b.name: _inside(b, b.low, _integer(b)) for b in REQUEST_BOUNDS}
    yield "every minimum", minima, True
    maxima: dict[str, Any] = {b.name: b.high for b in REQUEST_BOUNDS if b.high is not None}
    maxima.update(lr_warmup_steps=10, validation_every=1, validation_prompts=["a"])
    yield "every maximum", maxima, False
    for scheduler in (*LR_SCHEDULERS, "warmup_cosine"):
        yield f"lr_scheduler={scheduler}", {"lr_scheduler": scheduler}, scheduler in LR_SCHEDULERS
    for quantization in ("nf4", "int8", "bf16", "fp32"):
        yield f"quantization={quantization}", {"quantization": quantization}, True
    prompts = ["sks"] * MAX_VALIDATION_PROMPTS
    yield "most validation prompts", {"validation_every": 2, "validation_prompts": prompts}, True
    yield "too many validation prompts", {"validation_every": 2, "validation_prompts": [*prompts, "x"]}, False
    yield "warm-up as long as the run", {"steps": 10, "lr_warmup_steps": 10}, False
    yield "validation without prompts", {"validation_every": 2}, False
    yield "tiny's longest clip", {"frames": 125, "height": 512, "width": 512}, True
    yield "one latent frame too many", {"frames": 129}, False
    yield "one position too wide", {"width": 528}, False
    yield "not 1 + 4k frames", {"frames": 6}, False
    yield "not a multiple of 16", {"height": 40}, False


def _worker_loads(job: dict[str, Any], base: BaseEntry) -> TrainConfig:
    """What the worker does with the job row, then the trainer's own checks on the tiny spec."""
    config = run_job.load_config(job["config"], base, device="cpu")
    if base is TINY:
        check_specification(config, TINY_SPEC)
    return config


async def test_the_2048_square_257_frame_tiny_fine_tune_is_refused_at_create(
    client: Client, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    body = fine_tune_body(dataset_id, number, preset="standard")
    body["hyperparameters"] = {"height": 2048, "width": 2048, "frames": 257}

    response = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)

    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "base 'tiny'" in detail
    assert "frames must be at most 125" in detail and "at most 512" in detail and "2048x2048" in detail
    assert (await client.get("/v1/fine-tunes", headers=caller.headers)).json()["total"] == 0


@pytest.mark.parametrize("preset", list(Preset))
async def test_every_preset_and_bound_extreme_is_refused_at_create_or_loads_in_the_worker(
    client: Client, tenant: tuple[Caller, str, int], preset: Preset
) -> None:
    caller, dataset_id, number = tenant
    # The preset alone trains at the base's own size (64x64 on tiny), which the worker can run.
    alone = fine_tune_body(dataset_id, number, preset=preset.value, hyperparameters={})
    accepted = await client.post("/v1/fine-tunes", json=alone, headers=caller.headers)
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["config"]["height"], accepted.json()["config"]["width"]) == (64, 64)
    _worker_loads(accepted.json(), TINY)

    outcomes: dict[str, int] = {}
    for label, hyper, expected in [("tiny run", {}, True), *_cases()]:
        body = fine_tune_body(dataset_id, number, preset=preset.value)
        body["hyperparameters"] = {**TINY_HYPERPARAMETERS, **hyper}
        response = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)
        outcomes[label] = response.status_code
        assert response.status_code in (201, 422), (label, response.text)
        if expected is not None:
            assert (response.status_code == 201) is expected, (label, response.text)
        if response.status_code == 422:
            detail = response.json()["detail"]
            named = [name for name in hyper if name in detail] + [
                rule for rule in ("validation prompt", "fewer than steps", "lr_scheduler") if rule in detail
            ]
            assert named, (label, detail)
            continue
        job = response.json()
        config = _worker_loads(job, TINY)
        assert presets.job_record(config) == job["config"], label
        assert job["estimated_bytes"] == config.memory_plan(TINY.dims).total
        assert job["total_steps"] == config.steps
    # The extremes the tiny base decides: the smallest shapes run, the largest do not.
    assert outcomes["height=16"] == outcomes["frames=1"] == 201
    assert outcomes["height=2048"] == outcomes["width=2048"] == outcomes["frames=257"] == 422


@pytest.mark.parametrize("preset", list(Preset))
def test_every_preset_resolves_on_a_real_base_and_loads_in_the_worker(preset: Preset) -> None:
    config = presets.resolve(preset, Hyperparameters(), "sks", WAN)
    loaded = run_job.load_config(presets.job_record(config), WAN, device=None)

    assert loaded == config
    assert (config.height, config.width) == (480, 832)
    assert 0 < config.lr_warmup_steps < config.steps
    assert config.memory_plan(WAN.dims).total > 0


# The charging rule, through the worker's own ``run`` with the trainer replaced.


def _report(step: int = 4) -> StepReport:
    return StepReport(
        step=step,
        total_steps=4,
        loss=0.1,
        learning_rate=1e-3,
        samples_per_second=1.0,
        peak_memory_bytes=0,
        peak_memory_kind="process_peak_rss",
        checkpoint_key=None,
        validation_keys=(),
    )


def _trainer_that(fails_with: Exception) -> Any:
    """A stand-in for ``trainer.Trainer`` that beats once, then fails as a real run would."""

    class FailingTrainer:
        def __init__(self, config: TrainConfig, *, callback: Any, **_: Any) -> None:
            self.callback = callback

        def run(self) -> None:
            time.sleep(0.05)  # GPU time, charged by the beat below
            self.callback(_report())
            raise fails_with

    return FailingTrainer


async def _run_worker(settings: Settings, monkeypatch: pytest.MonkeyPatch, trainer: Any) -> None:
    monkeypatch.setattr(run_job, "Trainer", trainer)
    monkeypatch.setattr(run_job, "_on_shutdown", lambda pulse: None)
    engine = create_engine(settings.database_url)
    try:
        lease = await JobQueue(session_factory(engine), settings.jobs).lease(
            "charging-test", WorkerSlot(free_bytes=1 << 40)
        )
    finally:
        await engine.dispose()
    assert lease is not None
    await run_job.run(settings, lease, device="cpu", share=1.0)


async def _fine_tune_usage(client: Client, caller: Caller) -> dict[str, Any]:
    response = await client.get("/v1/usage", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["fine_tunes"])


async def test_a_run_failing_by_the_platforms_fault_is_not_charged_and_a_resume_is_charged_from_there(
    client: Client, tenant: tuple[Caller, str, int], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller, dataset_id, number = tenant
    created = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
    )
    job_id = created.json()["id"]
    path = f"/v1/fine-tunes/{job_id}"

    await _run_worker(settings, monkeypatch, _trainer_that(RuntimeError("view size is not compatible")))

    job = (await client.get(path, headers=caller.headers)).json()
    assert job["status"] == "failed" and "internal error (RuntimeError)" in job["failure_reason"]
    assert "not charged" in job["failure_reason"]
    assert job["gpu_seconds"] > 0 and job["waived_gpu_seconds"] == job["gpu_seconds"]
    events = (await client.get(f"{path}/events", headers=caller.headers)).json()["items"]
    assert events[-1]["type"] == "failed" and events[-1]["data"]["waived_gpu_seconds"] == job["gpu_seconds"]
    assert await _fine_tune_usage(client, caller) == {"count": 1, "succeeded": 0, "gpu_seconds": 0.0}

    # Resumed, it fails again on the tenant's footage: only the time after the resume is charged.
    assert (await client.post(f"{path}/resume", headers=caller.headers)).status_code == 200
    await _run_worker(settings, monkeypatch, _trainer_that(TrainerInputError("a.mp4: no video stream")))

    again = (await client.get(path, headers=caller.headers)).json()
    assert again["status"] == "failed" and again["failure_reason"] == "a.mp4: no video stream"
    assert again["waived_gpu_seconds"] == job["waived_gpu_seconds"] < again["gpu_seconds"]
    usage = await _fine_tune_usage(client, caller)
    assert usage["gpu_seconds"] == pytest.approx(again["gpu_seconds"] - job["gpu_seconds"])
    assert usage["gpu_seconds"] > 0


async def test_an_accepted_config_the_worker_refuses_fails_uncharged_without_training(
    client: Client, tenant: tuple[Caller, str, int], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job made before the API knew a rule (here, the tiny base's positions) is the platform's fault."""
    caller, dataset_id, number = tenant
    created = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
    )
    job_id = created.json()["id"]
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session:
        mark_unscoped(session)
        record = {**created.json()["config"], "height": 2048, "width": 2048, "frames": 257}
        await session.execute(
            update(FineTuneJob).where(FineTuneJob.id == uuid.UUID(job_id)).values(config=record)
        )
        await session.commit()
    await engine.dispose()

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the trainer must not start")

    await _run_worker(settings, monkeypatch, never)

    job = (await client.get(f"/v1/fine-tunes/{job_id}", headers=caller.headers)).json()
    assert job["status"] == "failed"
    assert "cannot run on this base" in job["failure_reason"] and "not charged" in job["failure_reason"]
    assert job["waived_gpu_seconds"] == job["gpu_seconds"]
    assert (await _fine_tune_usage(client, caller))["gpu_seconds"] == 0.0
