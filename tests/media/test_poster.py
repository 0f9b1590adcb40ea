from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from service.media import CorruptMediaError, NotMediaError, poster
from tests.media_samples import find_box, flip_bytes, make_clip, make_not_media, make_still, pattern


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG"
    return image


@pytest.mark.parametrize(
    ("codec", "ext"), [("h264", "mp4"), ("prores", "mov"), ("vp9", "webm"), ("av1", "mkv")]
)
def test_small_clip_keeps_its_size(media_dir: Path, codec, ext) -> None:
    image = _open(poster(make_clip(media_dir / f"v.{ext}", codec)))
    assert image.size == (64, 48)
    assert image.mode == "RGB"


def test_scaled_to_max_width_keeping_aspect(media_dir: Path) -> None:
    path = make_clip(media_dir / "v.mp4", "h264", width=320, height=180, frames=3)
    assert _open(poster(path, max_width=160)).size == (160, 90)
    assert _open(poster(path)).size == (320, 180)  # never enlarged


def test_default_max_width_is_640(media_dir: Path) -> None:
    path = make_clip(media_dir / "v.mov", "dnxhd", width=1280, height=720, frames=2)
    assert _open(poster(path)).size == (640, 360)


def test_frame_about_ten_percent_in(media_dir: Path) -> None:
    path = make_clip(media_dir / "v.mov", "prores", frames=20)
    image = _open(poster(path)).convert("RGB")

    def difference(index: int) -> float:
        diff = ImageChops.difference(image, pattern(index, 64, 48))
        return float(sum(ImageStat.Stat(diff).mean))

    assert min(range(20), key=difference) == 2


def test_display_rotation_and_pixel_aspect_are_applied(media_dir: Path) -> None:
    rotated = make_clip(media_dir / "r.mp4", "h264", rotation=90)
    assert _open(poster(rotated)).size == (48, 64)
    anamorphic = make_clip(media_dir / "a.mov", "prores", sample_aspect_ratio=Fraction(4, 3))
    assert _open(poster(anamorphic)).size == (85, 48)


@pytest.mark.parametrize(("name", "mode"), [("s.png", "RGBA"), ("s.jpg", "RGB"), ("s.tif", "RGB")])
def test_still(media_dir: Path, name, mode) -> None:
    image = _open(poster(make_still(media_dir / name, width=100, height=40, mode=mode), max_width=50))
    assert image.size == (50, 20)


def test_no_decodable_frame(media_dir: Path) -> None:
    path = make_clip(media_dir / "v.mov", "prores", frames=5)
    start, size = find_box(path, b"mdat")
    flip_bytes(path, start, size)
    with pytest.raises(CorruptMediaError):
        poster(path)


def test_not_media(media_dir: Path) -> None:
    with pytest.raises(NotMediaError):
        poster(make_not_media(media_dir / "x.jpg"))


def test_max_width_must_be_positive(media_dir: Path) -> None:
    with pytest.raises(ValueError, match="max_width"):
        poster(make_still(media_dir / "s.png"), max_width=0)
