"""``fingerprint``: perceptual hashes of frames sampled evenly through a clip (or a still)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from av.video.frame import VideoFrame
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

        def add(frame: VideoFrame) -> None:
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

        # Each frame is hashed as it is decoded and let go: a decoded 1080p 12-bit 4:4:4:4
        # frame is about 16 MB, and holding every sample at once grew the server by 250 MiB
        # at a ProRes upload's completion (docs/benchmarks.md).
        for position in [] if opened.is_still else sample_positions(count):
            if (frame := frame_at(container, stream, position)) is not None:
                add(frame)
        if not sampled:
            add(first_frame(container, stream, rewind=not opened.is_still))
    return [SampledFrame(seconds, frame_hash) for seconds, frame_hash in sampled.items()]
