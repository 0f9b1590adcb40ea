"""Opening an upload with PyAV safely, and turning open failures into ``MediaError``s."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import av.error
from av.container import InputContainer
from av.stream import Disposition
from av.video.stream import VideoStream

from service.media.errors import CorruptMediaError, NotMediaError, UnsupportedMediaError
from service.media.formats import (
    ACCEPTED_STILLS,
    ACCEPTED_VIDEO_CONTAINERS,
    DEMUXER_WHITELIST,
    STILL_DEMUXERS,
    accepted_summary,
    human_name,
)
from service.media.sniff import read_head, sniff

NOT_MEDIA_MESSAGE = "the file is not a video or image PyAV can read"

_OPEN_OPTIONS = {
    "format_whitelist": ",".join(DEMUXER_WHITELIST),
    "protocol_whitelist": "file",
}

_ACCEPTED_LABELS = frozenset(ACCEPTED_VIDEO_CONTAINERS) | frozenset(ACCEPTED_STILLS)


@dataclass(frozen=True, slots=True)
class Opened:
    container: InputContainer
    stream: VideoStream
    #: Short container name: mov, mp4, matroska, webm, png, jpeg or tiff.
    name: str
    is_still: bool


# FFmpeg otherwise starts a decoder thread per core, each holding frames of its own: on a
# large machine a 4K probe would cost gigabytes. Two keep probing quick and its memory flat.
DECODER_THREADS = 2


def prepare_decoder(stream: VideoStream) -> None:
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = DECODER_THREADS


def open_media(path: Path) -> Opened:
    """Open ``path`` and pick its main video stream; raise a ``MediaError`` if we can't.

    The caller must close ``Opened.container``.
    """
    if not path.is_file():
        raise NotMediaError(f"{NOT_MEDIA_MESSAGE}: it is not a regular file")
    head = read_head(path)
    if not head:
        raise NotMediaError(f"{NOT_MEDIA_MESSAGE}: it is empty")
    label = sniff(head)
    try:
        # An absolute path is always read by FFmpeg's file protocol, never as a URL.
        container = av.open(str(path.resolve()), mode="r", options=_OPEN_OPTIONS)
    except (av.error.FFmpegError, OSError) as exc:
        if label in _ACCEPTED_LABELS:
            raise CorruptMediaError(
                f"the file looks like {human_name(label)} but cannot be read; it may be truncated "
                "or damaged, so export or copy it again"
            ) from exc
        if label is not None and isinstance(exc, av.error.ArgumentError):
            # FFmpeg recognised it, with a demuxer that is not on the whitelist.
            raise UnsupportedMediaError(_unsupported_container(label)) from exc
        raise NotMediaError(f"{NOT_MEDIA_MESSAGE}; {accepted_summary()}") from exc
    try:
        return _select(container, label)
    except BaseException:
        container.close()
        raise


def _unsupported_container(label: str) -> str:
    if label in ("wav", "aiff", "flac", "mp3"):
        return f"the file is {label} audio with no video; {accepted_summary()}"
    return f"container {label} is not supported; {accepted_summary()}"


def _select(container: InputContainer, label: str | None) -> Opened:
    demuxer = container.format.name
    is_still = demuxer in STILL_DEMUXERS
    if is_still:
        name = STILL_DEMUXERS[demuxer]
    elif label in ACCEPTED_VIDEO_CONTAINERS:
        name = label
    elif label is not None:
        raise UnsupportedMediaError(_unsupported_container(label))
    else:
        name = "matroska" if demuxer.startswith("matroska") else "mov"
    videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not videos:
        has_audio = bool(container.streams.audio)
        what = "only audio" if has_audio else "no video"
        raise UnsupportedMediaError(f"the file has {what}; {accepted_summary()}")
    default = [s for s in videos if s.disposition & Disposition.default]
    return Opened(container=container, stream=(default or videos)[0], name=name, is_still=is_still)
