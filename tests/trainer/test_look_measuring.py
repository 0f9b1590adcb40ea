"""Measuring a finished run's look: the base's renders and the version's from the same noise,
footage windows at the same size, and a failure that leaves the fine-tune standing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from core.bases.catalogue import tiny_entry
from core.looks import look_stats
from core.settings import WorkerSettings
from service.jobs.queue import Beat, Lease
from trainer import FolderSource, RunStorage, TrainConfig, Trainer, TrainingDataset
from trainer.look import LookPlan, RenderShape, measure_look, render_shape, sample_footage
from trainer.video import to_pixels
from worker.run_job import LeaseLost, Pulse, _measure_look

PLAN = LookPlan(renders=4, max_side=256, max_frames=9, steps=2, guidance=3.0)


@pytest.mark.parametrize(
    ("shape", "max_side", "max_frames", "expected"),
    [
        ((32, 32, 5), 256, 9, (5, 32, 32)),  # within bounds: the training shape itself
        ((480, 832, 81), 256, 9, (9, 144, 256)),  # Wan's 480p: the long side to 256, on 16s
        ((480, 832, 81), 256, 8, (5, 144, 256)),  # frames down to 1 + 4k
        ((64, 64, 33), 8, 9, (9, 16, 16)),  # never below one grid step
    ],
)
def test_renders_take_the_training_shape_within_the_plans_bounds(
    shape: tuple[int, int, int], max_side: int, max_frames: int, expected: tuple[int, int, int]
) -> None:
    height, width, frames = shape
    config = TrainConfig(height=height, width=width, frames=frames)
    plan = LookPlan(renders=4, max_side=max_side, max_frames=max_frames, steps=8, guidance=5.0)

    assert render_shape(config, plan, spatial_multiple=16, temporal_factor=4) == RenderShape(*expected)


@pytest.fixture(scope="module")
def trained(
    dataset: TrainingDataset,
    tiny_config: Callable[..., TrainConfig],
    tmp_path_factory: pytest.TempPathFactory,
) -> Trainer:
    trainer = Trainer(
        tiny_config(), base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path_factory.mktemp("run"))
    )
    assert trainer.run().status == "completed"
    return trainer


def test_the_base_and_the_version_render_from_the_same_noise_beside_the_footage(trained: Trainer) -> None:
    look = measure_look(trained, PLAN)

    seeds = [7, 8, 9, 10]  # the run's seed onwards
    assert look["measured"] is True and look["reason"] is None
    assert look["renders"] == {
        "count": 4,
        "prompts": 1,  # the trigger word alone: the run named no validation prompts
        "seeds": seeds,
        "frames": 5,
        "height": 32,
        "width": 32,
        "steps": 2,
        "guidance": 3.0,
    }
    # Three assets, two windows each where they are long enough (the still has one frame).
    assert look["footage_clips"] == 4
    # Rendering again, the adapter off and then on again, gives the measured statistics back:
    # the base side is the bare base and the version side the adapter, from the same noise.
    vae = trained.spec.load_vae()

    def render() -> np.ndarray:
        return to_pixels(
            trained.sample(vae, [0] * 4, seeds, frames=5, height=32, width=32, steps=2, guidance=3.0)
        )

    trained.transformer.disable_adapters()  # type: ignore[operator]
    base = render()
    trained.transformer.enable_adapters()  # type: ignore[operator]
    version = render()
    assert look["stats"]["base"] == look_stats(list(base)).to_dict()
    assert look["stats"]["version"] == look_stats(list(version)).to_dict()
    assert not np.array_equal(base, version)  # four steps at a high rate moved something
    footage = sample_footage(
        trained.dataset, trained.config, clips=4, shape=RenderShape(frames=5, height=32, width=32)
    )
    assert look["stats"]["footage"] == look_stats(footage).to_dict()
    # In the dataset's order (pan, still, walk): two windows of the pan, the still, a walk window.
    assert [clip.shape[0] for clip in footage] == [5, 5, 1, 5]
    assert all(clip.shape[1:] == (32, 32, 3) for clip in footage)


class HeldQueue:
    """The job queue as the measuring sees it: every beat holds the lease (or, ``held=False``,
    none does: another worker took the job)."""

    def __init__(self, *, held: bool = True) -> None:
        self.beats, self.held = 0, held

    async def heartbeat(self, lease: Lease, *, step: int | None, gpu_seconds: float) -> Beat:
        self.beats += 1
        return Beat(held=self.held, cancel=False)


LEASE = Lease(uuid.uuid4(), uuid.uuid4(), "worker", 1, 0)


async def test_a_measurement_that_fails_is_stored_as_its_reason(
    trained: Trainer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The footage is gone since the run started (its latents came from the cache, say).
    gone = TrainingDataset(version="dsv-1", assets=trained.dataset.assets, source=FolderSource(tmp_path))
    monkeypatch.setattr(trained, "dataset", gone)
    queue = HeldQueue()
    settings = WorkerSettings(heartbeat_seconds=0.01)

    with caplog.at_level(logging.ERROR, logger="rushes.worker"):
        look = await _measure_look(
            queue,  # type: ignore[arg-type]
            LEASE,
            Pulse(share=1.0),
            settings,
            tiny_entry(),
            trained,
        )

    assert look == {
        "measured": False,
        "reason": "The look could not be measured: asset-pan: footage not found",
    }
    assert "measuring the look failed" in caplog.text
    assert queue.beats >= 1  # the lease was kept while it rendered


async def test_an_internal_failure_says_only_its_kind(
    trained: Trainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def out_of_memory(*args: Any) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("worker.run_job.measure_look", out_of_memory)

    look = await _measure_look(
        HeldQueue(),  # type: ignore[arg-type]
        LEASE,
        Pulse(share=1.0),
        WorkerSettings(),
        tiny_entry(),
        trained,
    )

    assert look == {
        "measured": False,
        "reason": "The look could not be measured (OutOfMemoryError); the version itself is complete.",
    }


async def test_no_renders_measures_nothing(trained: Trainer) -> None:
    settings = WorkerSettings(look_renders=0)

    look = await _measure_look(
        HeldQueue(),  # type: ignore[arg-type]
        LEASE,
        Pulse(share=1.0),
        settings,
        tiny_entry(),
        trained,
    )

    assert look is None


async def test_a_lease_lost_while_measuring_is_not_concluded(trained: Trainer) -> None:
    # The measurement runs to its end, but its version is another worker's to make now.
    with pytest.raises(LeaseLost):
        await _measure_look(
            HeldQueue(held=False),  # type: ignore[arg-type]
            LEASE,
            Pulse(share=1.0),
            WorkerSettings(heartbeat_seconds=0.01),
            tiny_entry(),
            trained,
        )
