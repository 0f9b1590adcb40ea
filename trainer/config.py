"""A run's hyperparameters, validated when built so a bad request fails before any model loads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.bases.architecture import geometry_problem
from core.bases.quantization import Quantization
from trainer.errors import TrainerInputError

TIMESTEP_SAMPLING = ("uniform", "logit_normal")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
OPTIMIZERS = ("adamw8bit", "adamw")


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 16
    alpha: float = 16.0
    # None means the base's defaults (attention and FFN projections).
    targets: tuple[str, ...] | None = None
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    seed: int = 0
    learning_rate: float = 1e-4
    lr_scheduler: str = "constant_with_warmup"
    lr_warmup_steps: int = 0
    batch_size: int = 1
    optimizer: str = "adamw8bit"
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    quantization: Quantization = Quantization.NF4
    gradient_checkpointing: bool = True
    # Footage
    height: int = 480
    width: int = 832
    frames: int = 81
    target_fps: float | None = 16.0  # Wan's training rate; None keeps every frame
    windows_per_clip: int = 1
    trigger_word: str | None = None
    # Flow matching
    flow_shift: float = 3.0
    timestep_sampling: str = "uniform"
    # Checkpoints and validation
    checkpoint_every: int = 250
    checkpoints_to_keep: int = 2
    validation_every: int = 0  # 0: no validation clips
    validation_prompts: tuple[str, ...] = ()
    validation_negative_prompt: str = ""
    validation_inference_steps: int = 30
    validation_guidance: float = 5.0
    device: str | None = None  # None: CUDA when present, else CPU

    def __post_init__(self) -> None:
        problems: list[str] = []

        def need(condition: bool, message: str) -> None:
            if not condition:
                problems.append(message)

        need(self.steps >= 1, "steps must be at least 1")
        need(self.learning_rate > 0, "learning_rate must be positive")
        need(self.batch_size >= 1, "batch_size must be at least 1")
        need(self.lr_warmup_steps >= 0, "lr_warmup_steps must not be negative")
        need(self.lr_scheduler in LR_SCHEDULERS, f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        need(self.lora.rank >= 1, "LoRA rank must be at least 1")
        need(self.lora.alpha > 0, "LoRA alpha must be positive")
        need(self.lora.targets is None or len(self.lora.targets) > 0, "LoRA targets must not be empty")
        need(0 <= self.lora.dropout < 1, "LoRA dropout must be in [0, 1)")
        need(self.height >= 16 and self.width >= 16, "resolution must be at least 16x16")
        need(self.frames >= 1, "frames must be at least 1")
        need(self.target_fps is None or self.target_fps > 0, "target_fps must be positive")
        need(self.windows_per_clip >= 1, "windows_per_clip must be at least 1")
        need(self.flow_shift > 0, "flow_shift must be positive")
        need(
            self.timestep_sampling in TIMESTEP_SAMPLING,
            f"timestep_sampling must be one of {TIMESTEP_SAMPLING}",
        )
        need(self.checkpoint_every >= 1, "checkpoint_every must be at least 1")
        need(self.checkpoints_to_keep >= 1, "checkpoints_to_keep must be at least 1")
        need(self.validation_every >= 0, "validation_every must not be negative")
        need(self.validation_inference_steps >= 1, "validation_inference_steps must be at least 1")
        need(
            self.trigger_word is None or self.trigger_word.strip() != "",
            "trigger_word must not be blank when given",
        )
        if problems:
            raise TrainerInputError("; ".join(problems))

    def check_geometry(self, *, temporal_factor: int, spatial_multiple: int) -> None:
        """The base's constraints on frame count and size, checked once the base is known."""
        problem = geometry_problem(
            frames=self.frames,
            height=self.height,
            width=self.width,
            temporal_factor=temporal_factor,
            spatial_multiple=spatial_multiple,
        )
        if problem:
            raise TrainerInputError(problem)

    @classmethod
    def from_record(cls, record: dict[str, Any], **changes: Any) -> TrainConfig:
        """The inverse of ``to_record``: missing fields take their defaults, unknown ones are refused."""
        fields = {**record, **changes}
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TrainerInputError(f"unknown settings: {', '.join(unknown)}")
        lora = dict(fields.pop("lora", None) or {})
        if lora.get("targets") is not None:
            lora["targets"] = tuple(lora["targets"])
        unknown_lora = sorted(set(lora) - {f.name for f in dataclasses.fields(LoraSettings)})
        if unknown_lora:
            raise TrainerInputError(f"unknown LoRA settings: {', '.join(unknown_lora)}")
        if "validation_prompts" in fields:
            fields["validation_prompts"] = tuple(fields["validation_prompts"])
        if "quantization" in fields:
            try:
                fields["quantization"] = Quantization(fields["quantization"])
            except ValueError:
                raise TrainerInputError(f"unknown quantization {fields['quantization']!r}") from None
        return cls(lora=LoraSettings(**lora), **fields)

    def to_record(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["quantization"] = str(self.quantization)
        return record
