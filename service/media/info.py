"""``MediaInfo``: what probing learned about one upload."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

MediaKind = Literal["video", "still"]


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Facts about a video or still that decoded cleanly where it was checked.

    ``width``/``height`` are the stored picture size; ``rotation`` (degrees
    counter-clockwise, from the display matrix) and ``sample_aspect_ratio`` say how it is
    meant to be shown. Colour fields use FFmpeg's names (``bt709``, ``smpte2084``, ``tv``)
    and are ``None`` when the file leaves them unspecified.
    """

    kind: MediaKind
    container: str
    codec: str
    profile: str | None
    width: int
    height: int
    frame_rate: float | None
    duration_seconds: float
    frame_count: int
    pix_fmt: str | None
    bit_depth: int | None
    color_primaries: str | None
    color_transfer: str | None
    color_space: str | None
    color_range: str | None
    has_audio: bool
    rotation: int = 0
    sample_aspect_ratio: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``MediaInfo.from_dict`` reads it back."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
