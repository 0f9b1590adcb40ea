"""Checkpoints in storage: adapter, optimiser, LR schedule, every RNG, sampler position, step.

Layout under the run's checkpoint prefix::

    step-00000250/adapter.safetensors   peft state dict of the LoRA
    step-00000250/state.pt              optimiser, LR scheduler, RNG states, sampler
    step-00000250/meta.json             step and loss; written last, so it marks completion

A checkpoint without ``meta.json`` (the process died mid-write) is ignored on resume.
"""

from __future__ import annotations

import io
import json
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import safetensors.torch
import torch

from core.storage.base import ObjectStorage

_STEP_DIR = re.compile(r"step-(\d{8})/meta\.json$")


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a step may touch, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, position, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": position,
            "has_gauss": has_gauss,
            "cached_gaussian": cached,
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class Checkpoint:
    key: str  # the checkpoint's folder prefix
    step: int
    loss: float | None
    adapter: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    lr_scheduler: dict[str, Any]
    rng: dict[str, Any]
    sampler: dict[str, Any]


def checkpoint_prefix(prefix: str, step: int) -> str:
    return f"{prefix}step-{step:08d}/"


def save(
    storage: ObjectStorage,
    prefix: str,
    *,
    step: int,
    loss: float | None,
    adapter: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    lr_scheduler: dict[str, Any],
    rng: dict[str, Any],
    sampler: dict[str, Any],
) -> str:
    folder = checkpoint_prefix(prefix, step)
    tensors = {name: t.detach().cpu().contiguous() for name, t in adapter.items()}
    storage.put_bytes(f"{folder}adapter.safetensors", safetensors.torch.save(tensors))
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer, "lr_scheduler": lr_scheduler, "rng": rng, "sampler": sampler}, buffer)
    storage.put_bytes(f"{folder}state.pt", buffer.getvalue())
    storage.put_bytes(
        f"{folder}meta.json", json.dumps({"step": step, "loss": loss}).encode(), "application/json"
    )
    return folder


def completed_steps(storage: ObjectStorage, prefix: str) -> list[int]:
    steps = []
    for info in storage.list_objects(prefix):
        match = _STEP_DIR.search(info.key[len(prefix) :])
        if match:
            steps.append(int(match.group(1)))
    return sorted(steps)


def latest(storage: ObjectStorage, prefix: str) -> str | None:
    steps = completed_steps(storage, prefix)
    return checkpoint_prefix(prefix, steps[-1]) if steps else None


def load(storage: ObjectStorage, folder: str) -> Checkpoint:
    meta = json.loads(storage.get_bytes(f"{folder}meta.json"))
    adapter = safetensors.torch.load(storage.get_bytes(f"{folder}adapter.safetensors"))
    # weights_only: a checkpoint in shared storage is data, never code to unpickle.
    state = torch.load(io.BytesIO(storage.get_bytes(f"{folder}state.pt")), weights_only=True)
    return Checkpoint(
        key=folder,
        step=int(meta["step"]),
        loss=meta["loss"],
        adapter=adapter,
        optimizer=state["optimizer"],
        lr_scheduler=state["lr_scheduler"],
        rng=state["rng"],
        sampler=state["sampler"],
    )


def prune(storage: ObjectStorage, prefix: str, keep: int) -> None:
    """Delete all but the newest ``keep`` complete checkpoints, oldest first."""
    steps = completed_steps(storage, prefix)
    for step in steps[: max(0, len(steps) - keep)]:
        folder = checkpoint_prefix(prefix, step)
        # meta.json first: a half-deleted checkpoint must never look complete.
        storage.delete(f"{folder}meta.json")
        storage.delete_prefix(folder)
