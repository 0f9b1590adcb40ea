"""Resolution/length buckets and frame windows.

A clip is trained at the bucket nearest its aspect ratio and the longest length it can fill,
so footage is cropped as little as possible and never padded. Lengths are 1 + k * 4 because
Wan's VAE keeps the first frame and compresses the rest four to one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Bucket:
    frames: int
    height: int
    width: int

    def __str__(self) -> str:
        return f"{self.frames}x{self.height}x{self.width}"

    @classmethod
    def parse(cls, text: str) -> Bucket:
        frames, height, width = (int(part) for part in text.split("x"))
        return cls(frames, height, width)


def valid_length(frames: int, temporal_factor: int) -> bool:
    return frames >= 1 and (frames - 1) % temporal_factor == 0


def make_buckets(
    height: int, width: int, frames: int, *, temporal_factor: int, spatial_multiple: int
) -> list[Bucket]:
    """The target shape, its transpose and the square of the same area, at three lengths.

    Lengths are the target, about half of it, and a single frame (stills and very short clips).
    """
    side = max(spatial_multiple, round(math.sqrt(height * width) / spatial_multiple) * spatial_multiple)
    sizes = sorted({(height, width), (width, height), (side, side)})
    half = (frames - 1) // 2 // temporal_factor * temporal_factor + 1
    lengths = sorted({frames, half, 1})
    return [Bucket(f, h, w) for f in lengths for h, w in sizes]


def choose_bucket(buckets: list[Bucket], *, height: int, width: int, frames: int) -> Bucket:
    """The nearest aspect ratio, then the longest length that ``frames`` source frames fill."""
    aspect = math.log(width / height)
    size = min(
        {(b.height, b.width) for b in buckets},
        key=lambda hw: (abs(math.log(hw[1] / hw[0]) - aspect), -hw[0] * hw[1]),
    )
    fitting = [b for b in buckets if (b.height, b.width) == size and b.frames <= frames]
    return max(fitting, key=lambda b: b.frames)


def frame_windows(available: int, length: int, *, stride: int, max_windows: int) -> list[list[int]]:
    """Source frame indices for up to ``max_windows`` evenly spread, non-overlapping windows.

    ``stride`` thins high frame-rate footage towards the rate the base was trained at. One
    window is centred, so the middle of a clip (usually the shot) is what gets learnt.
    """
    strided = (available - 1) // stride + 1
    if strided < length:
        raise ValueError(f"{available} frames cannot fill a {length}-frame window at stride {stride}")
    count = max(1, min(max_windows, strided // length))
    if count == 1:
        starts = [(strided - length) // 2]
    else:
        starts = [round(i * (strided - length) / (count - 1)) for i in range(count)]
    return [[(start + j) * stride for j in range(length)] for start in starts]
