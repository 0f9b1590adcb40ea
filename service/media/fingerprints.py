"""``fingerprint``: perceptual hashes of frames sampled evenly through a clip (or a still)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.fingerprints import HASH_SIDE, SAMPLES, FrameHash, hash_frame, sample_positions
from service.media.container import open_media, prepare_decoder
from service.media.posters import display_image, first_frame, frame_at


@dataclass(frozen=True, slots=True)
class SampledFrame:
    seconds: float  # from the start of the clip; 0 for a still
    hash: FrameHash


def fingerprint(path: Path, count: int = SAMPLES) -> list[SampledFrame]:
    """Hashes of up to ``count`` frames of ``path``, one from the middle of each of ``count``
    equal stretches of its duration (a still: its one frame), as they are meant to be seen.

    Each sample seeks to its keyframe, so a long clip costs ``count`` short decodes, not a
    full one. A position that cannot be reached is skipped; a clip whose duration is unknown
    gives its first frame. Raises the ``MediaError``s of ``poster`` for files it cannot read.
    """
    opened = open_media(path)
    sampled: dict[float, FrameHash] = {}
    with opened.container as container:
        stream = opened.stream
        prepare_decoder(stream)
        frames = [] if opened.is_still else [frame_at(container, stream, p) for p in sample_positions(count)]
        found = [frame for frame in frames if frame is not None]
        if not found:
            found = [first_frame(container, stream, rewind=not opened.is_still)]
        for frame in found:
            # From the stream's time base: a frame drained from the decoder at the end of the
            # file carries its pts but no time base of its own.
            seconds = 0.0
            if frame.pts is not None and stream.time_base is not None:
                seconds = round(max(0.0, float((frame.pts - (stream.start_time or 0)) * stream.time_base)), 3)
            # Short clips give the same frame to neighbouring positions: hash it once.
            if seconds not in sampled:
                image = display_image(frame, stream.sample_aspect_ratio)
                image.thumbnail((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR)
                sampled[seconds] = hash_frame(np.asarray(image.convert("RGB")))
    return [SampledFrame(seconds, frame_hash) for seconds, frame_hash in sampled.items()]
