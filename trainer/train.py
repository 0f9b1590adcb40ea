"""One LoRA fine-tune, as a staged run.

``Trainer.run`` goes through ``_prepare_dataset`` (latents and prompt embeddings cached; VAE and
text encoder loaded, used and freed), ``_prepare_models`` (the base transformer, quantised
while it loads), ``_prepare_trainable_parameters`` (LoRA, optimiser, LR schedule),
``_prepare_checkpointing`` (resume from the newest complete checkpoint) and ``_train``.
The dataset comes first so the text encoder, the largest component of Wan, is gone before
the transformer arrives.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import torch
from diffusers.optimization import get_scheduler
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

from trainer import checkpoint
from trainer.activations import block_checkpointing
from trainer.config import TrainConfig, check_specification
from trainer.data import BucketBatchSampler, PreparedData, TrainingDataset, prepare
from trainer.devices import compute_dtype, free_memory, peak_memory, reset_peak_memory, resolve_device
from trainer.errors import TrainerInputError
from trainer.export import ExportedAdapter, LoraLayout, export
from trainer.models import ModelSpecification, load_specification
from trainer.progress import Control, ProgressCallback, StepReport, StopTraining
from trainer.quantize import bnb, describe
from trainer.storage import RunStorage
from trainer.video import encode_mp4

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    status: Literal["completed", "stopped"]
    step: int
    final_loss: float | None
    peak_memory_bytes: int
    peak_memory_kind: str
    checkpoint_key: str | None
    export: ExportedAdapter | None  # set when the run completed
    validation_keys: list[str] = field(default_factory=list)


class Trainer:
    """Fine-tunes a LoRA of ``base`` on ``dataset``, reading and writing through ``storage``.

    ``base`` is a built-in name (``"tiny"``) or a local diffusers folder; ``base_id`` is what
    the training record calls it (the service's catalogue id), defaulting to ``base``.
    With ``resume`` the run continues from the newest complete checkpoint under the
    checkpoint prefix, if there is one.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        base: str,
        dataset: TrainingDataset,
        storage: RunStorage,
        callback: ProgressCallback | None = None,
        base_id: str | None = None,
        resume: bool = True,
    ) -> None:
        self.config = config
        self.dataset = dataset
        self.storage = storage
        self.callback = callback
        self.resume = resume
        self.device = resolve_device(config.device)
        self.dtype = compute_dtype(self.device, config.quantization)
        self.spec: ModelSpecification = load_specification(base, device=self.device, dtype=self.dtype)
        self.base_id = base_id or self.spec.base_id
        check_specification(config, self.spec)
        self.offload_activations = config.offloads_activations(self.spec.transformer_dims())
        self.lora = LoraLayout(
            rank=config.lora.rank,
            alpha=config.lora.alpha,
            targets=config.lora.targets or self.spec.default_lora_targets,
            dropout=config.lora.dropout,
        )
        self.validation_prompts = config.validation_prompts or (config.trigger_word or "",)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.last_loss: float | None = None
        self.started_at = datetime.now(UTC)
        self.validation_keys: list[str] = []
        self.data: PreparedData
        self.transformer: nn.Module
        self.parameters: list[nn.Parameter]
        self.optimizer: torch.optim.Optimizer
        self.lr_scheduler: torch.optim.lr_scheduler.LRScheduler
        self.sampler: BucketBatchSampler
        self.optimizer_name: str

    def run(self) -> TrainingResult:
        self._seed_everything()
        self._prepare_dataset()
        self._prepare_models()
        self._prepare_trainable_parameters()
        self._prepare_checkpointing()
        return self._train()

    def _seed_everything(self) -> None:
        # LoRA initialisation draws from the global generators; seeding them makes two runs
        # with one seed start from the same adapter.
        torch.manual_seed(self.config.seed)
        np.random.seed(self.config.seed % 2**32)
        random.seed(self.config.seed)

    def _prepare_dataset(self) -> None:
        self.data = prepare(
            self.spec,
            self.dataset,
            self.config,
            self.storage.storage,
            self.storage.cache_prefix,
            self.validation_prompts,
        )
        self.sampler = BucketBatchSampler(
            [sample.bucket for sample in self.data.samples],
            batch_size=self.config.batch_size,
            seed=self.config.seed,
        )

    def _prepare_models(self) -> None:
        reset_peak_memory(self.device)
        self.transformer = self.spec.load_transformer(self.config.quantization)
        logger.info("base transformer loaded (%s): %s", self.config.quantization, describe(self.transformer))

    def _prepare_trainable_parameters(self) -> None:
        transformer = self.transformer
        transformer.requires_grad_(False)
        transformer.add_adapter(LoraConfig(**self.lora.peft_kwargs()))  # type: ignore[operator]
        # LoRA weights train in fp32 whatever the base dtype; bf16 updates would round away.
        self.parameters = [p for p in transformer.parameters() if p.requires_grad]
        for param in self.parameters:
            param.data = param.data.float()
        if not self.parameters:
            raise TrainerInputError(f"LoRA targets {list(self.lora.targets)} match no layer of the base")
        if self.config.gradient_checkpointing:
            transformer.enable_gradient_checkpointing(  # type: ignore[operator]
                block_checkpointing(offload_inputs=self.offload_activations)
            )
            if self.offload_activations:
                logger.info("checkpointed block inputs are kept in pinned host memory")
        transformer.train()
        self.optimizer, self.optimizer_name = self._make_optimizer()
        self.lr_scheduler = get_scheduler(
            self.config.lr_scheduler,
            self.optimizer,
            num_warmup_steps=self.config.lr_warmup_steps,
            num_training_steps=self.config.steps,
        )

    def _make_optimizer(self) -> tuple[torch.optim.Optimizer, str]:
        kwargs: dict[str, Any] = {"lr": self.config.learning_rate, "weight_decay": self.config.weight_decay}
        if self.config.optimizer == "adamw8bit":
            try:
                optimizer = bnb.optim.AdamW8bit(self.parameters, **kwargs)
                return optimizer, "adamw8bit"
            except (RuntimeError, NotImplementedError) as exc:
                # Only for devices bitsandbytes has no 8-bit optimiser kernel for; the run
                # record says which optimiser actually ran.
                logger.warning("8-bit AdamW unavailable on %s (%s); using torch AdamW", self.device, exc)
        return torch.optim.AdamW(self.parameters, **kwargs), "adamw"

    def _prepare_checkpointing(self) -> None:
        if not self.resume:
            return
        folder = checkpoint.latest(self.storage.storage, self.storage.checkpoint_prefix)
        if folder is None:
            return
        state = checkpoint.load(self.storage.storage, folder)
        mismatch = TrainerInputError(f"checkpoint {folder} was made with another LoRA rank or targets")
        try:
            result = set_peft_model_state_dict(self.transformer, state.adapter)
        except RuntimeError as exc:  # tensor shape mismatch: another rank
            raise mismatch from exc
        if getattr(result, "unexpected_keys", None):
            raise mismatch
        self.optimizer.load_state_dict(state.optimizer)
        self.lr_scheduler.load_state_dict(state.lr_scheduler)
        self.sampler.load_state_dict(state.sampler)
        # Last, so nothing above can consume random numbers after the restore.
        checkpoint.restore_rng(state.rng, self.generator)
        self.step = state.step
        self.last_loss = state.loss
        logger.info("resumed from %s at step %d", folder, state.step)

    def _train_step(self) -> tuple[float, int]:
        """One optimiser step; returns its loss and how many samples it saw."""
        indices = self.sampler.next_batch()
        samples = [self.data.samples[i] for i in indices]
        latents = torch.stack([s.latents for s in samples])
        prompt_embeds = self.spec.batch_prompt_embeds([s.prompt_embeds for s in samples])
        batch = self.spec.prepare_latents(
            latents,
            self.generator,
            flow_shift=self.config.flow_shift,
            timestep_sampling=self.config.timestep_sampling,
        )
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            prediction = self.spec.forward(
                self.transformer, batch.noisy_latents, batch.timesteps, prompt_embeds
            )
            loss = self.spec.loss(prediction, batch)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not np.isfinite(value):
            raise FloatingPointError(f"loss became {value} at step {self.step + 1}")
        return value, len(indices)

    def _train(self) -> TrainingResult:
        config = self.config
        last_checkpoint = (
            checkpoint.latest(self.storage.storage, self.storage.checkpoint_prefix) if self.resume else None
        )
        while self.step < config.steps:
            started = time.perf_counter()
            self.last_loss, samples = self._train_step()
            self.step += 1
            elapsed = time.perf_counter() - started
            written = None
            if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                written = last_checkpoint = self._save_checkpoint()
            rendered: tuple[str, ...] = ()
            if config.validation_every and self.step % config.validation_every == 0:
                rendered = self._validate()
            peak, kind = peak_memory(self.device)
            report = StepReport(
                step=self.step,
                total_steps=config.steps,
                loss=self.last_loss,
                learning_rate=float(self.lr_scheduler.get_last_lr()[0]),
                samples_per_second=samples / max(elapsed, 1e-9),
                peak_memory_bytes=peak,
                peak_memory_kind=kind,
                checkpoint_key=written,
                validation_keys=rendered,
            )
            if self._should_stop(report):
                if written is None:
                    last_checkpoint = self._save_checkpoint()
                logger.info("stopped by the caller after step %d", self.step)
                return self._result("stopped", last_checkpoint, None)
        exported = self._export()
        return self._result("completed", last_checkpoint, exported)

    def _should_stop(self, report: StepReport) -> bool:
        if self.callback is None:
            return False
        try:
            return self.callback(report) is Control.STOP
        except StopTraining:
            return True

    def _save_checkpoint(self) -> str:
        folder = checkpoint.save(
            self.storage.storage,
            self.storage.checkpoint_prefix,
            step=self.step,
            loss=self.last_loss,
            adapter=get_peft_model_state_dict(self.transformer),
            optimizer=self.optimizer.state_dict(),
            lr_scheduler=self.lr_scheduler.state_dict(),
            rng=checkpoint.capture_rng(self.generator),
            sampler=self.sampler.state_dict(),
        )
        checkpoint.prune(
            self.storage.storage, self.storage.checkpoint_prefix, self.config.checkpoints_to_keep
        )
        return folder

    def render(self, prompt_index: int = 0) -> torch.Tensor:
        """Frames ``[f, h, w, 3]`` for a validation prompt with the current adapter, at the run's seed."""
        vae = self.spec.load_vae()
        try:
            return self._render(vae, prompt_index)
        finally:
            del vae
            free_memory(self.device)

    def _render(self, vae: nn.Module, prompt_index: int) -> torch.Tensor:
        config = self.config
        frames = self.sample(
            vae,
            [prompt_index],
            [config.seed],
            frames=config.frames,
            height=config.height,
            width=config.width,
            steps=config.validation_inference_steps,
            guidance=config.validation_guidance,
        )
        return frames[0]

    def sample(
        self,
        vae: nn.Module,
        prompt_indexes: Sequence[int],
        seeds: Sequence[int],
        *,
        frames: int,
        height: int,
        width: int,
        steps: int,
        guidance: float,
    ) -> torch.Tensor:
        """Frames ``[b, f, h, w, 3]`` in [0, 1], one per pair of validation prompt and seed,
        in one batch, with the transformer as it is (adapter enabled or not)."""
        negative = (
            self.spec.batch_prompt_embeds([self.data.negative_embeds] * len(seeds))
            if guidance > 1.0
            else None
        )
        prompts = self.spec.batch_prompt_embeds([self.data.validation_embeds[i] for i in prompt_indexes])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            return self.spec.sample(
                self.transformer,
                vae,
                prompts,
                negative,
                # Their own generators: rendering must not shift the training noise stream.
                noise=self.spec.initial_noise(
                    [torch.Generator().manual_seed(seed) for seed in seeds],
                    frames=frames,
                    height=height,
                    width=width,
                ),
                steps=steps,
                guidance=guidance,
            )

    def _validate(self) -> tuple[str, ...]:
        keys: list[str] = []
        vae = self.spec.load_vae()
        # Rendering draws noise; it must not move the training RNG, or a run resumed from
        # this step's checkpoint would train on different noise than one that never stopped.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            try:
                self._render_all(vae, keys)
            finally:
                del vae
                free_memory(self.device)
        self.validation_keys.extend(keys)
        return tuple(keys)

    def _render_all(self, vae: nn.Module, keys: list[str]) -> None:
        for index in range(len(self.validation_prompts)):
            key = f"{self.storage.validation_prefix}step-{self.step:08d}/{index:02d}.mp4"
            self.storage.storage.put_bytes(key, encode_mp4(self._render(vae, index)), "video/mp4")
            keys.append(key)

    def _export(self) -> ExportedAdapter:
        peak, kind = peak_memory(self.device)
        state = self.spec.export_lora_state_dict(get_peft_model_state_dict(self.transformer))
        record = {
            "base": {"id": self.base_id, "spec": self.spec.name, "architecture": self.spec.family},
            "dataset_version": self.dataset.version,
            "assets": [
                {
                    "asset_id": asset.asset_id,
                    "key": asset.key,
                    "sha256": asset.sha256,
                    "rights": asset.rights,
                    "caption": asset.caption,
                }
                for asset in self.dataset.assets
            ],
            "samples": len(self.data.samples),
            "hyperparameters": self.config.to_record(),
            "lora": {"rank": self.lora.rank, "alpha": self.lora.alpha, "targets": list(self.lora.targets)},
            "optimizer": self.optimizer_name,
            # What "auto" resolved to, so the peak below can be set against the right plan.
            "activations_offloaded": self.offload_activations,
            "steps": self.step,
            "final_loss": self.last_loss,
            "peak_memory": {"bytes": peak, "kind": kind},
            "device": str(self.device),
            "started_at": self.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
        }
        return export(
            self.storage.storage,
            self.storage.export_prefix,
            state_dict=state,
            lora=self.lora,
            base_id=self.base_id,
            family=self.spec.family,
            record=record,
        )

    def _result(
        self,
        status: Literal["completed", "stopped"],
        checkpoint_key: str | None,
        exported: ExportedAdapter | None,
    ) -> TrainingResult:
        peak, kind = peak_memory(self.device)
        return TrainingResult(
            status=status,
            step=self.step,
            final_loss=self.last_loss,
            peak_memory_bytes=peak,
            peak_memory_kind=kind,
            checkpoint_key=checkpoint_key,
            export=exported,
            validation_keys=list(self.validation_keys),
        )


def train(
    config: TrainConfig,
    *,
    base: str,
    dataset: TrainingDataset,
    storage: RunStorage,
    callback: ProgressCallback | None = None,
    base_id: str | None = None,
    resume: bool = True,
) -> TrainingResult:
    """Run one fine-tune to completion or until the callback stops it."""
    trainer = Trainer(
        config, base=base, dataset=dataset, storage=storage, callback=callback, base_id=base_id, resume=resume
    )
    return trainer.run()
