"""Footage the trainer tests make for themselves, and a run small enough for 2 CPU cores."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from trainer import FolderSource, LoraSettings, TrainConfig, TrainingAsset, TrainingDataset

MakeClip = Callable[..., Path]


def write_clip(path: Path, *, frames: int, width: int, height: int, fps: int = 16, seed: int = 0) -> Path:
    """An H.264 clip of a random texture sliding sideways, so frames differ from each other."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(texture, 2 * index, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def make_clip() -> MakeClip:
    return write_clip


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two clips (one landscape at 16 fps, one portrait at 32 fps), a PNG still, one sidecar caption."""
    folder = tmp_path_factory.mktemp("clips")
    write_clip(folder / "walk.mp4", frames=12, width=48, height=32, seed=1)
    write_clip(folder / "pan.mp4", frames=20, width=32, height=48, fps=32, seed=2)
    still = np.random.default_rng(3).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(still).save(folder / "still.png")
    (folder / "walk.txt").write_text("a person walking through rain\n")
    return folder


def dataset_from(folder: Path) -> TrainingDataset:
    assets = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".txt":
            continue
        sidecar = path.with_suffix(".txt")
        assets.append(
            TrainingAsset(
                key=path.name,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                rights={"attested_by": "test-tenant", "basis": "own footage"},
                caption=sidecar.read_text() if sidecar.exists() else None,
                asset_id=f"asset-{path.stem}",
            )
        )
    return TrainingDataset(version="dsv-1", assets=assets, source=FolderSource(folder))


@pytest.fixture(scope="session")
def dataset(clips_dir: Path) -> TrainingDataset:
    return dataset_from(clips_dir)


TINY_RUN = TrainConfig(
    steps=4,
    seed=7,
    learning_rate=1e-2,
    lora=LoraSettings(rank=4, alpha=8.0),
    height=32,
    width=32,
    frames=5,
    trigger_word="sks",
    checkpoint_every=2,
    validation_inference_steps=2,
    validation_guidance=3.0,
    device="cpu",
)


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., TrainConfig]:
    def build(**changes: object) -> TrainConfig:
        return replace(TINY_RUN, **changes)  # type: ignore[arg-type]

    return build
