"""What is accepted, and the names used to talk about it."""

from __future__ import annotations

from typing import Final

#: Video codecs accepted, by FFmpeg's canonical codec name.
ACCEPTED_VIDEO_CODECS: Final[tuple[str, ...]] = ("prores", "dnxhd", "h264", "hevc", "vp9", "av1")

#: Containers accepted for video, by the short names ``MediaInfo.container`` uses.
ACCEPTED_VIDEO_CONTAINERS: Final[tuple[str, ...]] = ("mov", "mp4", "matroska", "webm")

#: Still-image formats accepted: container short name -> FFmpeg codec name.
ACCEPTED_STILLS: Final[dict[str, str]] = {"png": "png", "jpeg": "mjpeg", "tiff": "tiff"}

#: FFmpeg demuxers PyAV may use. Anything else is refused before its header is read,
#: which also keeps playlist-style demuxers (HLS, concat, ...) from opening other files.
DEMUXER_WHITELIST: Final[tuple[str, ...]] = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "png_pipe",
    "jpeg_pipe",
    "tiff_pipe",
)

#: Still demuxer -> container short name.
STILL_DEMUXERS: Final[dict[str, str]] = {"png_pipe": "png", "jpeg_pipe": "jpeg", "tiff_pipe": "tiff"}

_HUMAN_NAMES: Final[dict[str, str]] = {
    "prores": "ProRes",
    "dnxhd": "DNxHD/DNxHR",
    "h264": "H.264",
    "hevc": "H.265/HEVC",
    "vp9": "VP9",
    "av1": "AV1",
    "mov": "MOV",
    "mp4": "MP4",
    "matroska": "MKV",
    "webm": "WebM",
    "png": "PNG",
    "jpeg": "JPEG",
    "tiff": "TIFF",
}


def human_name(name: str) -> str:
    """How a codec or container is called in messages: "ProRes", "MP4"."""
    return _HUMAN_NAMES.get(name, name)


def _human(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(human_name(n) for n in names)


def accepted_summary() -> str:
    """One line naming everything accepted, for error messages."""
    return (
        f"accepted: {_human(ACCEPTED_VIDEO_CODECS)} video in {_human(ACCEPTED_VIDEO_CONTAINERS)} files, "
        f"or {_human(list(ACCEPTED_STILLS))} stills"
    )
