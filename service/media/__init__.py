"""Identifying and checking uploaded footage: ``probe`` and ``poster``."""

from service.media.errors import (
    CorruptMediaError,
    DeclaredTypeMismatchError,
    MediaError,
    NotMediaError,
    UnsupportedMediaError,
)
from service.media.formats import (
    ACCEPTED_STILLS,
    ACCEPTED_VIDEO_CODECS,
    ACCEPTED_VIDEO_CONTAINERS,
    probed_media_type,
)
from service.media.info import MediaInfo, MediaKind
from service.media.posters import poster
from service.media.probing import probe

__all__ = [
    "ACCEPTED_STILLS",
    "ACCEPTED_VIDEO_CODECS",
    "ACCEPTED_VIDEO_CONTAINERS",
    "CorruptMediaError",
    "DeclaredTypeMismatchError",
    "MediaError",
    "MediaInfo",
    "MediaKind",
    "NotMediaError",
    "UnsupportedMediaError",
    "poster",
    "probe",
    "probed_media_type",
]
