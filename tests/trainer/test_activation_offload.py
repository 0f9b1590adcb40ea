"""Checkpointed block inputs kept in host memory: the same loss and LoRA gradients as kept on the
accelerator, with the accelerator's copies freed once the forward has moved past them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.multiprocessing.reductions import StorageWeakRef

from core.bases.tiny import TINY_TEXT_TOKENS, TRANSFORMER_CONFIG
from trainer import RunStorage, Trainer, TrainingDataset


def _trainer(offload: str, tmp_path: Path, dataset: TrainingDataset, tiny_config) -> Trainer:
    """The trainer's transformer with its LoRA and checkpointing as a run sets them up."""
    trainer = Trainer(
        tiny_config(offload_activations=offload),
        base="tiny",
        dataset=dataset,
        storage=RunStorage.local(tmp_path / offload),
    )
    torch.manual_seed(0)
    trainer._prepare_models()
    trainer._prepare_trainable_parameters()
    # lora_B starts at zero, which would leave every lora_A gradient zero on both paths.
    generator = torch.Generator().manual_seed(1)
    for name, param in trainer.transformer.named_parameters():
        if "lora_B" in name:
            param.data = torch.randn(param.shape, generator=generator) * 0.1
    return trainer


def _loss(trainer: Trainer) -> torch.Tensor:
    spec, config = trainer.spec, trainer.config
    generator = torch.Generator().manual_seed(2)
    latents = torch.randn(
        1, *spec.latent_shape(config.frames, config.height, config.width), generator=generator
    )
    embeds = spec.batch_prompt_embeds(
        [torch.randn(TINY_TEXT_TOKENS, TRANSFORMER_CONFIG["text_dim"], generator=generator)]
    )
    batch = spec.prepare_latents(latents, generator, flow_shift=3.0, timestep_sampling="uniform")
    return spec.loss(spec.forward(trainer.transformer, batch.noisy_latents, batch.timesteps, embeds), batch)


def _forward_watching_block_inputs(trainer: Trainer) -> tuple[torch.Tensor, list[StorageWeakRef]]:
    """The loss, with weak references to the storage of every block's input as the forward saw it."""
    inputs: list[StorageWeakRef] = []
    handles = [
        block.register_forward_pre_hook(
            lambda _, args: inputs.append(StorageWeakRef(args[0].untyped_storage()))
        )
        for block in trainer.transformer.get_submodule("blocks").children()
    ]
    try:
        loss = _loss(trainer)
    finally:
        for handle in handles:
            handle.remove()
    return loss, inputs


def test_offloaded_block_inputs_give_the_same_loss_and_lora_gradients(
    tmp_path: Path, dataset: TrainingDataset, tiny_config
) -> None:
    kept, offloaded = (_trainer(mode, tmp_path, dataset, tiny_config) for mode in ("off", "on"))
    assert (kept.offload_activations, offloaded.offload_activations) == (False, True)

    losses = []
    for trainer in (kept, offloaded):
        loss = _loss(trainer)
        loss.backward()
        losses.append(loss.detach())

    assert torch.equal(losses[0], losses[1])
    kept_grads = {n: p.grad for n, p in kept.transformer.named_parameters() if p.requires_grad}
    offloaded_grads = {n: p.grad for n, p in offloaded.transformer.named_parameters() if p.requires_grad}
    assert kept_grads.keys() == offloaded_grads.keys()
    assert all(grad is not None and grad.abs().sum() > 0 for grad in kept_grads.values())
    assert all(torch.equal(kept_grads[n], offloaded_grads[n]) for n in kept_grads)  # type: ignore[arg-type]


@pytest.mark.parametrize(("mode", "freed"), [("off", False), ("on", True)])
def test_only_offloading_frees_the_block_inputs_before_backward(
    tmp_path: Path, dataset: TrainingDataset, tiny_config, mode: str, freed: bool
) -> None:
    trainer = _trainer(mode, tmp_path, dataset, tiny_config)

    loss, inputs = _forward_watching_block_inputs(trainer)

    assert len(inputs) == TRANSFORMER_CONFIG["num_layers"]
    # Off, checkpointing holds each input where it was made; on, only the host copy remains.
    assert [ref.expired() for ref in inputs] == [freed] * len(inputs)
    loss.backward()
    assert all(p.grad is not None for p in trainer.parameters)


def test_auto_leaves_the_tiny_base_on_the_accelerator(
    tmp_path: Path, dataset: TrainingDataset, tiny_config
) -> None:
    trainer = Trainer(tiny_config(), base="tiny", dataset=dataset, storage=RunStorage.local(tmp_path))

    assert trainer.config.offload_activations == "auto"
    assert trainer.offload_activations is False
