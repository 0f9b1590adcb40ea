"""How far one set of clips' look is from another's: colour, tone, grain, sharpness, flicker.

Torch-free (numpy only), so the worker and the API compute and read the same numbers. A
look is summarised once per set of clips (``look_stats``: a few dozen numbers, storable as
JSON) and two summaries are compared (``look_distance``), so footage is summarised once and
compared with the base's renders and each version's.

Everything is measured on CIE L*a*b* (D65), whose Euclidean distance is roughly how
different two colours look (ΔE*ab), so each component is in units a colourist would
recognise rather than in raw RGB. Sharpness and grain depend on resolution: sample both sets
at the same size before comparing them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

Frames = NDArray[np.uint8]  # [frames, height, width, 3] RGB, or one [height, width, 3] image
FloatArray = NDArray[np.floating[Any]]

# Pixels and frames summarised per set: enough for stable statistics, few enough that a set
# of 81-frame 480p clips is summarised in moments.
_MAX_COLOUR_PIXELS = 1 << 20
_MAX_TEXTURE_FRAMES = 16
# L* quantiles that stand for the luminance distribution (the 1st to the 99th percentile).
_QUANTILES = np.linspace(0.01, 0.99, 33)
# Edge contrast below this (L* per pixel) is a flat picture; the floor keeps the ratio of two
# nearly flat renders from exploding.
_SHARPNESS_FLOOR = 1.0
# Each component divided by the difference at which it is plainly visible, so the combined
# distance reads as "noticeable differences": 10 ΔE of colour cast, 10 L* of tone, grain of
# 2 L* (film grain is about 1 to 4), twice or half the edge contrast, 2 L* of frame-to-frame
# pumping.
SCALES = {
    "colour": 10.0,
    "tone": 10.0,
    "grain": 2.0,
    "sharpness": math.log(2.0),
    "flicker": 2.0,
}

# sRGB (D65) to CIE XYZ, and the D65 white point.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])
_CODES = np.arange(256) / 255.0
# sRGB's transfer function undone once per code value rather than once per pixel.
_LINEAR = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4).astype(np.float32)
_LINEAR_TO_XYZ = (_RGB_TO_XYZ / _WHITE[:, None]).T.astype(np.float32)


def to_lab(rgb: Frames) -> FloatArray:
    """CIE L*a*b* (D65) of sRGB pixels ``[..., 3]``: L* in 0..100, a* and b* about -128..127."""
    # float32 throughout: ample for colour, and half the memory of a long clip's pixels.
    xyz = _LINEAR[rgb] @ _LINEAR_TO_XYZ
    f = _lab_f(xyz)
    return np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _lab_f(t: FloatArray) -> FloatArray:
    delta = 6.0 / 29.0
    result: FloatArray = np.where(t > delta**3, np.cbrt(t), t / (3 * delta**2) + 4.0 / 29.0)
    return result


def lightness(rgb: Frames) -> FloatArray:
    """CIE L* alone (0..100), cheaper than ``to_lab`` where only texture or exposure matters."""
    return 116.0 * _lab_f(_LINEAR[rgb] @ _LINEAR_TO_XYZ[:, 1]) - 16.0


@dataclass(frozen=True)
class LookStats:
    """One set of clips' look, summarised.

    ``ab_mean``/``ab_covariance`` fit a Gaussian to the chroma (a*, b*) of every pixel;
    ``lightness_quantiles`` is the L* distribution; ``contrast`` its standard deviation;
    ``grain`` the noise level, ``sharpness`` the edge contrast and ``flicker`` the frame to
    frame change of mean lightness, all in L* units; ``flicker`` is None when no clip has
    two frames.
    """

    ab_mean: tuple[float, float]
    ab_covariance: tuple[tuple[float, float], tuple[float, float]]
    lightness_quantiles: tuple[float, ...]
    contrast: float
    grain: float
    sharpness: float
    flicker: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LookStats:
        values = {f.name: data[f.name] for f in fields(cls)}
        covariance = values["ab_covariance"]
        return cls(
            ab_mean=(float(values["ab_mean"][0]), float(values["ab_mean"][1])),
            ab_covariance=(
                (float(covariance[0][0]), float(covariance[0][1])),
                (float(covariance[1][0]), float(covariance[1][1])),
            ),
            lightness_quantiles=tuple(float(q) for q in values["lightness_quantiles"]),
            contrast=float(values["contrast"]),
            grain=float(values["grain"]),
            sharpness=float(values["sharpness"]),
            flicker=None if values["flicker"] is None else float(values["flicker"]),
        )


@dataclass(frozen=True)
class LookDistance:
    """Each component's distance in its own units, and ``total``: their sum over ``SCALES``."""

    colour: float  # ΔE*ab
    tone: float  # L*
    grain: float  # L*
    sharpness: float  # |ln| of the ratio
    flicker: float  # L* per frame
    total: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _as_clips(clips: Sequence[Frames]) -> list[Frames]:
    shaped = [clip[None] if clip.ndim == 3 else clip for clip in clips]
    if not shaped:
        raise ValueError("a look needs at least one clip")
    for clip in shaped:
        if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8 or clip.shape[0] == 0:
            raise ValueError(f"clips must be uint8 [frames, height, width, 3]; got {clip.dtype} {clip.shape}")
    return shaped


def _colour_sample(clips: list[Frames]) -> FloatArray:
    """Lab of an even sample of every pixel, at most ``_MAX_COLOUR_PIXELS``, every clip weighted by size."""
    pixels = sum(clip[..., 0].size for clip in clips)
    stride = max(1, math.ceil(pixels / _MAX_COLOUR_PIXELS))
    return np.concatenate([to_lab(clip.reshape(-1, 3)[::stride]) for clip in clips])


def _texture_frames(clips: list[Frames]) -> list[FloatArray]:
    """L* of evenly spread frames, at most ``_MAX_TEXTURE_FRAMES`` over the set."""
    total = sum(len(clip) for clip in clips)
    stride = max(1, math.ceil(total / _MAX_TEXTURE_FRAMES))
    return [lightness(frame) for clip in clips for frame in clip[::stride]]


def grain_level(frame: FloatArray) -> float:
    """Standard deviation of the noise in one L* frame (Immerkær's estimator, made robust).

    The 3x3 mask below is the difference of two Laplacians: it cancels every ramp and most of
    a smooth image, so what remains is noise, and white noise of deviation s comes out with
    deviation 6 s (the mask's norm). The median, not the mean, of its magnitude keeps edges
    (a minority of pixels) from passing for grain: median |N(0, s)| = 0.6745 s.
    """
    if min(frame.shape) < 3:
        return 0.0
    x = frame
    response = (
        x[:-2, :-2] + x[:-2, 2:] + x[2:, :-2] + x[2:, 2:]
        - 2 * (x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:])
        + 4 * x[1:-1, 1:-1]
    )  # fmt: skip
    return float(np.median(np.abs(response)) / (0.6745 * 6.0))


def edge_contrast(frame: FloatArray) -> float:
    """Mean gradient magnitude of the strongest 2% of one L* frame's pixels (L* per pixel).

    A picture's strongest edges tell crisp from soft: blur spreads each over more pixels and
    lowers its peak. They are few, so neither how much of the frame is flat sky nor grain
    (whose gradients are far weaker than an edge's) moves the number much.
    """
    if min(frame.shape) < 2:
        return 0.0
    dy = np.diff(frame, axis=0)[:, :-1]
    dx = np.diff(frame, axis=1)[:-1, :]
    magnitude = np.hypot(dx, dy).ravel()
    cut = int(0.98 * magnitude.size)
    return float(np.partition(magnitude, cut)[cut:].mean())


def flicker_level(clip: Frames) -> float | None:
    """Mean change of a clip's mean L* from one frame to the next; None for a single frame.

    Mean lightness over the whole frame hardly moves with motion inside it, so what changes it
    is exposure pumping: the temporal flicker a viewer notices.
    """
    if len(clip) < 2:
        return None
    # Every fourth pixel each way: a frame's mean needs no more, and a long clip stays cheap.
    means = np.array([lightness(frame[::4, ::4]).mean() for frame in clip])
    return float(np.abs(np.diff(means)).mean())


def look_stats(clips: Sequence[Frames]) -> LookStats:
    """Summarise the look of a set of clips (each ``[frames, h, w, 3]`` uint8 RGB, or one image)."""
    shaped = _as_clips(clips)
    lab = _colour_sample(shaped)
    ab = lab[:, 1:]
    covariance = np.cov(ab, rowvar=False)
    lightnesses = lab[:, 0]
    textures = _texture_frames(shaped)
    flickers = [f for clip in shaped if (f := flicker_level(clip)) is not None]
    return LookStats(
        ab_mean=(float(ab[:, 0].mean()), float(ab[:, 1].mean())),
        ab_covariance=(
            (float(covariance[0, 0]), float(covariance[0, 1])),
            (float(covariance[1, 0]), float(covariance[1, 1])),
        ),
        lightness_quantiles=tuple(float(q) for q in np.quantile(lightnesses, _QUANTILES)),
        contrast=float(lightnesses.std()),
        grain=float(np.mean([grain_level(frame) for frame in textures])),
        sharpness=float(np.mean([edge_contrast(frame) for frame in textures])),
        flicker=float(np.mean(flickers)) if flickers else None,
    )


def _sqrtm(matrix: FloatArray) -> FloatArray:
    """Square root of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(matrix)
    result: FloatArray = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
    return result


def colour_distance(a: LookStats, b: LookStats) -> float:
    """2-Wasserstein distance between Gaussian fits of the two chroma distributions (ΔE*ab).

    It is how far, on average, each pixel's a*b* must move to turn one palette into the
    other: the mean term is a colour cast, the covariance term a change of saturation or of
    the spread of hues (teal-and-orange against a single tint), which a distance between
    means alone would miss.
    """
    mean_a, mean_b = np.array(a.ab_mean), np.array(b.ab_mean)
    cov_a, cov_b = np.array(a.ab_covariance), np.array(b.ab_covariance)
    root_b = _sqrtm(cov_b)
    cross = _sqrtm(root_b @ cov_a @ root_b)
    squared = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross))
    return math.sqrt(max(squared, 0.0))


def tone_distance(a: LookStats, b: LookStats) -> float:
    """1-Wasserstein distance between the two L* distributions (L*), from their quantiles.

    The mean gap between matching quantiles: a brighter exposure, crushed blacks, lifted
    shadows or stronger contrast each move some quantiles, and the distance counts by how much.
    """
    return float(np.mean(np.abs(np.array(a.lightness_quantiles) - np.array(b.lightness_quantiles))))


def grain_distance(a: LookStats, b: LookStats) -> float:
    """The deviation of the noise that would turn the cleaner set's grain into the other's (L*).

    Independent noises add in power, not in deviation, so the gap is sqrt(|a^2 - b^2|): a
    clean render against footage with grain of 2 L* is 2 L* apart, as is 2 against 2.8.
    """
    return math.sqrt(abs(a.grain**2 - b.grain**2))


def sharpness_distance(a: LookStats, b: LookStats) -> float:
    """|ln| of the ratio of edge contrasts: softening is perceived relative to how crisp a picture was."""
    return abs(math.log((a.sharpness + _SHARPNESS_FLOOR) / (b.sharpness + _SHARPNESS_FLOOR)))


def look_distance(a: LookStats, b: LookStats) -> LookDistance:
    """How different two looks are, per component and combined (``total``, in visible differences).

    Flicker counts only when both sets have moving clips.
    """
    parts = {
        "colour": colour_distance(a, b),
        "tone": tone_distance(a, b),
        "grain": grain_distance(a, b),
        "sharpness": sharpness_distance(a, b),
        "flicker": abs(a.flicker - b.flicker) if a.flicker is not None and b.flicker is not None else 0.0,
    }
    total = sum(value / SCALES[name] for name, value in parts.items())
    return LookDistance(**parts, total=total)


def compare(a: Sequence[Frames], b: Sequence[Frames]) -> LookDistance:
    """``look_distance`` of two sets of clips."""
    return look_distance(look_stats(a), look_stats(b))


# A version whose renders came less than this fraction closer to the footage's look than the
# base's (same prompts, same seeds) has not learned the look: the run moved nothing a viewer
# would see. The tiny base's ``quick`` preset comes about 60 % closer; an adapter that learned
# nothing comes within noise of 0 %, since both sides render from the same noise.
MOVED_THRESHOLD = 0.1


def headline(stats: LookStats) -> dict[str, float | None]:
    """A look as a colourist reads it, one number per property (the model page shows these).

    ``a``/``b``: the mean cast (a* green to red, b* blue to yellow); ``colourfulness``: the
    root-mean-square chroma, sqrt(E[a*^2 + b*^2]), which grows with saturation and with the
    cast; ``lightness``: the median L*; then ``contrast``, ``grain``, ``sharpness`` and
    ``flicker`` as ``LookStats`` has them.
    """
    (a, b), covariance = stats.ab_mean, stats.ab_covariance
    return {
        "a": a,
        "b": b,
        "colourfulness": math.sqrt(max(a * a + b * b + covariance[0][0] + covariance[1][1], 0.0)),
        "lightness": float(np.median(stats.lightness_quantiles)),
        "contrast": stats.contrast,
        "grain": stats.grain,
        "sharpness": stats.sharpness,
        "flicker": stats.flicker,
    }


@dataclass(frozen=True)
class LookComparison:
    """A fine-tune's effect on the look: the base's renders, the version's (same prompts and
    seeds) and the footage it learned from, and how much closer to the footage the version is."""

    base: LookStats
    version: LookStats
    footage: LookStats
    threshold: float = MOVED_THRESHOLD

    @property
    def base_distance(self) -> LookDistance:
        return look_distance(self.base, self.footage)

    @property
    def version_distance(self) -> LookDistance:
        return look_distance(self.version, self.footage)

    @property
    def reduction(self) -> float:
        """The fraction of the base's look distance to the footage the version closed: 1 is all
        of it, 0 none, below 0 the version drifted further away. 0 when the base already had the
        footage's look exactly, as there was nothing to close."""
        before = self.base_distance.total
        return 0.0 if before == 0.0 else 1.0 - self.version_distance.total / before

    @property
    def moved(self) -> bool:
        """Whether the version moved the look towards the footage by at least ``threshold``."""
        return self.reduction >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        """As stored on a model version: the verdict, both distances, each headline number of
        the three sets and the full statistics (so a later scale can be re-applied)."""
        sets = {"base": self.base, "version": self.version, "footage": self.footage}
        headlines = {name: headline(stats) for name, stats in sets.items()}
        return {
            "moved": self.moved,
            "threshold": self.threshold,
            "reduction": self.reduction,
            "distance": {"base": self.base_distance.to_dict(), "version": self.version_distance.to_dict()},
            "metrics": {
                metric: {name: values[metric] for name, values in headlines.items()}
                for metric in headlines["footage"]
            },
            "stats": {name: stats.to_dict() for name, stats in sets.items()},
        }
