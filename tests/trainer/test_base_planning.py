"""The torch-free sizes and memory estimate the scheduler plans with, checked against real modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from diffusers import WanTransformer3DModel
from torch import nn
from transformers import UMT5Config, UMT5EncoderModel

from core.bases.architecture import (
    UMT5_XXL,
    WAN21_T2V_1_3B,
    WAN21_T2V_14B,
    UnsupportedArchitecture,
    umt5_encoder_dims,
    umt5_encoder_params,
    wan_transformer_dims,
)
from core.bases.catalogue import BaseFolderError, folder_entry, load_catalogue, tiny_entry
from core.bases.memory import BaseDims, estimate_peak_memory, text_encoder_memory
from core.bases.quantization import Quantization, bytes_per_weight
from core.bases.tiny import TEXT_ENCODER_CONFIG, TRANSFORMER_CONFIG, VAE_CONFIG, VAE_PARAMS
from core.errors import Invalid
from core.settings import BasesSettings
from core.training import LoraSettings, TrainConfig, TrainingConfigError
from trainer.models._untyped import AutoencoderKLWan
from trainer.models.tiny import write_diffusers_folder
from trainer.models.wan import load_umt5_encoder
from trainer.quantize import quantized_layers

GiB = 1 << 30
WAN_1_3B = BaseDims(
    transformer=wan_transformer_dims(WAN21_T2V_1_3B, text_tokens=512),
    text_encoder=umt5_encoder_dims(UMT5_XXL),
    vae_params=126_892_531,
    vae_base_dim=96,
)


def _meta_counts(config: dict[str, Any]) -> tuple[int, int]:
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
def test_transformer_formula_matches_the_module(config: dict[str, Any]) -> None:
    dims = wan_transformer_dims(config, text_tokens=7)

    assert (dims.block_linear_params, dims.other_params) == _meta_counts(config)


@pytest.mark.parametrize("config", [TEXT_ENCODER_CONFIG, UMT5_XXL], ids=["tiny", "xxl"])
def test_text_encoder_formula_matches_the_module(config: dict[str, Any]) -> None:
    with torch.device("meta"):
        model = UMT5EncoderModel(UMT5Config(**config))

    assert umt5_encoder_params(config) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("quantization", [Quantization.NF4, Quantization.INT8])
def test_text_encoder_split_matches_what_the_loader_quantises(quantization: Quantization) -> None:
    dims = umt5_encoder_dims(TEXT_ENCODER_CONFIG)
    torch.manual_seed(0)
    tensors = UMT5EncoderModel(UMT5Config(**TEXT_ENCODER_CONFIG)).state_dict()

    model = load_umt5_encoder(
        UMT5Config(**TEXT_ENCODER_CONFIG),
        tensors.items(),
        quantization,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )

    quantized = quantized_layers(model)
    assert sum(layer.in_features * layer.out_features for layer in quantized) == dims.quantizable_params
    assert dict(model.named_parameters())["shared.weight"].numel() == dims.embedding_params
    # One embedding module under both names, so it is loaded (and placed) once.
    assert model.get_submodule("encoder.embed_tokens") is model.get_submodule("shared")
    assert dims.params == umt5_encoder_params(TEXT_ENCODER_CONFIG)


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


def test_the_text_encoder_is_planned_as_the_base_is_stored() -> None:
    encoder = WAN_1_3B.text_encoder
    assert encoder is not None
    nf4, int8, bf16 = (
        text_encoder_memory(encoder, quantization=q, tokens=512)
        for q in (Quantization.NF4, Quantization.INT8, Quantization.BF16)
    )

    assert nf4 < int8 < bf16
    # bf16: the 4.6B layer parameters at 2 bytes; the 1.05B-row embedding is on the host.
    assert 8.5 * GiB < bf16 < 9.5 * GiB
    assert 3.5 * GiB < nf4 < 4 * GiB
    # Unquantised, the encoder still outweighs training a 1.3B bf16 LoRA on 33 frames.
    short_bf16 = _estimate(frames=33, quantization=Quantization.BF16)
    assert short_bf16.total == short_bf16.caching > short_bf16.training


@pytest.mark.parametrize("frames", [33, 81])
def test_caching_needs_no_more_than_training_a_1_3b_nf4_lora(frames: int) -> None:
    estimate = _estimate(frames=frames, rank=32)

    assert estimate.caching <= estimate.training == estimate.total


def test_a_1_3b_nf4_run_at_480p_33_frames_plans_under_6_gib() -> None:
    assert _estimate(frames=33, rank=32).total < 6 * GiB


def _config(**changes: Any) -> TrainConfig:
    """A run at 480x832, rank 32, NF4: the settings the plan's targets are stated for."""
    return TrainConfig(
        **{"frames": 33, "lora": LoraSettings(rank=32), "quantization": Quantization.NF4, **changes}
    )


@pytest.mark.parametrize("frames", [33, 81])
def test_auto_keeps_1_3b_nf4_runs_block_inputs_on_the_accelerator(frames: int) -> None:
    plan = _config(frames=frames).memory_plan(WAN_1_3B)

    assert not _config(frames=frames).offloads_activations(WAN_1_3B.transformer)
    assert plan == _config(frames=frames, offload_activations="off").memory_plan(WAN_1_3B)
    assert plan.offloaded == 0
    assert round(plan.total / GiB, 2) <= {33: 5.42, 81: 9.82}[frames]  # the figures before offloading


def test_offloading_leaves_one_block_input_on_the_accelerator() -> None:
    kept, offloaded = _estimate(), _estimate(offload_block_inputs=True)
    dims = WAN_1_3B.transformer
    block_input = 21 * 30 * 52 * dims.dim * 2  # 81 frames: 21 latent frames of 30x52 patches, bf16

    assert kept.offloaded == 0
    assert offloaded.offloaded == dims.num_layers * block_input
    assert kept.activations - offloaded.activations == (dims.num_layers - 1) * block_input
    assert offloaded.weights == kept.weights and offloaded.trainable == kept.trainable
    with pytest.raises(ValueError, match="needs gradient checkpointing"):
        _estimate(offload_block_inputs=True, gradient_checkpointing=False)


def test_offloading_settings_are_checked() -> None:
    with pytest.raises(TrainingConfigError, match="offload_activations must be one of auto, on, off"):
        _config(offload_activations="sometimes")
    with pytest.raises(TrainingConfigError, match="'on' needs gradient_checkpointing"):
        _config(offload_activations="on", gradient_checkpointing=False)
    assert not _config(gradient_checkpointing=False).offloads_activations(_WAN_14B.transformer)
    assert _config(offload_activations="on").offloads_activations(WAN_1_3B.transformer)


def test_an_int8_run_caches_within_its_training_peak_at_81_frames() -> None:
    estimate = _estimate(rank=32, quantization=Quantization.INT8)

    assert estimate.caching <= estimate.training


# Wan 2.1 14B: its transformer, with the 1.3B's text encoder and VAE (the same in both).
_WAN_14B = BaseDims(
    transformer=wan_transformer_dims(WAN21_T2V_14B, text_tokens=512),
    text_encoder=WAN_1_3B.text_encoder,
    vae_params=WAN_1_3B.vae_params,
    vae_base_dim=96,
)


def test_a_14b_nf4_run_plans_under_20_gib_with_its_block_inputs_on_the_host() -> None:
    plan = _config().memory_plan(_WAN_14B)
    kept = _config(offload_activations="off").memory_plan(_WAN_14B)
    # 33 frames: 9 latent frames of 30x52 patches; 40 blocks of width 5120, bf16.
    block_inputs = 40 * 9 * 30 * 52 * 5120 * 2

    assert _config().offloads_activations(_WAN_14B.transformer)
    assert plan.total < 20 * GiB < kept.total
    assert plan.offloaded == block_inputs
    assert kept.activations - plan.activations == block_inputs * 39 // 40
    assert plan.caching <= plan.training == plan.total


def test_training_dominates_a_14b_run_in_bf16() -> None:
    estimate = estimate_peak_memory(
        _WAN_14B, height=480, width=832, frames=81, rank=32, quantization=Quantization.BF16
    )

    assert estimate.total == estimate.training > 28 * GiB


def test_a_saved_folder_reads_like_the_builtin(tmp_path: Path) -> None:
    write_diffusers_folder(tmp_path / "tiny-folder")

    folder = folder_entry("mine", tmp_path / "tiny-folder")
    builtin = tiny_entry()

    assert folder.family == builtin.family == "wan2.1"
    assert folder.parameters == builtin.parameters
    assert folder.dims.vae_params == builtin.dims.vae_params
    assert folder.dims.text_encoder == builtin.dims.text_encoder
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
