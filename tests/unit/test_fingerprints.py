"""Frame hashes (PDQ) and the near-copy rule, on pictures and on footage read through PyAV."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from core.fingerprints import MATCH_DISTANCE, closest, hash_frame, sample_indices, sample_positions
from service.media.fingerprints import fingerprint


def _scene(seed: int, size: tuple[int, int] = (320, 180)) -> np.ndarray:
    """A photograph-like picture: soft overlapping shapes of colour with a little grain, per seed."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = int(rng.integers(20, size[0] // 2)), int(rng.integers(20, size[1] // 2))
        draw.ellipse((x - w, y - h, x + w, y + h), fill=_colour(rng))
    soft = np.asarray(image.filter(ImageFilter.GaussianBlur(1))).astype(np.float64)
    return np.clip(soft + rng.normal(0, 6, soft.shape), 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in rng.integers(0, 256, 3))
    return red, green, blue


def _reencoded(picture: np.ndarray, scale: float, quality: int) -> np.ndarray:
    """The picture scaled and saved as a lossy JPEG, as a copy of a frame comes out of other codecs."""
    image = Image.fromarray(picture)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    found = closest([hash_frame(a).bits], [hash_frame(b).bits])
    assert found is not None
    return found.distance


def test_a_rescaled_reencoded_copy_of_a_frame_is_a_near_copy() -> None:
    frame = _scene(3)
    for scale, quality in [(1.0, 60), (0.5, 75), (1.5, 40)]:
        assert _distance(frame, _reencoded(frame, scale, quality)) <= MATCH_DISTANCE


def test_an_unrelated_frame_is_far_from_it() -> None:
    frame = _scene(3)
    distances = [_distance(frame, _scene(seed)) for seed in range(4, 10)]
    assert min(distances) > 2 * MATCH_DISTANCE, distances


def test_a_flat_frame_is_not_comparable() -> None:
    assert not hash_frame(np.full((64, 64, 3), 12, dtype=np.uint8)).comparable
    assert hash_frame(_scene(3)).comparable


def test_closest_names_the_nearest_pair() -> None:
    frames = [_scene(seed) for seed in (3, 4, 5)]
    found = closest(
        [hash_frame(_scene(10)).bits, hash_frame(_reencoded(frames[2], 0.5, 70)).bits],
        [hash_frame(frame).bits for frame in frames],
    )
    assert found is not None and (found.candidate, found.reference) == (1, 2) and found.near_copy
    assert closest([], [hash_frame(frames[0]).bits]) is None


def test_samples_spread_over_the_clip() -> None:
    assert sample_indices(9, 16) == list(range(9))
    assert sample_indices(81, 4) == [10, 30, 50, 70]
    assert sample_positions(4) == [0.125, 0.375, 0.625, 0.875]


def _clip(path: Path, pictures: list[np.ndarray], fps: int = 8) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for picture in pictures:
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_footage_is_sampled_evenly_and_each_shot_is_found_again(tmp_path: Path) -> None:
    # Four shots of 8 frames each (one second at 8 fps).
    shots = [_scene(seed) for seed in (11, 12, 13, 14)]
    sampled = fingerprint(
        _clip(tmp_path / "footage.mp4", [shot for shot in shots for _ in range(8)]), count=8
    )
    assert [round(s.seconds * 8) for s in sampled] == [2, 6, 10, 14, 18, 22, 26, 30]
    for index, shot in enumerate(shots):
        found = closest([hash_frame(_reencoded(shot, 0.5, 70)).bits], [s.hash.bits for s in sampled])
        assert found is not None and found.near_copy and found.reference // 2 == index


def test_a_still_has_one_sample(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    Image.fromarray(_scene(3)).save(path)
    (sample,) = fingerprint(path)
    assert sample.seconds == 0.0 and sample.hash == hash_frame(_scene(3))
