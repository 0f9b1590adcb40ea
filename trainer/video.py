"""Rendered frames as files: MP4 (H.264, through PyAV), a JPEG poster and an animated WebP preview."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import torch
from PIL import Image


def to_pixels(frames: torch.Tensor) -> np.ndarray:
    """Frames in [0, 1] (any leading shape, channels last) to uint8 RGB on the host."""
    pixels: np.ndarray = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return pixels


def encode_mp4(frames: torch.Tensor, *, fps: int = 16, crf: int = 18) -> bytes:
    """``[f, h, w, 3]`` frames in [0, 1] to MP4 bytes.

    yuv420p for players' sake, which needs even sides: an odd row or column is dropped.
    """
    pixels = to_pixels(frames)
    height, width = pixels.shape[1] // 2 * 2, pixels.shape[2] // 2 * 2
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in pixels:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _images(frames: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(np.ascontiguousarray(frame)) for frame in to_pixels(frames)]


def encode_poster(frames: torch.Tensor, *, quality: int = 90) -> bytes:
    """The middle frame as a JPEG: the first is often still settling from noise."""
    buffer = io.BytesIO()
    _images(frames[len(frames) // 2 : len(frames) // 2 + 1])[0].save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_preview(frames: torch.Tensor, *, max_side: int, fps: int = 16, quality: int = 70) -> bytes:
    """A small looping animated WebP for galleries, no larger than ``max_side`` on its long side."""
    images = _images(frames)
    scale = min(1.0, max_side / max(images[0].size))
    size = (max(1, round(images[0].width * scale)), max(1, round(images[0].height * scale)))
    images = [image.resize(size, Image.Resampling.LANCZOS) for image in images]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        quality=quality,
    )
    return buffer.getvalue()
