"""``probe``: identify an upload and check that it decodes."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from av.container import InputContainer
from av.stream import Discard
from av.video.format import VideoFormat
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from service.media import colour, verify
from service.media.container import open_media, prepare_decoder
from service.media.errors import CorruptMediaError, UnsupportedMediaError
from service.media.formats import ACCEPTED_STILLS, ACCEPTED_VIDEO_CODECS, accepted_summary
from service.media.info import MediaInfo
from service.media.sniff import truncation

_MKV_DURATION = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")


def probe(path: Path, *, decode_budget_pixels: int = verify.DEFAULT_DECODE_BUDGET_PIXELS) -> MediaInfo:
    """Identify the video or still at ``path`` and check that it decodes.

    Every video packet is demuxed (read, not decoded) to count frames and find
    truncation; the first and last keyframe groups and a spread of others are decoded,
    ``decode_budget_pixels`` bounding the work on each of those three parts.

    Raises ``NotMediaError``, ``UnsupportedMediaError`` or ``CorruptMediaError`` (all
    ``MediaError``, a ``ValueError``) with a message meant for the uploader.
    """
    opened = open_media(path)
    with opened.container as container:
        stream = opened.stream
        codec = stream.codec.canonical_name
        if opened.is_still:
            if codec != ACCEPTED_STILLS[opened.name]:
                raise UnsupportedMediaError(
                    f"codec {codec} in a {opened.name} image is not supported; {accepted_summary()}"
                )
        else:
            if codec not in ACCEPTED_VIDEO_CODECS:
                raise UnsupportedMediaError(f"codec {codec} is not supported; {accepted_summary()}")
            problem = truncation(path, opened.name)
            if problem:
                raise CorruptMediaError(problem)
        for other in container.streams:
            if other.index != stream.index:
                other.discard = Discard.all
        prepare_decoder(stream)
        scan = verify.scan(container, stream, decode_budget_pixels)
        assert scan.first_frame is not None  # scan raises otherwise
        if opened.is_still:
            return _info(opened.name, container, stream, scan.first_frame, still=True)
        _check_complete(stream, scan)
        cap = verify.frame_cap(stream, decode_budget_pixels)
        for index in verify.gops_to_check(scan.gops, cap):
            verify.check_gop(container, stream, scan.gops[index], cap)
        return _info(opened.name, container, stream, scan.first_frame, scan=scan)


def _check_complete(stream: VideoStream, scan: verify.Scan) -> None:
    declared = stream.frames
    if declared and scan.packets < declared:
        raise CorruptMediaError(
            f"the file is truncated: only {scan.packets} of its {declared} frames are present; "
            "upload it again"
        )
    tagged = _tagged_duration(stream)
    span = _span_seconds(stream, scan)
    rate = _rate(stream)
    if tagged is not None and span is not None:
        frame = 1 / float(rate) if rate else 0.1
        if span < tagged - 2 * frame - 0.002:
            raise CorruptMediaError(
                f"the file is truncated or damaged: its video should last {tagged:.3f} s but only "
                f"{span:.3f} s can be read; upload it again"
            )


def _tagged_duration(stream: VideoStream) -> float | None:
    """The per-track DURATION tag Matroska muxers (FFmpeg, mkvmerge) write."""
    for key, value in stream.metadata.items():
        if key.upper() == "DURATION":
            match = _MKV_DURATION.match(value.strip())
            if match:
                hours, minutes, seconds = match.groups()
                return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def _span_seconds(stream: VideoStream, scan: verify.Scan) -> float | None:
    if scan.start is None or scan.end is None or stream.time_base is None or scan.end <= scan.start:
        return None
    return float((scan.end - scan.start) * stream.time_base)


def _rate(stream: VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate:
            return rate
    return None


def _duration(container: InputContainer, stream: VideoStream, scan: verify.Scan) -> float:
    span = _span_seconds(stream, scan)
    if span is not None:
        return span
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return 0.0


def _bit_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        components = VideoFormat(pix_fmt).components
    except ValueError:
        return None
    return max((c.bits for c in components), default=None) or None


def _info(
    name: str,
    container: InputContainer,
    stream: VideoStream,
    frame: VideoFrame,
    *,
    still: bool = False,
    scan: verify.Scan | None = None,
) -> MediaInfo:
    ctx = stream.codec_context
    pix_fmt = ctx.pix_fmt or frame.format.name
    sar = stream.sample_aspect_ratio
    if still or scan is None:
        frame_rate: float | None = None
        duration = 0.0
        frame_count = 1
    else:
        frame_count = scan.packets - scan.discarded
        duration = _duration(container, stream, scan)
        rate = _rate(stream)
        if rate:
            frame_rate = float(rate)
        elif duration:
            frame_rate = frame_count / duration
        else:
            frame_rate = None
    return MediaInfo(
        kind="still" if still else "video",
        container=name,
        codec=stream.codec.canonical_name,
        profile=stream.profile or None,
        width=stream.width or frame.width,
        height=stream.height or frame.height,
        frame_rate=frame_rate,
        duration_seconds=duration,
        frame_count=frame_count,
        pix_fmt=pix_fmt,
        bit_depth=_bit_depth(pix_fmt),
        color_primaries=colour.name(colour.PRIMARIES, ctx.color_primaries, frame.color_primaries),
        color_transfer=colour.name(colour.TRANSFER, ctx.color_trc, frame.color_trc),
        color_space=colour.name(colour.MATRIX, ctx.colorspace, frame.colorspace),
        color_range=colour.name(colour.RANGE, ctx.color_range, frame.color_range),
        has_audio=bool(container.streams.audio),
        rotation=frame.rotation % 360,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}" if sar and sar != 1 else None,
    )
