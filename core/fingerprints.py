"""Perceptual hashes of frames (PDQ) and the one rule for when two frames are near copies.

Used on both sides of the memorisation check: the API hashes sampled frames of footage when
an upload completes, and the generation worker hashes sampled frames of what it rendered and
compares them with the model's training footage (docs/memorisation.md). PDQ (Meta's
perceptual hash, 256 bits) survives re-encoding, scaling and small colour changes, which
is what a model that memorised a frame produces: the frame again, through other codecs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pdqhash

HASH_BYTES = 32  # 256 bits
# PDQ's published operating point: at most 31 differing bits of 256 is the same picture
# (re-encoded, rescaled, lightly recoloured), with false matches between unrelated photos
# rare (ThreatExchange's matching threshold); unrelated pictures are typically 110+ apart.
# So this flags a copied frame, not a similar scene.
MATCH_DISTANCE = 31
# PDQ rates each hash 0-100 by how much gradient the picture has; flat frames (black, a
# fade, a sky) hash unreliably and all alike, so below this they are neither indexed for
# comparison nor compared (PDQ's recommended cut-off).
MIN_QUALITY = 50
# Frames sampled per clip, on each side: footage at upload, outputs after rendering.
SAMPLES = 16
# Frames are reduced to at most this long side before hashing: PDQ looks at a 64 x 64
# reduction anyway, and this keeps hashing a 4K frame cheap.
HASH_SIDE = 512

# Set bits of every byte value, to count differing bits of packed hashes.
_POPCOUNT = np.array([bin(value).count("1") for value in range(256)], dtype=np.uint16)


@dataclass(frozen=True, slots=True)
class FrameHash:
    bits: bytes  # HASH_BYTES, PDQ's bits packed most significant first
    quality: int  # 0-100

    @property
    def comparable(self) -> bool:
        return self.quality >= MIN_QUALITY


@dataclass(frozen=True, slots=True)
class Closest:
    """The nearest pair between two sets of hashes: its distance in bits and where each lies."""

    distance: int
    candidate: int  # index into the candidates
    reference: int  # index into the references

    @property
    def near_copy(self) -> bool:
        return self.distance <= MATCH_DISTANCE


def hash_frame(rgb: np.ndarray) -> FrameHash:
    """The PDQ hash of one ``[h, w, 3]`` uint8 RGB frame."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return FrameHash(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality))


def sample_indices(total: int, count: int = SAMPLES) -> list[int]:
    """Up to ``count`` frame numbers spread evenly over ``total`` frames (each segment's middle),
    all of them when there are no more than ``count``."""
    if total <= count:
        return list(range(total))
    return sorted({int((i + 0.5) * total / count) for i in range(count)})


def sample_positions(count: int = SAMPLES) -> list[float]:
    """Where to sample a clip of unknown length, as fractions of its duration: each of
    ``count`` equal segments' middle, so neither the first frame (often a fade) nor the last."""
    return [(i + 0.5) / count for i in range(count)]


def closest(candidates: Sequence[bytes], references: Sequence[bytes]) -> Closest | None:
    """The nearest candidate-reference pair by Hamming distance; None if either side is empty."""
    if not candidates or not references:
        return None
    ours = np.frombuffer(b"".join(candidates), dtype=np.uint8).reshape(len(candidates), HASH_BYTES)
    theirs = np.frombuffer(b"".join(references), dtype=np.uint8).reshape(len(references), HASH_BYTES)
    distances = _POPCOUNT[ours[:, None, :] ^ theirs[None, :, :]].sum(axis=2)
    candidate, reference = np.unravel_index(int(distances.argmin()), distances.shape)
    return Closest(int(distances[candidate, reference]), int(candidate), int(reference))
