from __future__ import annotations

from pathlib import Path

import pytest

from service.media import probe
from tests.media_samples import make_still


@pytest.mark.parametrize(
    ("name", "fmt", "container", "codec"),
    [("s.png", "png", "png", "png"), ("s.jpg", "jpeg", "jpeg", "mjpeg"), ("s.tif", "tiff", "tiff", "tiff")],
)
def test_stills(media_dir: Path, name, fmt, container, codec) -> None:
    info = probe(make_still(media_dir / name, fmt, width=70, height=50))
    assert info.kind == "still"
    assert info.container == container
    assert info.codec == codec
    assert (info.width, info.height) == (70, 50)
    assert info.frame_count == 1
    assert info.frame_rate is None
    assert info.duration_seconds == 0
    assert info.bit_depth == 8
    assert info.has_audio is False


def test_still_without_extension_is_recognised_by_content(media_dir: Path) -> None:
    path = make_still(media_dir / "upload", "jpeg")
    assert probe(path).container == "jpeg"


@pytest.mark.parametrize(
    ("fmt", "mode", "pix_fmt", "bit_depth"),
    [("png", "RGBA", "rgba", 8), ("png", "L", "gray", 8), ("tiff", "I;16", "gray16le", 16)],
)
def test_still_pixel_formats(media_dir: Path, fmt, mode, pix_fmt, bit_depth) -> None:
    info = probe(make_still(media_dir / f"s.{fmt}", fmt, mode=mode))
    assert info.pix_fmt == pix_fmt
    assert info.bit_depth == bit_depth


def test_jpeg_colour_is_full_range(media_dir: Path) -> None:
    info = probe(make_still(media_dir / "s.jpg", "jpeg"))
    assert info.color_range == "pc"
