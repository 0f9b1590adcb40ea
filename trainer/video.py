"""MP4 (H.264) encoding of rendered frames through PyAV."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import torch


def encode_mp4(frames: torch.Tensor, *, fps: int = 16, crf: int = 18) -> bytes:
    """``[f, h, w, 3]`` frames in [0, 1] to MP4 bytes.

    yuv420p for players' sake, which needs even sides: an odd row or column is dropped.
    """
    pixels = (frames.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
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
