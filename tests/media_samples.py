"""Small media files made on the spot, for tests that need uploads.

Everything here is generated with the encoders this PyAV build ships (see ``ENCODERS``);
nothing is downloaded. Files are tiny (64x48, 9 frames by default) so that they are
fast to make and to probe. DNxHR needs at least 256x120, so its clips default to 256x128.

    make_clip(dir / "a.mp4")                                   # H.264 in MP4
    make_clip(dir / "a.mov", codec="prores", profile="hq")     # ProRes 422 HQ in MOV
    make_still(dir / "a.png")
    make_corrupt(dir / "bad.mp4", kind="bitflip")
    make_not_media(dir / "notes.txt")
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream
from PIL import Image, ImageDraw

# SVT-AV1 prints a banner per encoder unless told otherwise.
os.environ.setdefault("SVT_LOG", "1")

VideoCodec = Literal["h264", "hevc", "prores", "dnxhd", "vp9", "av1", "mpeg4", "mjpeg", "png"]
Container = Literal["mp4", "mov", "mkv", "webm", "avi", "mpegts", "3gp"]
StillFormat = Literal["png", "jpeg", "tiff", "gif", "bmp", "webp"]
CorruptKind = Literal[
    "truncated",  # H.264 MP4 with its moov at the end, cut in half: the index is gone
    "truncated_faststart",  # moov first, cut in half: the index points past the end
    "truncated_mkv",  # H.264 Matroska cut in half
    "truncated_webm",  # VP9 WebM cut in half
    "bitflip",  # H.264 MP4, 64 bytes inverted in the middle of the video data
    "bitflip_prores",  # ProRes MOV, 64 bytes inverted in the middle of the video data
    "bitflip_last_gop",  # H.264 MP4, bytes inverted in the last frame
    "truncated_png",
    "truncated_jpeg",
    "truncated_tiff",
]
NotMediaKind = Literal["text", "random", "empty", "html", "playlist"]

#: Codec name (as ``MediaInfo.codec`` reports it) -> the encoder that makes it here.
ENCODERS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "prores": "prores_ks",
    "dnxhd": "dnxhd",
    "vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "mpeg4": "mpeg4",
    "mjpeg": "mjpeg",
    "png": "png",
}

#: Our container names -> FFmpeg muxer.
MUXERS: dict[str, str] = {
    "mp4": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "webm": "webm",
    "avi": "avi",
    "mpegts": "mpegts",
    "3gp": "3gp",
}

#: ProRes profiles by prores_ks number, and the name FFmpeg's decoder reports.
PRORES_PROFILES: dict[str, tuple[int, str, str]] = {
    # name: (prores_ks profile, pix_fmt, profile FFmpeg reports)
    "proxy": (0, "yuv422p10le", "Proxy"),
    "lt": (1, "yuv422p10le", "LT"),
    "standard": (2, "yuv422p10le", "Standard"),
    "hq": (3, "yuv422p10le", "HQ"),
    "4444": (4, "yuva444p10le", "4444"),
    "4444xq": (5, "yuva444p10le", "XQ"),
}

#: DNxHR profiles: name -> (pix_fmt, profile FFmpeg reports).
DNXHR_PROFILES: dict[str, tuple[str, str]] = {
    "dnxhr_lb": ("yuv422p", "DNXHR LB"),
    "dnxhr_sq": ("yuv422p", "DNXHR SQ"),
    "dnxhr_hq": ("yuv422p", "DNXHR HQ"),
    "dnxhr_hqx": ("yuv422p10le", "DNXHR HQX"),
    "dnxhr_444": ("yuv444p10le", "DNXHR 444"),
}

_DEFAULT_PIX_FMT: dict[str, str] = {
    "h264": "yuv420p",
    "hevc": "yuv420p",
    "vp9": "yuv420p",
    "av1": "yuv420p",
    "mpeg4": "yuv420p",
    "mjpeg": "yuvj420p",
    "png": "rgb24",
}


@dataclass(frozen=True)
class Colour:
    """H.273 code points, set on the encoder (and so written to the bitstream/container)."""

    primaries: int
    transfer: int
    matrix: int
    range: int  # 1 = tv (limited), 2 = pc (full)


BT709 = Colour(primaries=1, transfer=1, matrix=1, range=1)
BT2020_PQ = Colour(primaries=9, transfer=16, matrix=9, range=1)
BT2020_HLG = Colour(primaries=9, transfer=18, matrix=9, range=1)


def pattern(index: int, width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic RGB test picture: a gradient with a bar that moves with ``index``."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        shade = (seed * 37 + y * 255 // max(1, height - 1)) % 256
        draw.line([(0, y), (width, y)], fill=(shade, (seed * 91 + 64) % 256, 255 - shade))
    bar = max(2, width // 8)
    x = (index * bar + seed * 5) % max(1, width - bar)
    draw.rectangle([x, 0, x + bar - 1, height - 1], fill=(255, 255, (seed * 53) % 256))
    draw.rectangle([0, height - 1 - index % height, width // 4, height - 1], fill=(index * 29 % 256, 40, 40))
    return image


def make_clip(
    path: Path,
    codec: VideoCodec = "h264",
    container: Container | None = None,
    width: int | None = None,
    height: int | None = None,
    frames: int = 9,
    fps: int | Fraction = 24,
    pattern_seed: int = 0,
    *,
    profile: str | None = None,
    pix_fmt: str | None = None,
    gop: int | None = None,
    colour: Colour | None = None,
    audio: bool = False,
    rotation: int | None = None,
    sample_aspect_ratio: Fraction | None = None,
    faststart: bool = False,
) -> Path:
    """Encode a ``frames``-long clip to ``path`` and return ``path``.

    ``container`` defaults to the file extension (MP4 if that names no container).
    ``profile`` picks a ProRes profile (``PRORES_PROFILES``) or a DNxHR one (``DNXHR_PROFILES``).
    ``gop`` sets the keyframe interval. ``colour`` tags the stream. ``audio`` adds a short silent track.
    ``rotation`` sets a display matrix (degrees counter-clockwise).
    """
    muxer = MUXERS[container] if container else _muxer_for(path)
    if width is None or height is None:
        width, height = (256, 128) if codec == "dnxhd" else (64, 48)
    options, fmt = _encoder_settings(codec, profile, pix_fmt, gop)
    container_options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format=muxer, options=container_options) as out:
        stream = out.add_stream(ENCODERS[codec], rate=fps, options=options)
        assert isinstance(stream, VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = fmt
        ctx = stream.codec_context
        ctx.thread_count = 1  # deterministic output
        if colour is not None:
            ctx.color_primaries = colour.primaries
            ctx.color_trc = colour.transfer
            ctx.colorspace = colour.matrix
            ctx.color_range = colour.range
        if sample_aspect_ratio is not None:
            ctx.sample_aspect_ratio = sample_aspect_ratio
        if rotation is not None:
            stream.set_display_rotation(rotation)
        audio_stream = _add_audio(out, muxer) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_image(pattern(i, width, height, pattern_seed))
            frame.pts = i
            frame.time_base = Fraction(1) / Fraction(fps)
            if colour is not None:
                frame.color_primaries = colour.primaries
                frame.color_trc = colour.transfer
                frame.colorspace = colour.matrix
                frame.color_range = colour.range
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if audio_stream is not None:
            _write_silence(out, audio_stream, seconds=float(frames / Fraction(fps)))
    return path


def _muxer_for(path: Path) -> str:
    return MUXERS.get(path.suffix.lstrip(".").lower(), "mp4")


def _encoder_settings(
    codec: str, profile: str | None, pix_fmt: str | None, gop: int | None
) -> tuple[dict[str, str], str]:
    options: dict[str, str] = {}
    if codec == "prores":
        number, fmt, _ = PRORES_PROFILES[profile or "hq"]
        options["profile"] = str(number)
    elif codec == "dnxhd":
        fmt, _ = DNXHR_PROFILES[profile or "dnxhr_hq"]
        options["profile"] = profile or "dnxhr_hq"
    else:
        fmt = _DEFAULT_PIX_FMT[codec]
        if codec == "hevc":
            options["x265-params"] = "log-level=error"
            if gop:
                options["x265-params"] += f":keyint={gop}:min-keyint={gop}"
        elif codec == "vp9":
            options.update({"deadline": "realtime", "cpu-used": "8"})
        elif codec == "av1":
            options["preset"] = "12"
        elif codec == "h264":
            options["preset"] = "veryfast"
        if profile:
            options["profile"] = profile
    if gop and codec != "hevc":
        options["g"] = str(gop)
        if codec == "h264":
            options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    return options, pix_fmt or fmt


def _add_audio(out: OutputContainer, muxer: str) -> AudioStream:
    codec, rate = ("libopus", 48000) if muxer == "webm" else ("aac", 48000)
    stream = out.add_stream(codec, rate=rate)
    assert isinstance(stream, AudioStream)
    stream.layout = "mono"
    return stream


def _write_silence(out: OutputContainer, stream: AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    fmt = stream.codec_context.format.name
    chunk = 960
    pts = 0
    for _ in range(max(1, round(seconds * rate / chunk))):
        frame = av.AudioFrame(format=fmt, layout="mono", samples=chunk)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = rate
        frame.pts = pts
        pts += chunk
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An AAC-only MP4/M4A (or Opus WebM): media, but no video."""
    muxer = _muxer_for(path)
    with av.open(str(path), mode="w", format=muxer) as out:
        _write_silence(out, _add_audio(out, muxer), seconds)
    return path


def make_still(
    path: Path,
    fmt: StillFormat | None = None,
    width: int = 64,
    height: int = 48,
    pattern_seed: int = 0,
    *,
    mode: str = "RGB",
) -> Path:
    """A still image written by Pillow (``fmt`` defaults to the file extension)."""
    if fmt is None:
        suffix = path.suffix.lstrip(".").lower()
        fmt = {"jpg": "jpeg", "tif": "tiff"}.get(suffix, suffix)  # type: ignore[assignment]
    name = str(fmt).upper()
    image = pattern(0, width, height, pattern_seed).convert(mode)
    params: dict[str, object] = {"quality": 90} if name == "JPEG" else {}
    image.save(path, format=name, **params)
    return path


def make_noise_png(path: Path, side: int, seed: int = 0) -> Path:
    """A square PNG of random pixels: it hardly compresses, so its size follows ``side``
    (about 3 bytes a pixel), for files that must span a given number of upload parts."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=1)
    return path


def make_not_media(path: Path, kind: NotMediaKind = "text") -> Path:
    """A file that is not a video or an image."""
    content = {
        "text": b"Call sheet, day 3\nScene 14A, ext. harbour, 06:30 call\n" * 20,
        "random": _random_bytes(8192, seed=1),
        "empty": b"",
        "html": b"<!doctype html><html><head><title>x</title></head><body>not a video</body></html>\n",
        "playlist": (
            b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n"
            b"#EXT-X-ENDLIST\n"
        ),
    }[kind]
    path.write_bytes(content)
    return path


def _random_bytes(n: int, seed: int) -> bytes:
    """Deterministic noise that starts with no known magic number."""
    state = seed or 1
    out = bytearray()
    while len(out) < n:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out += struct.pack(">Q", state)
    out[0] = 0x00  # not 0xFF (an MPEG audio sync) nor any other magic
    return bytes(out[:n])


def make_corrupt(path: Path, kind: CorruptKind = "truncated") -> Path:
    """A recognisable media file that is truncated or damaged (see ``CorruptKind``)."""
    if kind == "truncated":
        truncate(make_clip(path, "h264", "mp4", frames=48, gop=12), 0.5)
    elif kind == "truncated_faststart":
        truncate(make_clip(path, "h264", "mp4", frames=48, gop=12, faststart=True), 0.5)
    elif kind == "truncated_mkv":
        truncate(make_clip(path, "h264", "mkv", frames=48, gop=12), 0.5)
    elif kind == "truncated_webm":
        truncate(make_clip(path, "vp9", "webm", frames=48, gop=12), 0.5)
    elif kind == "bitflip":
        make_clip(path, "h264", "mp4", frames=48, gop=12)
        start, size = find_box(path, b"mdat")
        flip_bytes(path, start + size // 2, 64)
    elif kind == "bitflip_prores":
        make_clip(path, "prores", "mov", frames=9)
        start, size = find_box(path, b"mdat")
        flip_bytes(path, start + size // 2, 64)
    elif kind == "bitflip_last_gop":
        make_clip(path, "h264", "mp4", frames=48, gop=12)
        start, size = find_box(path, b"mdat")
        flip_bytes(path, start + size - 40, 24)
    elif kind in ("truncated_png", "truncated_jpeg", "truncated_tiff"):
        fmt = kind.removeprefix("truncated_")
        truncate(make_still(path, fmt, width=128, height=96), 0.6)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return path


def truncate(path: Path, fraction: float) -> Path:
    """Keep the first ``fraction`` of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def flip_bytes(path: Path, offset: int, count: int) -> Path:
    """Invert ``count`` bytes from ``offset`` (in place)."""
    data = bytearray(path.read_bytes())
    for i in range(offset, min(offset + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def find_box(path: Path, box_type: bytes) -> tuple[int, int]:
    """(payload offset, payload size) of the first top-level ISO-BMFF box of ``box_type``."""
    data = path.read_bytes()
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = len(data) - pos
        if kind == box_type:
            return pos + header, size - header
        pos += size
    raise ValueError(f"no {box_type!r} box in {path}")
