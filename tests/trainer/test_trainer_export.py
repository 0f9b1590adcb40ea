"""The exported adapter loads into a stock diffusers WanPipeline and renders what the trainer renders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tests.pipelines import stock_pipeline
from trainer import Quantization, RunStorage, Trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dataset, tiny_config):
    folder = tmp_path_factory.mktemp("export")
    trainer = Trainer(
        tiny_config(steps=3, validation_inference_steps=3),
        base="tiny",
        dataset=dataset,
        storage=RunStorage.local(folder),
    )
    result = trainer.run()
    return folder, trainer, result


def test_adapter_is_one_safetensors_in_diffusers_wan_layout(trained) -> None:
    folder, trainer, _ = trained

    with safe_open(str(folder / "adapter" / "adapter.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
        header = handle.metadata()

    assert all(k.startswith("transformer.blocks.") for k in keys)
    assert "transformer.blocks.0.attn1.to_q.lora_A.weight" in keys
    assert "transformer.blocks.1.attn2.to_out.0.lora_B.weight" in keys
    assert "transformer.blocks.0.ffn.net.0.proj.lora_A.weight" in keys
    assert "transformer.blocks.0.ffn.net.2.lora_B.weight" in keys
    assert len(keys) == 2 * 10 * 2  # blocks x targets x (A, B)
    lora = json.loads(header["lora_adapter_metadata"])
    assert lora["transformer.r"] == 4 and lora["transformer.lora_alpha"] == 8.0
    assert set(lora["transformer.target_modules"]) == set(trainer.spec.default_lora_targets)
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    assert (config["rank"], config["alpha"], config["architecture"]) == (4, 8.0, "wan2.1")


def test_training_record_lists_assets_rights_and_run(trained, dataset) -> None:
    folder, _, result = trained

    record = json.loads((folder / "adapter" / "training_record.json").read_text())

    assert record["base"]["id"] == "tiny" and record["dataset_version"] == "dsv-1"
    assert [a["sha256"] for a in record["assets"]] == [a.sha256 for a in dataset.assets]
    assert all(
        a["rights"] == {"attested_by": "test-tenant", "basis": "own footage"} for a in record["assets"]
    )
    assert record["steps"] == 3 and record["final_loss"] == result.final_loss
    assert record["hyperparameters"]["quantization"] == "nf4"
    assert record["hyperparameters"]["lora"]["rank"] == 4
    assert record["optimizer"] == "adamw8bit"
    assert record["peak_memory"]["bytes"] > 0


@pytest.mark.parametrize("quantization", [Quantization.NF4, Quantization.FP32])
def test_stock_wan_pipeline_with_the_export_renders_the_trainers_frames(
    quantization, tmp_path: Path, dataset, tiny_config
) -> None:
    trainer = Trainer(
        tiny_config(steps=2, quantization=quantization, validation_inference_steps=3),
        base="tiny",
        dataset=dataset,
        storage=RunStorage.local(tmp_path),
    )
    trainer.run()
    ours = trainer.render(0).numpy()

    spec: Any = trainer.spec  # the tiny base's: a WanSpecification with its prompt length
    # With the text encoder the run cached its prompts with, stored as its base is.
    pipeline = stock_pipeline(spec, quantization, encoder_quantization=quantization)

    def render() -> np.ndarray:
        frames: np.ndarray = pipeline(
            "sks",
            negative_prompt="",
            height=32,
            width=32,
            num_frames=5,
            num_inference_steps=3,
            guidance_scale=3.0,
            generator=torch.Generator().manual_seed(trainer.config.seed),
            max_sequence_length=spec.max_sequence_length,
        ).frames[0]
        return frames

    without_adapter = render()
    pipeline.load_lora_weights(str(tmp_path / "adapter" / "adapter.safetensors"))
    with_adapter = render()

    assert ours.shape == with_adapter.shape == (5, 32, 32, 3)
    np.testing.assert_allclose(with_adapter, ours, rtol=0, atol=1e-6)
    assert np.abs(without_adapter - ours).max() > 1e-3  # the adapter is what makes them equal
