"""``poster``: a small JPEG to show for an upload."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av.error
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream
from PIL import Image

from service.media.container import open_media, prepare_decoder
from service.media.errors import CorruptMediaError

POSTER_POSITION = 0.10
JPEG_QUALITY = 85


def poster(path: Path, max_width: int = 640) -> bytes:
    """A JPEG of the frame about 10% into the clip (else its first frame; a still itself).

    The picture is shown as it is meant to be seen (display rotation and non-square
    pixels applied) and scaled down, keeping its aspect ratio, to at most ``max_width``
    pixels wide. Raises ``CorruptMediaError`` if no frame decodes, and the other
    ``MediaError``s as ``probe`` does for files that are not accepted media.
    """
    if max_width < 1:
        raise ValueError("max_width must be at least 1")
    opened = open_media(path)
    with opened.container as container:
        stream = opened.stream
        prepare_decoder(stream)
        frame = None if opened.is_still else frame_at(container, stream, POSTER_POSITION)
        if frame is None:
            frame = first_frame(container, stream, rewind=not opened.is_still)
        image = display_image(frame, stream.sample_aspect_ratio)
    if image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def frame_at(container: InputContainer, stream: VideoStream, position: float) -> VideoFrame | None:
    """The first frame at or after ``position`` of the duration, or None if that fails."""
    time_base = stream.time_base
    if time_base is None:
        return None
    if stream.duration:
        duration = stream.duration
    elif container.duration:
        duration = int(Fraction(container.duration, 1_000_000) / time_base)
    else:
        return None
    start = stream.start_time or 0
    target = start + int(duration * position)
    if target <= start:
        return None
    try:
        container.seek(target, stream=stream, backward=True)
        for packet in container.demux(stream):
            for frame in stream.decode(packet if packet.size else None):
                if frame.is_corrupt:
                    return None
                if frame.pts is None or frame.pts >= target:
                    return frame
    except av.error.FFmpegError:
        return None
    return None


def first_frame(container: InputContainer, stream: VideoStream, *, rewind: bool) -> VideoFrame:
    try:
        if rewind:
            container.seek(stream.start_time or 0, stream=stream, backward=True)
        for frame in container.decode(stream):
            if not frame.is_corrupt:
                return frame
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(
            f"the file is damaged: no frame can be decoded ({exc.strerror}); export or copy it again"
        ) from exc
    raise CorruptMediaError("the file is damaged: no frame can be decoded; export or copy it again")


def display_image(frame: VideoFrame, sar: Fraction | None) -> Image.Image:
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    image = Image.frombuffer("RGB", (rgb.width, rgb.height), bytes(plane), "raw", "RGB", plane.line_size, 1)
    if sar and sar > 0 and sar != 1:
        image = image.resize((max(1, round(image.width * sar)), image.height), Image.Resampling.LANCZOS)
    rotation = frame.rotation % 360
    if rotation:
        # Display matrix angles are counter-clockwise, as are Pillow's.
        image = image.rotate(rotation, expand=True)
    return image
