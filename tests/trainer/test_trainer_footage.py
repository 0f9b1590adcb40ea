"""Footage pipeline: probing, buckets, 4k+1 windows, fitting, captions, the latent cache."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from core.bases.quantization import Quantization
from core.storage.local import LocalStorage
from trainer import FolderSource, TrainerInputError, TrainingAsset, TrainingDataset
from trainer.data import Bucket, choose_bucket, compose_caption, frame_windows, make_buckets, prepare
from trainer.data.footage import probe, read_frames
from trainer.models import load_specification
from trainer.models.registry import TextEncoder
from trainer.quantize import quantized_layers


def test_buckets_cover_target_transpose_and_square_at_4k_plus_1_lengths() -> None:
    buckets = make_buckets(480, 832, 81, temporal_factor=4, spatial_multiple=16)

    assert {b.frames for b in buckets} == {81, 41, 1}
    assert {(b.height, b.width) for b in buckets} == {(480, 832), (832, 480), (624, 624)}
    assert all((b.frames - 1) % 4 == 0 and b.height % 16 == 0 and b.width % 16 == 0 for b in buckets)


def test_choose_bucket_takes_nearest_aspect_then_longest_length_that_fits() -> None:
    buckets = make_buckets(480, 832, 81, temporal_factor=4, spatial_multiple=16)

    assert choose_bucket(buckets, height=1080, width=1920, frames=300) == Bucket(81, 480, 832)
    assert choose_bucket(buckets, height=1920, width=1080, frames=60) == Bucket(41, 832, 480)
    assert choose_bucket(buckets, height=500, width=520, frames=1) == Bucket(1, 624, 624)


def test_frame_windows_are_strided_non_overlapping_and_centred() -> None:
    (centred,) = frame_windows(20, 5, stride=2, max_windows=1)
    assert centred == [4, 6, 8, 10, 12]  # 10 strided frames, window of 5 starts at 2

    spread = frame_windows(100, 9, stride=1, max_windows=3)
    assert [w[0] for w in spread] == [0, 46, 91]
    assert all(len(w) == 9 for w in spread)
    with pytest.raises(ValueError, match="cannot fill"):
        frame_windows(4, 5, stride=1, max_windows=1)


def test_probe_counts_frames_and_treats_stills_as_one_frame(clips_dir: Path) -> None:
    clip = probe(clips_dir / "pan.mp4", "pan")
    still = probe(clips_dir / "still.png", "still")

    assert (clip.frames, clip.width, clip.height, clip.is_still) == (20, 32, 48, False)
    assert clip.fps == pytest.approx(32)
    assert (still.frames, still.is_still) == (1, True)


def test_read_frames_resizes_and_centre_crops(tmp_path: Path, make_clip) -> None:
    # A 64x32 frame: red | green (32 px) | blue. Fitting to 32x32 keeps only the green middle.
    bands = np.zeros((32, 64, 3), dtype=np.uint8)
    bands[:, :16, 0] = 255
    bands[:, 16:48, 1] = 255
    bands[:, 48:, 2] = 255
    Image.fromarray(bands).save(tmp_path / "bands.png")

    video = read_frames(tmp_path / "bands.png", "bands", [0], height=32, width=32)

    assert video.shape == (3, 1, 32, 32)
    assert video.min() >= -1 and video.max() <= 1
    centre = video[:, 0, :, 4:28].mean(dim=(1, 2))
    assert centre[1] > 0.9 and centre[0] < -0.9 and centre[2] < -0.9


def test_read_frames_decodes_exactly_the_requested_frames(tmp_path: Path, make_clip) -> None:
    clip = make_clip(tmp_path / "c.mp4", frames=9, width=32, height=32)

    video = read_frames(clip, "c", [0, 4, 8], height=16, width=16)

    assert video.shape == (3, 3, 16, 16)
    assert not torch.equal(video[:, 0], video[:, 2])  # the texture moved between them


def test_unreadable_footage_is_an_input_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_bytes(b"this is not a video")

    with pytest.raises(TrainerInputError, match="notes"):
        probe(bogus, "notes")


def test_captions_lead_with_the_trigger_word() -> None:
    assert compose_caption("a dog", "sks", "a") == "sks, a dog"
    assert compose_caption("sks dog running", "sks", "a") == "sks dog running"
    assert compose_caption(None, "sks", "a") == "sks"
    with pytest.raises(TrainerInputError, match="no caption"):
        compose_caption(None, None, "clip.mp4")


def test_cache_holds_latents_per_bucket_and_is_reused(
    tmp_path: Path, dataset: TrainingDataset, tiny_config
) -> None:
    config = tiny_config(frames=9)
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    storage = LocalStorage(tmp_path)

    data = prepare(spec, dataset, config, storage, "cache/dsv-1/", ["sks"])

    by_asset = {s.asset_index: s for s in data.samples}
    # pan.mp4: 20 frames at 32 fps, thinned to 16 fps = 10 frames, fills a 9-frame window.
    assert by_asset[0].bucket == Bucket(9, 32, 32) and by_asset[0].latents.shape == (16, 3, 4, 4)
    assert by_asset[1].bucket == Bucket(1, 32, 32) and by_asset[1].latents.shape == (16, 1, 4, 4)
    assert by_asset[2].caption == "sks, a person walking through rain"
    assert by_asset[0].caption == "sks"
    assert by_asset[2].prompt_embeds.shape[1] == 32
    assert any(info.key.endswith("manifest.json") for info in storage.list_objects("cache/dsv-1/"))

    def must_not_load() -> None:
        raise AssertionError("a cache hit must not load the VAE or the text encoder")

    spec.load_vae = must_not_load  # type: ignore[method-assign,assignment]
    spec.load_text_encoder = must_not_load  # type: ignore[method-assign,assignment]
    again = prepare(spec, dataset, config, storage, "cache/dsv-1/", ["sks"])
    assert len(again.samples) == len(data.samples)
    assert all(torch.equal(a.latents, b.latents) for a, b in zip(again.samples, data.samples, strict=True))


def test_caching_loads_the_encoder_as_the_base_and_frees_it_before_the_vae(
    tmp_path: Path, dataset: TrainingDataset, tiny_config
) -> None:
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    load_encoder, load_vae = spec.load_text_encoder, spec.load_vae
    encoders: list[weakref.ref[nn.Module]] = []
    quantized: list[int] = []

    def encoder_as_asked(quantization: Quantization) -> TextEncoder:
        encoder = load_encoder(quantization)
        encoders.append(weakref.ref(encoder.model))
        quantized.append(len(quantized_layers(encoder.model)))
        return encoder

    def vae_once_the_encoder_is_gone() -> nn.Module:
        assert encoders and encoders[-1]() is None, "the text encoder is alive beside the VAE"
        return load_vae()

    spec.load_text_encoder = encoder_as_asked  # type: ignore[method-assign,assignment]
    spec.load_vae = vae_once_the_encoder_is_gone  # type: ignore[method-assign]
    storage = LocalStorage(tmp_path)
    nf4 = prepare(spec, dataset, tiny_config(quantization=Quantization.NF4), storage, "cache/", ["sks"])
    fp32 = prepare(spec, dataset, tiny_config(quantization=Quantization.FP32), storage, "cache/", ["sks"])

    # Both layers' q, k, v, o, wi_0 and wi_1; nothing for fp32.
    assert quantized == [12, 0]
    # The embeddings differ with the encoder's storage, so each has its own cache.
    assert nf4.cache_key != fp32.cache_key
    assert not torch.equal(nf4.negative_embeds, fp32.negative_embeds)


def test_missing_footage_is_an_input_error(tmp_path: Path, clips_dir: Path, tiny_config) -> None:
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    dataset = TrainingDataset(
        version="v",
        assets=[TrainingAsset(key="gone.mp4", sha256="0" * 64, rights={}, caption="x")],
        source=FolderSource(clips_dir),
    )

    with pytest.raises(TrainerInputError, match=r"gone\.mp4: footage not found"):
        prepare(spec, dataset, tiny_config(), LocalStorage(tmp_path), "cache/", [])
