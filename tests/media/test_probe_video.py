from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from service.media import MediaInfo, probe
from tests.media_samples import (
    BT709,
    BT2020_HLG,
    BT2020_PQ,
    DNXHR_PROFILES,
    PRORES_PROFILES,
    VideoCodec,
    make_clip,
)

# (codec, file container, container probe reports, profile probe reports, pix_fmt)
CASES = [
    ("h264", "mp4", "mp4", "High", "yuv420p"),
    ("h264", "mov", "mov", "High", "yuv420p"),
    ("h264", "mkv", "matroska", "High", "yuv420p"),
    ("hevc", "mp4", "mp4", "Main", "yuv420p"),
    ("hevc", "mov", "mov", "Main", "yuv420p"),
    ("hevc", "mkv", "matroska", "Main", "yuv420p"),
    ("vp9", "webm", "webm", "Profile 0", "yuv420p"),
    ("vp9", "mkv", "matroska", "Profile 0", "yuv420p"),
    ("vp9", "mp4", "mp4", "Profile 0", "yuv420p"),
    ("av1", "mp4", "mp4", "Main", "yuv420p"),
    ("av1", "webm", "webm", "Main", "yuv420p"),
    ("av1", "mkv", "matroska", "Main", "yuv420p"),
    ("prores", "mov", "mov", "HQ", "yuv422p10le"),
    ("prores", "mkv", "matroska", "HQ", "yuv422p10le"),
    ("dnxhd", "mov", "mov", "DNXHR HQ", "yuv422p"),
]


@pytest.mark.parametrize(("codec", "ext", "container", "profile", "pix_fmt"), CASES)
def test_accepted_codec_and_container(media_dir: Path, codec, ext, container, profile, pix_fmt) -> None:
    width, height = (256, 136) if codec == "dnxhd" else (80, 48)
    path = make_clip(media_dir / f"clip.{ext}", codec, width=width, height=height, frames=11, fps=25)

    info = probe(path)

    assert info.kind == "video"
    assert info.container == container
    assert info.codec == codec
    assert info.profile == profile
    assert (info.width, info.height) == (width, height)
    assert info.frame_rate == pytest.approx(25.0)
    assert info.frame_count == 11
    assert info.duration_seconds == pytest.approx(11 / 25, abs=0.002)
    assert info.pix_fmt == pix_fmt
    assert info.bit_depth == (10 if "10" in pix_fmt else 8)
    assert info.has_audio is False
    assert info.rotation == 0
    assert info.sample_aspect_ratio is None


@pytest.mark.parametrize("name", list(PRORES_PROFILES))
def test_prores_profiles(media_dir: Path, name: str) -> None:
    _, _, reported = PRORES_PROFILES[name]
    info = probe(make_clip(media_dir / "p.mov", "prores", profile=name, frames=3))
    assert info.profile == reported
    # FFmpeg decodes ProRes 4444 at 12 bits, and keeps the alpha channel these clips have.
    if name.startswith("4444"):
        assert (info.pix_fmt, info.bit_depth) == ("yuva444p12le", 12)
    else:
        assert (info.pix_fmt, info.bit_depth) == ("yuv422p10le", 10)


@pytest.mark.parametrize("name", list(DNXHR_PROFILES))
def test_dnxhr_profiles(media_dir: Path, name: str) -> None:
    pix_fmt, reported = DNXHR_PROFILES[name]
    info = probe(make_clip(media_dir / "d.mov", "dnxhd", profile=name, frames=3))
    assert info.profile == reported
    assert info.pix_fmt == pix_fmt
    assert info.bit_depth == (10 if "10" in pix_fmt else 8)


def test_ntsc_frame_rate(media_dir: Path) -> None:
    info = probe(make_clip(media_dir / "n.mov", "h264", frames=12, fps=Fraction(24000, 1001)))
    assert info.frame_rate == pytest.approx(23.976, abs=0.001)
    assert info.frame_count == 12
    assert info.duration_seconds == pytest.approx(12 * 1001 / 24000, abs=0.002)


def test_ten_bit_hevc(media_dir: Path) -> None:
    info = probe(make_clip(media_dir / "h.mp4", "hevc", pix_fmt="yuv420p10le"))
    assert info.profile == "Main 10"
    assert info.pix_fmt == "yuv420p10le"
    assert info.bit_depth == 10


@pytest.mark.parametrize(
    ("codec", "ext"),
    [("h264", "mp4"), ("hevc", "mkv"), ("prores", "mov"), ("dnxhd", "mov"), ("vp9", "webm"), ("av1", "mp4")],
)
@pytest.mark.parametrize(
    ("colour", "names"),
    [
        (BT709, ("bt709", "bt709", "bt709", "tv")),
        (BT2020_PQ, ("bt2020", "smpte2084", "bt2020nc", "tv")),
        (BT2020_HLG, ("bt2020", "arib-std-b67", "bt2020nc", "tv")),
    ],
)
def test_colour_tags(media_dir: Path, codec, ext, colour, names) -> None:
    info = probe(make_clip(media_dir / f"c.{ext}", codec, frames=3, colour=colour))
    assert (info.color_primaries, info.color_transfer, info.color_space, info.color_range) == names


@pytest.mark.parametrize(("codec", "ext"), [("h264", "mkv"), ("vp9", "webm")])
def test_untagged_colour_is_none(media_dir: Path, codec, ext) -> None:
    info = probe(make_clip(media_dir / f"u.{ext}", codec, frames=3))
    assert (info.color_primaries, info.color_transfer, info.color_space) == (None, None, None)


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv", "webm"])
def test_audio_track(media_dir: Path, ext: str) -> None:
    codec: VideoCodec = "vp9" if ext == "webm" else "h264"
    info = probe(make_clip(media_dir / f"a.{ext}", codec, frames=12, audio=True))
    assert info.has_audio is True
    assert info.frame_count == 12


def test_rotation_and_pixel_aspect(media_dir: Path) -> None:
    path = make_clip(media_dir / "r.mp4", "h264", rotation=90, sample_aspect_ratio=Fraction(4, 3))
    info = probe(path)
    assert (info.width, info.height) == (64, 48)
    assert info.rotation == 90
    assert info.sample_aspect_ratio == "4:3"


@pytest.mark.parametrize(
    ("codec", "ext", "gop", "extra"),
    [
        ("h264", "mp4", 12, {}),
        ("h264", "mov", 12, {"faststart": True}),
        ("hevc", "mp4", 12, {}),  # x265 defaults to open GOPs: leading pictures after CRAs
        ("hevc", "mkv", 12, {}),
        ("vp9", "webm", 12, {}),
        ("av1", "mkv", 12, {}),
        ("prores", "mov", 1, {}),
    ],
)
def test_many_gops_probe_cleanly(media_dir: Path, codec, ext, gop, extra) -> None:
    # Several keyframe groups: the last and middle ones are decoded after seeking.
    info = probe(make_clip(media_dir / f"g.{ext}", codec, frames=60, gop=gop, **extra))
    assert info.frame_count == 60
    assert info.duration_seconds == pytest.approx(60 / 24, abs=0.002)


def test_to_dict_is_json_and_round_trips(media_dir: Path) -> None:
    info = probe(make_clip(media_dir / "j.mov", "prores", colour=BT709, audio=True))
    data = json.loads(json.dumps(info.to_dict()))
    assert data["codec"] == "prores"
    assert data["color_primaries"] == "bt709"
    assert data["has_audio"] is True
    assert MediaInfo.from_dict(data) == info
