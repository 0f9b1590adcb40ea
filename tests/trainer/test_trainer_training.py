"""Quantised loading and LoRA training on the tiny base."""

from __future__ import annotations

import math
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from torch import nn

from trainer import Control, Quantization, RunStorage, StepReport, Trainer, TrainerInputError, TrainingDataset
from trainer.models import load_specification
from trainer.models.tiny import write_diffusers_folder
from trainer.quantize import load_streaming, parameters_on_meta, quantized_layers

CPU = torch.device("cpu")


def _tiny(dtype: torch.dtype = torch.float32):
    return load_specification("tiny", device=CPU, dtype=dtype)


@pytest.mark.parametrize(
    ("quantization", "layer", "weight_dtype"),
    [
        (Quantization.NF4, bnb.nn.Linear4bit, torch.uint8),
        (Quantization.INT8, bnb.nn.Linear8bitLt, torch.int8),
    ],
)
def test_block_linears_are_quantised_while_loading(quantization, layer, weight_dtype) -> None:
    transformer = _tiny().load_transformer(quantization)

    quantized = quantized_layers(transformer)
    assert len(quantized) == 2 * 10  # 2 blocks x (4 + 4 attention projections + 2 FFN)
    assert all(isinstance(m, layer) and m.weight.dtype == weight_dtype for m in quantized)
    assert type(transformer.proj_out) is nn.Linear  # the output head stays in full precision
    assert not any(p.requires_grad for p in transformer.parameters())
    assert not any(p.device.type == "meta" for p in transformer.parameters())


def test_bf16_base_keeps_wan_fp32_modules() -> None:
    transformer = _tiny(torch.bfloat16).load_transformer(Quantization.BF16)

    assert transformer.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert transformer.blocks[0].scale_shift_table.dtype == torch.float32
    assert transformer.condition_embedder.time_embedder.linear_1.weight.dtype == torch.float32


def test_streaming_load_refuses_an_incomplete_checkpoint() -> None:
    with parameters_on_meta():
        model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))

    with pytest.raises(KeyError, match="lacks 2 tensors"):
        load_streaming(
            model,
            [("0.weight", torch.ones(4, 4)), ("0.bias", torch.ones(4))],
            device=CPU,
            dtype=torch.float32,
        )


def test_diffusers_folder_loads_the_same_weights_as_the_builtin(tmp_path: Path) -> None:
    write_diffusers_folder(tmp_path / "wan")
    from_folder = load_specification(str(tmp_path / "wan"), device=CPU, dtype=torch.float32)
    builtin = _tiny()

    assert from_folder.name == "wan2.1"
    assert len(list((tmp_path / "wan" / "transformer").glob("*.safetensors"))) > 1  # sharded
    folder_state = from_folder.load_transformer(Quantization.FP32).state_dict()
    builtin_state = builtin.load_transformer(Quantization.FP32).state_dict()
    assert folder_state.keys() == builtin_state.keys()
    assert all(torch.equal(folder_state[k], builtin_state[k]) for k in builtin_state)
    te_folder, te_builtin = from_folder.load_text_encoder(), builtin.load_text_encoder()
    (a,), (b,) = (
        from_folder.encode_prompts(te_folder, ["sks dog"]),
        builtin.encode_prompts(te_builtin, ["sks dog"]),
    )
    assert torch.equal(a, b)


def test_a_base_folder_without_components_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text('{"_class_name": "WanPipeline"}')

    with pytest.raises(TrainerInputError, match="lacks transformer"):
        load_specification(str(tmp_path), device=CPU, dtype=torch.float32)


def test_nf4_training_moves_only_the_lora(tmp_path: Path, dataset: TrainingDataset, tiny_config) -> None:
    reports: list[StepReport] = []
    trainer = Trainer(
        tiny_config(steps=3, validation_every=3),
        base="tiny",
        dataset=dataset,
        storage=RunStorage.local(tmp_path),
        callback=reports.append,
    )
    trainer._prepare_dataset()
    trainer._prepare_models()
    trainer._prepare_trainable_parameters()
    base_before = {
        n: p.detach().clone() for n, p in trainer.transformer.named_parameters() if not p.requires_grad
    }
    lora_before = {
        n: p.detach().clone() for n, p in trainer.transformer.named_parameters() if p.requires_grad
    }
    trainer._prepare_checkpointing()

    result = trainer._train()

    after = dict(trainer.transformer.named_parameters())
    assert result.status == "completed" and result.step == 3
    assert lora_before and all("lora_" in name for name in lora_before)
    assert all(after[n].dtype == torch.float32 for n in lora_before)
    # lora_B starts at zero; every one moving shows gradients reach every block through checkpointing.
    assert all(not torch.equal(after[n], before) for n, before in lora_before.items() if "lora_B" in n)
    assert all(torch.equal(after[n], before) for n, before in base_before.items())
    assert isinstance(trainer.transformer.blocks[0].attn1.to_q.base_layer, bnb.nn.Linear4bit)
    assert isinstance(trainer.optimizer, bnb.optim.AdamW8bit)

    assert [r.step for r in reports] == [1, 2, 3]
    assert all(math.isfinite(r.loss) and r.loss > 0 for r in reports)
    assert all(r.learning_rate == pytest.approx(1e-2) and r.samples_per_second > 0 for r in reports)
    assert all(r.peak_memory_bytes > 0 and r.peak_memory_kind == "process_peak_rss" for r in reports)
    assert [r.checkpoint_key for r in reports] == [
        None,
        "checkpoints/step-00000002/",
        "checkpoints/step-00000003/",
    ]
    (clip_key,) = reports[2].validation_keys
    assert clip_key == "validation/step-00000003/00.mp4"


def test_validation_clips_are_h264_mp4_of_the_configured_length(tmp_path: Path, dataset, tiny_config) -> None:
    import av

    storage = RunStorage.local(tmp_path)
    result = Trainer(
        tiny_config(steps=1, validation_every=1, validation_prompts=("sks walking", "sks")),
        base="tiny",
        dataset=dataset,
        storage=storage,
    ).run()

    assert result.validation_keys == ["validation/step-00000001/00.mp4", "validation/step-00000001/01.mp4"]
    with storage.storage.local_path(result.validation_keys[0]) as path, av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "h264"
    assert len(frames) == 5 and (frames[0].width, frames[0].height) == (32, 32)


def test_callback_stop_writes_a_checkpoint_and_returns(tmp_path: Path, dataset, tiny_config) -> None:
    storage = RunStorage.local(tmp_path)
    result = Trainer(
        tiny_config(steps=10, checkpoint_every=100),
        base="tiny",
        dataset=dataset,
        storage=storage,
        callback=lambda report: Control.STOP if report.step == 3 else None,
    ).run()

    assert (result.status, result.step, result.export) == ("stopped", 3, None)
    assert result.checkpoint_key == "checkpoints/step-00000003/"
    assert storage.storage.stat("checkpoints/step-00000003/meta.json") is not None
    assert storage.storage.stat("adapter/adapter.safetensors") is None


def test_bad_settings_are_refused_before_any_model_loads(tmp_path: Path, dataset, tiny_config) -> None:
    with pytest.raises(TrainerInputError, match="1 \\+ a multiple of 4"):
        Trainer(tiny_config(frames=8), base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path))
    with pytest.raises(TrainerInputError, match="multiples of 16"):
        Trainer(tiny_config(height=40), base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path))
    with pytest.raises(TrainerInputError, match="steps must be at least 1"):
        tiny_config(steps=0)
    with pytest.raises(TrainerInputError, match="neither a built-in base"):
        Trainer(
            tiny_config(), base=str(tmp_path / "nope"), dataset=dataset, storage=RunStorage.local(tmp_path)
        )
