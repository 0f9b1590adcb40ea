from __future__ import annotations

from pathlib import Path

import pytest

from service.media import CorruptMediaError, MediaError, NotMediaError, UnsupportedMediaError, probe, verify
from service.media import probing as probe_module
from tests.media_samples import (
    find_box,
    flip_bytes,
    make_audio_only,
    make_clip,
    make_corrupt,
    make_not_media,
    make_still,
    truncate,
)


def test_errors_share_one_base() -> None:
    for cls in (NotMediaError, UnsupportedMediaError, CorruptMediaError):
        assert issubclass(cls, MediaError)
    assert issubclass(MediaError, ValueError)


@pytest.mark.parametrize("kind", ["text", "random", "empty", "html", "playlist"])
def test_not_media(media_dir: Path, kind) -> None:
    path = make_not_media(media_dir / "upload.mp4", kind)
    with pytest.raises(NotMediaError, match="the file is not a video or image PyAV can read"):
        probe(path)


def test_a_directory_is_not_media(media_dir: Path) -> None:
    with pytest.raises(NotMediaError):
        probe(media_dir)


@pytest.mark.parametrize(
    ("codec", "name"),
    [("mpeg4", "v.mp4"), ("mjpeg", "v.mov"), ("png", "v.mov")],
)
def test_unsupported_codec(media_dir: Path, codec, name) -> None:
    path = make_clip(media_dir / name, codec)
    with pytest.raises(UnsupportedMediaError, match=rf"^codec {codec} is not supported; accepted: ProRes, "):
        probe(path)


@pytest.mark.parametrize(("name", "container"), [("v.avi", "avi"), ("v.ts", "mpegts"), ("v.3gp", "3gp")])
def test_unsupported_container(media_dir: Path, name, container) -> None:
    path = make_clip(media_dir / name, "h264", container)
    with pytest.raises(UnsupportedMediaError, match=rf"^container {container} is not supported; accepted: "):
        probe(path)


@pytest.mark.parametrize("fmt", ["gif", "bmp", "webp"])
def test_unsupported_still(media_dir: Path, fmt) -> None:
    path = make_still(media_dir / f"s.{fmt}", fmt)
    with pytest.raises(UnsupportedMediaError, match=rf"^container {fmt} is not supported"):
        probe(path)


@pytest.mark.parametrize("name", ["a.m4a", "a.webm"])
def test_audio_only(media_dir: Path, name) -> None:
    with pytest.raises(UnsupportedMediaError, match="only audio"):
        probe(make_audio_only(media_dir / name))


@pytest.mark.parametrize(
    ("kind", "name", "message"),
    [
        ("truncated", "c.mp4", "looks like MP4 but cannot be read"),
        ("truncated_faststart", "c.mp4", "truncated: its 'mdat' box needs"),
        ("truncated_mkv", "c.mkv", "truncated: its Matroska segment needs"),
        ("truncated_webm", "c.webm", "truncated: its Matroska segment needs"),
        ("bitflip", "c.mp4", "damaged"),
        ("bitflip_prores", "c.mov", "damaged"),
        ("bitflip_last_gop", "c.mp4", "damaged"),
        ("truncated_png", "c.png", "damaged"),
        ("truncated_jpeg", "c.jpg", "looks like JPEG but cannot be read"),
        ("truncated_tiff", "c.tif", "damaged"),
    ],
)
def test_corrupt(media_dir: Path, kind, name, message) -> None:
    path = make_corrupt(media_dir / name, kind)
    with pytest.raises(CorruptMediaError, match=message):
        probe(path)


def test_intact_versions_of_the_corrupt_samples_pass(media_dir: Path) -> None:
    # The same recipes without the damage: the rejections above are about the damage.
    assert probe(make_clip(media_dir / "a.mp4", "h264", frames=48, gop=12)).frame_count == 48
    assert probe(make_clip(media_dir / "b.webm", "vp9", frames=48, gop=12)).frame_count == 48
    assert probe(make_clip(media_dir / "c.mov", "prores")).frame_count == 9
    assert probe(make_still(media_dir / "d.png", width=128, height=96)).kind == "still"


def test_truncation_found_by_frame_count_alone(media_dir: Path, monkeypatch) -> None:
    # Without the box-size check, the demuxed frame count against the index still finds it.
    monkeypatch.setattr(probe_module, "truncation", lambda path, label: None)
    path = make_corrupt(media_dir / "c.mp4", "truncated_faststart")
    with pytest.raises(CorruptMediaError, match=r"truncated|incomplete"):
        probe(path)


def test_truncation_found_by_matroska_duration_alone(media_dir: Path, monkeypatch) -> None:
    # Without the segment-size check, the track's DURATION tag against the span read finds it.
    monkeypatch.setattr(probe_module, "truncation", lambda path, label: None)
    path = truncate(make_clip(media_dir / "c.mkv", "prores", frames=48), 0.5)
    with pytest.raises(CorruptMediaError, match=r"should last 2\.000 s but only"):
        probe(path)


def test_damage_in_the_last_gop_is_found_on_a_small_budget(media_dir: Path) -> None:
    # A budget of one 12-frame GOP: the first and last GOPs are still decoded in full.
    path = make_corrupt(media_dir / "c.mp4", "bitflip_last_gop")
    with pytest.raises(CorruptMediaError):
        probe(path, decode_budget_pixels=64 * 48 * 12)


def test_damage_in_every_frame_is_found_on_the_smallest_budget(media_dir: Path) -> None:
    path = make_clip(media_dir / "c.mov", "prores", frames=5)
    start, size = find_box(path, b"mdat")
    flip_bytes(path, start, size)
    with pytest.raises(CorruptMediaError):
        probe(path, decode_budget_pixels=1)


def test_gops_to_check_takes_the_last_and_spreads_the_rest() -> None:
    gops = [verify.Gop(key_ts=i * 12, packets=12) for i in range(9)]
    # Room for two middle GOPs: the middle one first, then the first quarter.
    assert verify.gops_to_check(gops, cap=24) == [8, 4, 2]
    assert verify.gops_to_check(gops, cap=12) == [8, 4]
    assert verify.gops_to_check(gops, cap=1000) == [8, 4, 2, 6, 1, 3, 5, 7]
    assert verify.gops_to_check(gops[:1], cap=1000) == []
    assert verify.gops_to_check(gops[:2], cap=1000) == [1]
