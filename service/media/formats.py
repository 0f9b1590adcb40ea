"""What is accepted, and the names used to talk about it."""

from __future__ import annotations

from typing import Final

from service.media.errors import DeclaredTypeMismatchError

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

#: The media type an accepted container is stored and served as: what the file is, whatever
#: was declared.
MEDIA_TYPES: Final[dict[str, str]] = {
    "mov": "video/quicktime",
    "mp4": "video/mp4",
    "matroska": "video/x-matroska",
    "webm": "video/webm",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
}

#: Declared types that agree with a container. Within one family, tools disagree (a phone's
#: .mov is often declared video/mp4, a .webm video/x-matroska), so any of its names will do.
_ISO_BMFF: Final = frozenset({"video/mp4", "video/quicktime", "video/x-m4v"})
_EBML: Final = frozenset({"video/x-matroska", "video/matroska", "video/webm"})
DECLARABLE: Final[dict[str, frozenset[str]]] = {
    "mov": _ISO_BMFF,
    "mp4": _ISO_BMFF,
    "matroska": _EBML,
    "webm": _EBML,
    "png": frozenset({"image/png"}),
    "jpeg": frozenset({"image/jpeg", "image/jpg", "image/pjpeg"}),
    "tiff": frozenset({"image/tiff"}),
}


def probed_media_type(container: str, declared: str) -> str:
    """The type to store and serve for a file probed as ``container``: the probed one. A
    declared type (compared case-insensitively) that names another format is refused."""
    probed = MEDIA_TYPES[container]
    if declared.lower() not in DECLARABLE[container]:
        raise DeclaredTypeMismatchError(
            f"the file is {human_name(container)} ({probed}), not {declared} as declared; "
            f"upload it again declared as {probed}"
        )
    return probed


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
