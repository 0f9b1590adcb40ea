"""A fine-tune in a process with our process settings (flushed denormals) resumes bit-identically.

The resume tests in ``test_trainer_resume.py`` run in the test process, where denormals are
not flushed. Here every run is a process of its own that starts as ``python -m trainer`` and
``python -m worker.run_job`` do, with ``trainer.process.flush_denormals``.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import safetensors.torch

from trainer import RunStorage
from trainer.checkpoint import completed_steps

REPO = Path(__file__).resolve().parents[2]
CRASHED = 17
# A run in its own process, set up as our entry points set theirs up. It checks that the
# setting reaches the thread that trains, and dies without cleanup at step ``crash_at``.
RUN = f"""
import os, pickle, sys

from trainer.process import flush_denormals

flush_denormals()

import torch

from trainer import RunStorage, train

config, dataset, folder, crash_at = pickle.loads(open(sys.argv[1], "rb").read())


def callback(report):
    if torch.tensor([1e-39]).mul(1.0).item() != 0.0:
        sys.exit("denormals are not flushed in the training thread")
    if report.step == crash_at:
        os._exit({CRASHED})


result = train(config, base="tiny", dataset=dataset, storage=RunStorage.local(folder), callback=callback)
print(repr(result.final_loss))
"""


def _run(
    tmp_path: Path, name: str, config, dataset, crash_at: int | None
) -> subprocess.CompletedProcess[str]:
    arguments = tmp_path / f"{name}.pickle"
    arguments.write_bytes(pickle.dumps((config, dataset, tmp_path / name, crash_at)))
    return subprocess.run(
        [sys.executable, "-c", RUN, str(arguments)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_crashed_run_resumed_in_a_new_process_matches_an_uninterrupted_one(
    tmp_path: Path, dataset, tiny_config
) -> None:
    # Validation in the middle renders through the sampler, where denormals were most common.
    config = tiny_config(steps=6, validation_every=3)

    straight = _run(tmp_path, "straight", config, dataset, crash_at=None)
    crashed = _run(tmp_path, "resumed", config, dataset, crash_at=5)
    assert crashed.returncode == CRASHED, crashed.stderr
    assert completed_steps(RunStorage.local(tmp_path / "resumed").storage, "checkpoints/") == [2, 4]
    resumed = _run(tmp_path, "resumed", config, dataset, crash_at=None)

    assert straight.returncode == 0, straight.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == straight.stdout  # the final loss, exactly
    a, b = (
        safetensors.torch.load_file(tmp_path / name / "adapter" / "adapter.safetensors")
        for name in ("straight", "resumed")
    )
    assert a.keys() == b.keys() and a
    assert all(a[k].equal(b[k]) for k in a)
