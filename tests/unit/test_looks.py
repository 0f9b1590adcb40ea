"""The look metrics: each component moves with what it measures and stays put otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.looks import (
    MOVED_THRESHOLD,
    LookComparison,
    LookStats,
    compare,
    headline,
    look_distance,
    look_stats,
    to_lab,
)
from tests.media_samples import pattern


def _clip(frames: int = 9, seed: int = 0) -> np.ndarray:
    """A gradient with moving bars: flat areas, hard edges and motion."""
    return np.stack([np.asarray(pattern(i, 64, 48, seed=seed)) for i in range(frames)])


def _noisy(clip: np.ndarray, deviation: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, deviation, clip.shape)
    return np.clip(clip + noise, 0, 255).astype(np.uint8)


def _blurred(clip: np.ndarray, passes: int = 2) -> np.ndarray:
    """A 3x3 box blur, ``passes`` times (edges padded by repetition)."""
    frames = clip.astype(np.float64)
    for _ in range(passes):
        padded = np.pad(frames, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        frames = sum(padded[:, dy : dy + 48, dx : dx + 64] for dy in range(3) for dx in range(3)) / 9
    return frames.round().astype(np.uint8)


def test_known_colours_convert_to_their_lab_values() -> None:
    rgb = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [128, 128, 128]], dtype=np.uint8)

    np.testing.assert_allclose(
        to_lab(rgb),
        [[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20], [53.59, 0.0, 0.0]],
        atol=0.01,
    )


def test_identical_sets_are_zero_apart() -> None:
    clips = [_clip(seed=1), _clip(seed=2)]

    distance = compare(clips, [clip.copy() for clip in clips])

    assert distance.tone == distance.grain == distance.sharpness == distance.flicker == 0.0
    assert distance.colour < 1e-3 and distance.total < 1e-3


def test_a_tint_is_a_colour_distance_and_hardly_a_tone_one() -> None:
    clip = _clip()
    tinted = np.clip(clip * np.array([1.0, 0.85, 0.7]), 0, 255).astype(np.uint8)  # warmer

    base = look_stats([clip])
    distance = look_distance(look_stats([tinted]), base)

    assert distance.colour > 5.0  # ΔE*ab: a cast anyone would see
    assert distance.colour > 2 * distance.tone
    assert distance.colour > look_distance(look_stats([_noisy(clip, 2.0)]), base).colour
    assert look_stats([tinted]).ab_mean[1] > base.ab_mean[1]  # towards yellow (b* up)


def test_brighter_footage_is_a_tone_distance_of_about_its_lightness_shift() -> None:
    clip = _clip()
    brighter = np.clip(clip.astype(np.int16) + 30, 0, 255).astype(np.uint8)

    distance = compare([brighter], [clip])

    assert 5.0 < distance.tone < 20.0  # L*: 30 code values are roughly 10 L* in the mid-tones
    assert distance.tone > distance.colour
    assert np.mean(look_stats([brighter]).lightness_quantiles) > np.mean(
        look_stats([clip]).lightness_quantiles
    )


def test_added_noise_raises_the_grain_by_about_its_deviation() -> None:
    clip = _clip()

    clean, grainy = look_stats([clip]), look_stats([_noisy(clip, 8.0)])

    assert clean.grain < 0.5
    # 8 code values of noise per channel are about 6 of luminance, 1 to 3 L* by the tone
    # underneath (less where the picture clips at black or white).
    assert 1.0 < grainy.grain < 4.0
    distance = look_distance(grainy, clean)
    assert distance.grain == pytest.approx(np.sqrt(grainy.grain**2 - clean.grain**2))
    assert distance.grain > 10 * distance.tone / 10  # grain, not a shift of tone, is what changed


def test_grain_ignores_edges_and_gradients() -> None:
    # A clean picture full of hard edges is no grainier than a flat one.
    assert look_stats([_clip()]).grain < 0.5


def test_blur_lowers_the_sharpness() -> None:
    clip = _clip()

    sharp, soft = look_stats([clip]), look_stats([_blurred(clip)])

    assert soft.sharpness < 0.7 * sharp.sharpness
    assert look_distance(soft, sharp).sharpness > 0.3


def test_exposure_pumping_is_flicker_and_steady_motion_is_not() -> None:
    clip = _clip(frames=12)
    pumping = clip.astype(np.int16)
    pumping[1::2] += 20  # every other frame brighter
    pumping = np.clip(pumping, 0, 255).astype(np.uint8)

    steady, flickering = look_stats([clip]), look_stats([pumping])

    assert steady.flicker is not None and flickering.flicker is not None
    assert steady.flicker < 1.0 < 4.0 < flickering.flicker
    assert look_distance(flickering, steady).flicker > 3.0


def test_stills_have_no_flicker_and_it_does_not_count() -> None:
    still = _clip(frames=1)[0]

    stats = look_stats([still])

    assert stats.flicker is None
    assert look_distance(stats, look_stats([_clip()])).flicker == 0.0


def test_the_total_weighs_each_component_by_its_visible_step() -> None:
    clip = _clip()
    tinted = np.clip(clip * np.array([1.0, 0.85, 0.7]), 0, 255).astype(np.uint8)

    distance = compare([_noisy(tinted, 6.0)], [clip])

    assert distance.total == pytest.approx(
        distance.colour / 10 + distance.tone / 10 + distance.grain / 2
        + distance.sharpness / np.log(2) + distance.flicker / 2
    )  # fmt: skip
    assert distance.total > compare([tinted], [clip]).total


def test_the_distance_is_symmetric() -> None:
    a, b = look_stats([_clip(seed=1)]), look_stats([_noisy(_clip(seed=4), 5.0)])

    assert look_distance(a, b).total == pytest.approx(look_distance(b, a).total, rel=1e-6)


def test_stats_survive_json() -> None:
    stats = look_stats([_clip(), _noisy(_clip(seed=3), 4.0)])

    restored = LookStats.from_dict(json.loads(json.dumps(stats.to_dict())))

    assert restored == stats


@pytest.mark.parametrize(
    "clips",
    [
        [],
        [np.zeros((4, 8, 8, 3), dtype=np.float32)],
        [np.zeros((4, 8, 8), dtype=np.uint8)],
        [np.zeros((0, 8, 8, 3), dtype=np.uint8)],
    ],
    ids=["none", "float", "grey", "no-frames"],
)
def test_anything_but_uint8_rgb_clips_is_refused(clips) -> None:
    with pytest.raises(ValueError, match="clip"):
        look_stats(clips)


def _tinted(clip: np.ndarray, strength: float) -> np.ndarray:
    """``clip`` warmed by ``strength`` (0: unchanged, 1: blue and green well down)."""
    return np.clip(clip * (1 - strength * np.array([0.0, 0.15, 0.3])), 0, 255).astype(np.uint8)


def test_a_version_that_takes_on_the_footages_look_moved_it() -> None:
    clip = _clip()
    base, footage = look_stats([clip]), look_stats([_tinted(clip, 1.0)])

    comparison = LookComparison(base=base, version=look_stats([_tinted(clip, 0.8)]), footage=footage)

    assert comparison.version_distance.total < comparison.base_distance.total
    assert comparison.reduction == pytest.approx(
        1 - comparison.version_distance.total / comparison.base_distance.total
    )
    assert comparison.reduction > 0.5 and comparison.moved


def test_a_version_that_renders_as_the_base_did_or_drifts_away_did_not_move_it() -> None:
    clip = _clip()
    base, footage = look_stats([clip]), look_stats([_tinted(clip, 1.0)])

    unchanged = LookComparison(base=base, version=look_stats([clip.copy()]), footage=footage)
    away = LookComparison(base=base, version=look_stats([_noisy(clip, 8.0)]), footage=footage)

    assert unchanged.reduction == pytest.approx(0.0, abs=1e-9) and not unchanged.moved
    assert away.reduction < 0 and not away.moved


def test_moved_means_closer_by_at_least_the_threshold() -> None:
    clip = _clip()
    base, footage = look_stats([clip]), look_stats([_tinted(clip, 1.0)])
    # A version a little closer to the footage: how much is the threshold's call.
    version = look_stats([_tinted(clip, 0.3)])
    reduction = LookComparison(base=base, version=version, footage=footage).reduction
    assert 0 < reduction < 1

    below = LookComparison(base=base, version=version, footage=footage, threshold=reduction + 0.01)
    at = LookComparison(base=base, version=version, footage=footage, threshold=reduction)

    assert not below.moved and at.moved


def test_a_base_that_already_has_the_footages_look_has_nothing_to_close() -> None:
    stats = look_stats([_clip()])

    comparison = LookComparison(base=stats, version=stats, footage=stats)

    assert comparison.base_distance.total == 0.0 and comparison.reduction == 0.0
    assert not comparison.moved


def test_the_stored_comparison_holds_each_metric_of_the_three_sets_and_survives_json() -> None:
    clip = _clip()
    comparison = LookComparison(
        base=look_stats([clip]),
        version=look_stats([_tinted(clip, 0.5)]),
        footage=look_stats([_noisy(_tinted(clip, 1.0), 5.0)]),
    )
    sets = {"base": comparison.base, "version": comparison.version, "footage": comparison.footage}

    stored = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))

    assert stored["moved"] is comparison.moved and stored["reduction"] == comparison.reduction
    assert stored["threshold"] == MOVED_THRESHOLD
    assert stored["distance"] == {
        "base": comparison.base_distance.to_dict(),
        "version": comparison.version_distance.to_dict(),
    }
    for name, stats in sets.items():
        assert LookStats.from_dict(stored["stats"][name]) == stats
        for metric, value in headline(stats).items():
            assert stored["metrics"][metric][name] == value
    # Warmer each step of the way, and only the footage is grainy.
    b = stored["metrics"]["b"]
    assert b["base"] < b["version"] < b["footage"]
    grain = stored["metrics"]["grain"]
    assert grain["footage"] > 1.0 > max(grain["base"], grain["version"])


def test_the_headline_numbers_read_as_their_names_say() -> None:
    grey = np.full((3, 16, 16, 3), 119, dtype=np.uint8)  # L* 50, no colour
    red = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    red[..., 0] = 255

    flat, vivid = headline(look_stats([grey])), headline(look_stats([red]))

    assert flat["lightness"] == pytest.approx(50.0, abs=0.5) and flat["contrast"] == pytest.approx(
        0.0, abs=1e-3
    )
    assert flat["colourfulness"] == pytest.approx(0.0, abs=1e-3) and flat["flicker"] == 0.0
    # Pure sRGB red: a* 80.1, b* 67.2, so its chroma is their hypotenuse.
    assert vivid["a"] == pytest.approx(80.1, abs=0.1) and vivid["b"] == pytest.approx(67.2, abs=0.1)
    assert vivid["colourfulness"] == pytest.approx(np.hypot(80.09, 67.20), abs=0.1)
