"""Errors raised when an upload is not footage we can use.

Every message is written for the person who uploaded the file: it says what is wrong
and, where it helps, what would be accepted instead.
"""

from __future__ import annotations


class MediaError(ValueError):
    """Base class: the file cannot be accepted as footage."""


class NotMediaError(MediaError):
    """The file is not a video or image at all (or not one that can be read)."""


class UnsupportedMediaError(MediaError):
    """The file is media, but in a codec or container that is not accepted."""


class CorruptMediaError(MediaError):
    """The file is a recognised format but is truncated or damaged."""


class DeclaredTypeMismatchError(MediaError):
    """The file is accepted footage, but not of the media type its uploader declared."""
