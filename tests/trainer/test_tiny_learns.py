"""The built-in tiny base learns a look: the first thing a new user tries must show something.

The ``quick`` preset runs on the embedded default against real-looking footage with a
distinctive palette; then a few prompts render with the bare base and with the trained
adapter (same seeds), as the generation worker serves them, and the adapter's renders must
be at most half as far from the footage's look as the base's (``core.looks``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from core.bases.catalogue import tiny_entry
from core.bases.quantization import Quantization
from core.bases.tiny import AUTOENCODER_CONFIG
from core.looks import LookDistance, look_distance, look_stats
from service.jobs.presets import resolve
from service.jobs.schemas import Hyperparameters, Preset
from trainer import FolderSource, RunStorage, TrainingAsset, TrainingDataset, train
from trainer.data.footage import read_frames
from trainer.models import load_specification
from trainer.models.tiny import AutoencoderConfig, TinyAutoencoder
from trainer.serving import AdapterKey, GenerationEngine, GenerationRequest

TEAL = np.array([18.0, 88.0, 104.0])
AMBER = np.array([238.0, 146.0, 62.0])
SHADOW = np.array([12.0, 34.0, 42.0])
SUN = np.array([255.0, 214.0, 150.0])
PROMPTS = ("dsk", "dsk, a valley at dusk", "dsk, a lake below the hills", "a street at noon")
# With RUSHES_SCREENSHOTS set, as for the web tests, the look test draws what it measured.
SCREENSHOTS = (
    Path(__file__).parents[2] / "docs" / "screenshots" if os.environ.get("RUSHES_SCREENSHOTS") else None
)


def write_dusk_clip(path: Path, *, seed: int, frames: int = 40, width: int = 96, height: int = 64) -> Path:
    """A graded dusk landscape, H.264 at 16 fps: teal sky to an amber horizon, a soft sun, two
    ridges panning at different speeds, a vignette and film grain."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    horizon = (0.5 + 0.1 * rng.random()) * height
    sky = TEAL + (AMBER - TEAL) * (np.clip(ys / horizon, 0, 1) ** 2)[..., None]
    sun_x, phases = rng.uniform(0.2, 0.8) * width, rng.uniform(0, 2 * np.pi, 4)
    sun = np.exp(-((xs - sun_x) ** 2 + (ys - 0.8 * horizon) ** 2) / (2 * (0.06 * width) ** 2))
    vignette = 1 - 0.7 * ((xs / width - 0.5) ** 2 + (ys / height - 0.5) ** 2)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(16), options={"crf": "16"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            image = sky + sun[..., None] * (SUN - sky) * 0.9
            for layer, (speed, depth, shade) in enumerate(((0.4, 0.64, 0.55), (1.2, 0.76, 0.85))):
                x = (xs + index * speed) / width * 2 * np.pi
                ridge = height * (
                    depth
                    + 0.06 * np.sin(x * (layer + 1.3) + phases[layer])
                    + 0.03 * np.sin(x * 3.7 + phases[layer + 2])
                )
                ground = (ys > ridge)[..., None] * shade
                image = image * (1 - ground) + SHADOW * ground
            image = image * vignette[..., None]
            image += rng.normal(0, 5.0, (height, width, 1)) + rng.normal(0, 2.0, (height, width, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_the_tiny_autoencoder_has_no_weights_and_inverts_its_own_latents() -> None:
    vae = TinyAutoencoder(AutoencoderConfig(**AUTOENCODER_CONFIG))
    latents = 0.1 * torch.randn(2, 16, 3, 4, 6, generator=torch.Generator().manual_seed(0))

    video = vae.decode(latents).sample

    assert list(vae.parameters()) == [] and vae.state_dict() == {}
    assert video.shape == (2, 3, 9, 32, 48)  # Wan's factors: 1 + 4 (t - 1) frames, 8x each side
    torch.testing.assert_close(vae.encode(video).latent_dist.mode(), latents, rtol=0, atol=1e-5)


def test_the_tiny_autoencoder_keeps_smooth_footage() -> None:
    vae = TinyAutoencoder(AutoencoderConfig(**AUTOENCODER_CONFIG))
    ys, xs = torch.meshgrid(torch.linspace(-0.8, 0.8, 32), torch.linspace(-0.6, 0.6, 48), indexing="ij")
    frame = torch.stack([ys, xs, 0.5 * ys * xs])  # three smooth ramps
    video = frame[None, :, None].expand(1, 3, 9, 32, 48)

    restored = vae.decode(vae.encode(video).latent_dist.mode()).sample

    assert (restored - video).abs().max() < 0.02  # of a range of 2


def test_the_bare_tiny_base_renders_flat_grey() -> None:
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    defaults = tiny_entry().generation
    engine = GenerationEngine(
        spec,
        quantization=Quantization.FP32,
        fetch=lambda _: b"",
        device_cache_bytes=64 << 20,
        host_cache_bytes=64 << 20,
        max_batch=1,
    )
    try:
        (video,) = engine.generate([GenerationRequest(adapter=None, prompt="a lighthouse", seed=3)])
    finally:
        engine.close()

    assert video.shape == (defaults.frames, defaults.height, defaults.width, 3)
    assert abs(float(video.mean()) - 0.5) < 0.05 and float(video.std()) < 0.05


def _save_strip(path: Path, rows: list[list[np.ndarray]], scale: int = 4) -> None:
    """Rows of frames (footage, the bare base, the trained adapter) as one image for the docs."""
    gap = 4
    height = max(frame.shape[0] for row in rows for frame in row)
    width = max(sum(frame.shape[1] + gap for frame in row) for row in rows)
    canvas = np.full((len(rows) * (height + gap), width, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        x = 0
        for frame in row:
            canvas[r * (height + gap) : r * (height + gap) + frame.shape[0], x : x + frame.shape[1]] = frame
            x += frame.shape[1] + gap
    Image.fromarray(canvas).resize(
        (canvas.shape[1] * scale, canvas.shape[0] * scale), Image.Resampling.NEAREST
    ).save(path)


def _as_uint8(video: torch.Tensor) -> np.ndarray:
    """``[f, h, w, 3]`` in [0, 1] to uint8, as the worker encodes a render."""
    return (video.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: beside another test worker on two cores a second thread only
    contends, and 500 steps of small matrices would spend their time waiting on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.timeout(600)  # about 40 s of one core; contended CI runs take longer
@pytest.mark.usefixtures("one_thread")
def test_quick_on_real_looking_footage_halves_the_look_distance(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    paths = [write_dusk_clip(clips / f"dusk-{seed}.mp4", seed=seed) for seed in range(3)]
    dataset = TrainingDataset(
        version="dsv-dusk",
        assets=[
            TrainingAsset(
                key=path.name,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                rights={"attested_by": "test-tenant", "basis": "own footage"},
                caption="a valley at dusk",
                asset_id=path.stem,
            )
            for path in paths
        ],
        source=FolderSource(clips),
    )
    base = tiny_entry()
    config = replace(resolve(Preset.QUICK, Hyperparameters(), "dsk", base), device="cpu")
    storage = RunStorage.local(tmp_path / "run")

    result = train(config, base="tiny", dataset=dataset, storage=storage)

    assert result.status == "completed" and result.step == config.steps == 500
    assert result.export is not None
    adapter = storage.storage.get_bytes(result.export.adapter_key)
    # The footage as the trainer saw it: every frame, fitted to the training size.
    fitted = [read_frames(path, path.name, list(range(40)), height=64, width=64) for path in paths]
    footage = look_stats([_as_uint8((video.permute(1, 2, 3, 0) + 1) / 2) for video in fitted])
    # Served as the generation worker serves it on a CPU: the full-precision base, the
    # adapter applied per request, the base's default render settings.
    key = AdapterKey("tenant", "version")
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    engine = GenerationEngine(
        spec,
        quantization=Quantization.FP32,
        fetch=lambda _: adapter,
        device_cache_bytes=64 << 20,
        host_cache_bytes=64 << 20,
        max_batch=len(PROMPTS),
    )
    defaults = base.generation
    distances: dict[str, LookDistance] = {}
    shown: dict[str, list[np.ndarray]] = {}
    try:
        for name, adapter_key in (("base", None), ("trained", key)):
            requests = [
                GenerationRequest(
                    adapter=adapter_key,
                    prompt=prompt,
                    width=defaults.width,
                    height=defaults.height,
                    frames=defaults.frames,
                    steps=defaults.steps,
                    guidance=defaults.guidance,
                    seed=seed,
                )
                for seed, prompt in enumerate(PROMPTS)
            ]
            renders = [_as_uint8(video) for video in engine.generate(requests)]
            distances[name] = look_distance(look_stats(renders), footage)
            shown[name] = [render[len(render) // 2] for render in renders]
    finally:
        engine.close()

    if SCREENSHOTS is not None:
        footage_frames = [_as_uint8((video.permute(1, 2, 3, 0) + 1) / 2)[20] for video in fitted]
        _save_strip(SCREENSHOTS / "tiny-learns-a-look.png", [footage_frames, shown["base"], shown["trained"]])
    before, after = distances["base"], distances["trained"]
    report = f"base {before.to_dict()}, trained {after.to_dict()}"
    assert after.total <= 0.5 * before.total, report
    # What a LoRA of this base can learn, it learned: the footage's palette and its tones.
    assert after.colour < 0.6 * before.colour and after.tone < 0.5 * before.tone, report
