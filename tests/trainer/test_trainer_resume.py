"""A run stopped or killed and resumed ends with the same adapter as one that never stopped."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import safetensors.torch
import torch

from core.storage.keys import TenantKeys
from trainer import (
    Control,
    LoraSettings,
    RunStorage,
    StepReport,
    StopTraining,
    TrainerInputError,
    train,
)
from trainer.checkpoint import completed_steps


def _adapter(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(folder / "adapter" / "adapter.safetensors")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, dataset, tiny_config_module):
    folder = tmp_path_factory.mktemp("straight")
    result = train(tiny_config_module, base="tiny", dataset=dataset, storage=RunStorage.local(folder))
    return folder, result


@pytest.fixture(scope="module")
def tiny_config_module(tiny_config):
    # Validation in the middle proves rendering does not disturb the training streams.
    return tiny_config(steps=6, validation_every=3)


def test_resume_after_a_crash_matches_an_uninterrupted_run(
    tmp_path: Path, dataset, uninterrupted, tiny_config_module
):
    straight_folder, straight = uninterrupted

    def crash(report: StepReport) -> None:
        if report.step == 5:
            raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError, match="worker lost"):
        train(
            tiny_config_module,
            base="tiny",
            dataset=dataset,
            storage=RunStorage.local(tmp_path),
            callback=crash,
        )
    storage = RunStorage.local(tmp_path)
    assert completed_steps(storage.storage, "checkpoints/") == [2, 4]  # a crash writes nothing

    resumed = train(tiny_config_module, base="tiny", dataset=dataset, storage=storage)

    assert resumed.status == "completed" and resumed.step == 6
    assert resumed.final_loss == straight.final_loss
    a, b = _adapter(straight_folder), _adapter(tmp_path)
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)


def test_a_run_with_offloaded_activations_resumes_to_the_uninterrupted_adapter(
    tmp_path: Path, dataset, uninterrupted, tiny_config_module
):
    # The uninterrupted run keeps its block inputs where they are (auto, on the tiny base).
    straight_folder, straight = uninterrupted
    offloaded = replace(tiny_config_module, offload_activations="on")
    storage = RunStorage.local(tmp_path)
    stopped = train(
        offloaded,
        base="tiny",
        dataset=dataset,
        storage=storage,
        callback=lambda report: Control.STOP if report.step == 3 else None,
    )
    assert (stopped.status, stopped.step) == ("stopped", 3)

    resumed = train(offloaded, base="tiny", dataset=dataset, storage=storage)

    assert resumed.final_loss == straight.final_loss
    a, b = _adapter(straight_folder), _adapter(tmp_path)
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)


@pytest.mark.parametrize("signal", ["return", "raise"])
def test_resume_after_a_clean_stop_matches_an_uninterrupted_run(
    tmp_path: Path, dataset, uninterrupted, tiny_config_module, signal: str
):
    straight_folder, straight = uninterrupted

    def stop(report: StepReport) -> Control | None:
        if report.step == 3:
            if signal == "raise":
                raise StopTraining
            return Control.STOP
        return None

    stopped = train(
        tiny_config_module, base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path), callback=stop
    )
    assert (stopped.status, stopped.step) == ("stopped", 3)

    resumed = train(tiny_config_module, base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path))

    assert resumed.final_loss == straight.final_loss
    a, b = _adapter(straight_folder), _adapter(tmp_path)
    assert all(a[k].equal(b[k]) for k in a)
    # Only the newest two checkpoints are kept.
    assert completed_steps(RunStorage.local(tmp_path).storage, "checkpoints/") == [4, 6]


def test_resuming_with_another_rank_is_an_input_error(tmp_path: Path, dataset, tiny_config) -> None:
    storage = RunStorage.local(tmp_path)
    train(tiny_config(steps=2), base="tiny", dataset=dataset, storage=storage)

    with pytest.raises(TrainerInputError, match="another LoRA rank"):
        train(
            tiny_config(steps=4, lora=LoraSettings(rank=8, alpha=8.0)),
            base="tiny",
            dataset=dataset,
            storage=storage,
        )


def test_tenant_storage_layout_uses_the_service_keys() -> None:
    keys = TenantKeys(uuid.UUID(int=1))
    ids = {
        "dataset_version_id": uuid.UUID(int=2),
        "job_id": uuid.UUID(int=3),
        "model_version_id": uuid.UUID(int=4),
    }

    layout = RunStorage.for_tenant(object(), keys, **ids)  # type: ignore[arg-type]

    assert layout.cache_prefix == keys.cache(ids["dataset_version_id"])
    assert layout.checkpoint_prefix == keys.checkpoints(ids["job_id"])
    assert layout.export_prefix == keys.adapter(ids["model_version_id"])
    assert layout.validation_prefix.startswith(layout.checkpoint_prefix)
