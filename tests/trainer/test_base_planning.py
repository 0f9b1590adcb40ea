"""The torch-free sizes and memory estimate the scheduler plans with, checked against real modules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from torch import nn
from transformers import UMT5Config, UMT5EncoderModel

from core.bases.architecture import (
    UMT5_XXL,
    WAN21_T2V_1_3B,
    WAN21_T2V_14B,
    UnsupportedArchitecture,
    umt5_encoder_params,
    wan_transformer_dims,
)
from core.bases.catalogue import BaseFolderError, folder_entry, load_catalogue, tiny_entry
from core.bases.memory import BaseDims, estimate_peak_memory
from core.bases.quantization import Quantization, bytes_per_weight
from core.bases.tiny import TEXT_ENCODER_CONFIG, TRANSFORMER_CONFIG, VAE_CONFIG, VAE_PARAMS
from core.errors import Invalid
from core.settings import BasesSettings
from trainer.models.tiny import write_diffusers_folder

GiB = 1 << 30
WAN_1_3B = BaseDims(
    transformer=wan_transformer_dims(WAN21_T2V_1_3B, text_tokens=512),
    text_encoder_params=5_680_910_336,
    vae_params=126_892_531,
    vae_base_dim=96,
)


def _meta_counts(config: dict) -> tuple[int, int]:
    """Block linear weights and everything else, counted on the real module."""
    with torch.device("meta"):
        model = WanTransformer3DModel.from_config(config)
    block_linear = other = 0
    for name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if name.startswith("blocks.") and type(module) is nn.Linear and param_name == "weight":
                block_linear += param.numel()
            else:
                other += param.numel()
    return block_linear, other


@pytest.mark.parametrize(
    "config", [TRANSFORMER_CONFIG, WAN21_T2V_1_3B, WAN21_T2V_14B], ids=["tiny", "1.3b", "14b"]
)
def test_transformer_formula_matches_the_module(config: dict) -> None:
    dims = wan_transformer_dims(config, text_tokens=7)

    assert (dims.block_linear_params, dims.other_params) == _meta_counts(config)


@pytest.mark.parametrize("config", [TEXT_ENCODER_CONFIG, UMT5_XXL], ids=["tiny", "xxl"])
def test_text_encoder_formula_matches_the_module(config: dict) -> None:
    with torch.device("meta"):
        model = UMT5EncoderModel(UMT5Config(**config))

    assert umt5_encoder_params(config) == sum(p.numel() for p in model.parameters())


def test_tiny_vae_count_matches_the_module() -> None:
    with torch.device("meta"):
        model = AutoencoderKLWan(**VAE_CONFIG)

    assert sum(p.numel() for p in model.parameters()) == VAE_PARAMS


def test_image_to_video_configs_are_refused() -> None:
    with pytest.raises(UnsupportedArchitecture):
        wan_transformer_dims({**WAN21_T2V_14B, "image_dim": 1280}, text_tokens=512)


def _estimate(**changes):
    settings = {"height": 480, "width": 832, "frames": 81, "rank": 16, "quantization": Quantization.NF4}
    return estimate_peak_memory(WAN_1_3B, **{**settings, **changes})


def test_weights_follow_the_quantisation() -> None:
    nf4, int8, bf16 = (
        _estimate(quantization=q) for q in (Quantization.NF4, Quantization.INT8, Quantization.BF16)
    )

    assert nf4.training < int8.training < bf16.training
    assert bf16.weights - nf4.weights == int(
        WAN_1_3B.transformer.block_linear_params * (2 - bytes_per_weight(Quantization.NF4))
    )
    assert 0.5 * GiB < nf4.weights < 1.0 * GiB  # ~1.3B weights at ~4.1 bits, plus bf16 embedders


def test_activations_grow_with_resolution_frames_and_rank() -> None:
    base = _estimate()

    assert _estimate(frames=41).activations < base.activations
    assert _estimate(height=240, width=416).activations < base.activations
    assert _estimate(rank=64).trainable == 4 * base.trainable
    assert _estimate(gradient_checkpointing=False).activations > 5 * base.activations
    assert _estimate(validation=True).weights == base.weights + WAN_1_3B.vae_params * 4


def test_the_text_encoder_stage_sets_the_peak_of_a_small_nf4_run() -> None:
    # UMT5-XXL in bf16 (11.4 GB) outweighs training a 1.3B NF4 LoRA at 480p.
    estimate = _estimate()

    assert estimate.caching > estimate.training
    assert estimate.total == estimate.caching
    assert 11 * GiB < estimate.total < 16 * GiB


def test_training_dominates_a_14b_run_in_bf16() -> None:
    dims = BaseDims(
        transformer=wan_transformer_dims(WAN21_T2V_14B, text_tokens=512),
        text_encoder_params=WAN_1_3B.text_encoder_params,
        vae_params=WAN_1_3B.vae_params,
        vae_base_dim=96,
    )
    estimate = estimate_peak_memory(
        dims, height=480, width=832, frames=81, rank=32, quantization=Quantization.BF16
    )

    assert estimate.total == estimate.training > 28 * GiB


def test_a_saved_folder_reads_like_the_builtin(tmp_path: Path) -> None:
    write_diffusers_folder(tmp_path / "tiny-folder")

    folder = folder_entry("mine", tmp_path / "tiny-folder")
    builtin = tiny_entry()

    assert folder.family == builtin.family == "wan2.1"
    assert folder.parameters == builtin.parameters
    assert folder.dims.vae_params == builtin.dims.vae_params
    assert folder.dims.text_encoder_params == builtin.dims.text_encoder_params
    assert folder.source == str(tmp_path / "tiny-folder")


def test_catalogue_offers_what_settings_name(tmp_path: Path) -> None:
    write_diffusers_folder(tmp_path / "b")
    catalogue = load_catalogue(BasesSettings(folders={"house": tmp_path / "b"}, tiny=False))

    assert [entry.id for entry in catalogue] == ["house"]
    with pytest.raises(Invalid, match="offers: house"):
        catalogue.get("tiny")


def test_a_broken_folder_stops_start_up_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(BaseFolderError, match=r"'house'.*model_index\.json"):
        load_catalogue(BasesSettings(folders={"house": tmp_path / "empty"}))
