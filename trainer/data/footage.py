"""Decoding tenant footage: videos through PyAV, stills (PNG/JPEG) as one-frame clips.

Media type is sniffed from content, not names: storage keys carry no extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from trainer.errors import TrainerInputError

_STILL_FORMATS = {"PNG", "JPEG"}


@dataclass(frozen=True)
class ClipInfo:
    width: int
    height: int
    frames: int
    fps: float
    is_still: bool


def frame_stride(info: ClipInfo, target_fps: float | None) -> int:
    """Every how many source frames one is kept: high frame-rate footage is thinned towards
    ``target_fps``, the rate the base was trained at (None keeps every frame)."""
    if info.is_still or target_fps is None:
        return 1
    return max(1, round(info.fps / target_fps))


def _open_still(path: Path) -> Image.Image | None:
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        return None
    if image.format not in _STILL_FORMATS:
        image.close()
        return None
    return image


def probe(path: Path, name: str) -> ClipInfo:
    """Size, frame count and rate; ``name`` is how errors refer to the asset."""
    still = _open_still(path)
    if still is not None:
        with still:
            width, height = ImageOps.exif_transpose(still).size
        return ClipInfo(width=width, height=height, frames=1, fps=0.0, is_still=True)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise TrainerInputError(f"{name}: no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or Fraction(16)
            # Count packets rather than trusting header frame counts, which some
            # containers leave empty or get wrong; demuxing decodes nothing.
            frames = sum(1 for packet in container.demux(stream) if packet.size)
    except av.error.FFmpegError as exc:
        raise TrainerInputError(f"{name}: not a readable video or image ({exc})") from exc
    if frames == 0 or width == 0 or height == 0:
        raise TrainerInputError(f"{name}: the video has no frames")
    return ClipInfo(width=width, height=height, frames=frames, fps=float(rate), is_still=False)


def _fit(image: Image.Image, height: int, width: int) -> np.ndarray:
    # Scale to cover the bucket, then centre-crop: no letterboxing, no distortion.
    fitted = ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.BICUBIC)
    return np.asarray(fitted, dtype=np.uint8)


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    video = torch.from_numpy(np.stack(frames)).permute(3, 0, 1, 2).float()
    return video / 127.5 - 1.0


def read_frames(path: Path, name: str, indices: list[int], *, height: int, width: int) -> torch.Tensor:
    """The frames at ``indices`` (sorted), fitted to ``height`` x ``width``: ``[3, f, h, w]`` in [-1, 1].

    Frames are decoded in one pass and fitted as they arrive, so a long clip never sits in
    memory at full resolution.
    """
    still = _open_still(path)
    if still is not None:
        with still:
            frame = _fit(ImageOps.exif_transpose(still), height, width)
        return _to_tensor([frame] * len(indices))
    wanted = set(indices)
    last = max(indices)
    kept: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for index, decoded in enumerate(container.decode(stream)):
                if index in wanted:
                    kept.append(_fit(decoded.to_image(), height, width))  # type: ignore[no-untyped-call]
                if index >= last:
                    break
    except av.error.FFmpegError as exc:
        raise TrainerInputError(f"{name}: decoding failed ({exc})") from exc
    if len(kept) != len(indices):
        raise TrainerInputError(f"{name}: the video ended after fewer frames than its container reports")
    return _to_tensor(kept)
