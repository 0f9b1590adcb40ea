"""A fine-tune's configuration: one typed record that the API, the worker and the trainer share.

Torch-free, so the API builds and validates the same ``TrainConfig`` the worker runs. Every
rule lives here or in ``core/bases``: the bounds of each setting (``BOUNDS``), the names of
schedulers, optimisers and timestep samplers, the rules between settings, and, once the base
is known, its geometry and how many positions its transformer can place
(``check_base``), the memory plan (``memory_plan``) and whether the run offloads its
checkpointed activations (``offloads_activations``). A request that breaks one is refused
when the job is made (422, naming the rule); the worker loads the stored record with
``from_record`` and checks it against the base again, so a job that was accepted never fails
on its configuration.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.bases.architecture import (
    SPATIAL_MULTIPLE,
    TEMPORAL_FACTOR,
    TransformerDims,
    geometry_problem,
    positions_problem,
)
from core.bases.memory import BaseDims, GiB, MemoryEstimate, estimate_peak_memory
from core.bases.quantization import Quantization
from core.errors import Invalid

TIMESTEP_SAMPLING = ("uniform", "logit_normal")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine")
OPTIMIZERS = ("adamw8bit", "adamw")
OFFLOAD_ACTIVATIONS = ("auto", "on", "off")
# ``offload_activations="auto"`` offloads where training would otherwise plan above this: so
# such a run fits a 24 GiB card, the smallest the scheduler plans for, with room for the
# estimate's error. Below it the PCIe copies would buy memory no card needs.
OFFLOAD_ABOVE = 20 * GiB
MAX_VALIDATION_PROMPTS = 4


class TrainingInputError(Invalid, ValueError):
    """Bad input to a training run: an impossible setting, a missing folder, unusable footage.

    The API answers it with 422 and its text; the trainer raises it as ``TrainerInputError``
    (the same class), which its CLI prints as one line and the worker records as the reason a
    job failed. Anything else is a bug and keeps its traceback.
    """


class TrainingConfigError(TrainingInputError):
    """A setting, or a combination with the base, that cannot run. The API refuses these when a
    job is made, so one met by a worker is the platform's fault, not the tenant's."""


@dataclass(frozen=True)
class Bound:
    """The range one numeric setting may take; ``None`` (where a setting allows it) is not checked."""

    name: str  # as requests and the CLI spell it
    get: Callable[[TrainConfig], float | None]
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # ``low`` itself is excluded
    high_open: bool = False

    def problem(self, config: TrainConfig) -> str | None:
        value = self.get(config)
        if value is None:
            return None
        # Written so that NaN breaks every bound.
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            if self.low_open:
                need = "positive" if self.low == 0 else f"more than {_number(self.low)}"
            else:
                need = f"at least {_number(self.low)}"
            return f"{self.name} must be {need}; got {_number(value)}"
        if self.high is not None and not (value < self.high if self.high_open else value <= self.high):
            need = f"less than {_number(self.high)}" if self.high_open else f"at most {_number(self.high)}"
            return f"{self.name} must be {need}; got {_number(value)}"
        return None

    def json_schema(self) -> dict[str, Any]:
        """The bound in JSON Schema's words, for the OpenAPI description of a request."""
        schema: dict[str, Any] = {}
        if self.low is not None:
            schema["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            schema["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return schema


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _lora(name: str) -> Callable[[TrainConfig], float | None]:
    return lambda config: getattr(config.lora, name)


# Every numeric setting's range. The upper bounds are the service's limits on one run.
BOUNDS: dict[str, Bound] = {
    bound.name: bound
    for bound in (
        Bound("steps", operator.attrgetter("steps"), 1, 100_000),
        Bound("seed", operator.attrgetter("seed"), 0, 2**31 - 1),
        Bound("learning_rate", operator.attrgetter("learning_rate"), 0, 1, low_open=True),
        Bound("lr_warmup_steps", operator.attrgetter("lr_warmup_steps"), 0),
        Bound("batch_size", operator.attrgetter("batch_size"), 1, 16),
        Bound("rank", _lora("rank"), 1, 256),
        Bound("alpha", _lora("alpha"), 0, 1024, low_open=True),
        Bound("lora_dropout", _lora("dropout"), 0, 1, high_open=True),
        Bound("height", operator.attrgetter("height"), 16, 2048),
        Bound("width", operator.attrgetter("width"), 16, 2048),
        Bound("frames", operator.attrgetter("frames"), 1, 257),
        Bound("target_fps", operator.attrgetter("target_fps"), 0, low_open=True),
        Bound("windows_per_clip", operator.attrgetter("windows_per_clip"), 1),
        Bound("flow_shift", operator.attrgetter("flow_shift"), 0, low_open=True),
        Bound("checkpoint_every", operator.attrgetter("checkpoint_every"), 1),
        Bound("checkpoints_to_keep", operator.attrgetter("checkpoints_to_keep"), 1),
        Bound("validation_every", operator.attrgetter("validation_every"), 0),
        Bound("validation_inference_steps", operator.attrgetter("validation_inference_steps"), 1),
    )
}


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 16
    alpha: float = 16.0
    # None means the base's defaults (attention and FFN projections).
    targets: tuple[str, ...] | None = None
    dropout: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    """A run's settings, validated when built so a bad request fails before any model loads."""

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
    # Keep the checkpointed block inputs in pinned host memory: "on", "off", or "auto"
    # (``offloads_activations``).
    offload_activations: str = "auto"
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
    device: str | None = None  # None: CUDA when present, else CPU; where it runs, not what runs

    def __post_init__(self) -> None:
        problems = [problem for bound in BOUNDS.values() if (problem := bound.problem(self))]

        def need(condition: bool, message: str) -> None:
            if not condition:
                problems.append(message)

        need(
            self.offload_activations in OFFLOAD_ACTIVATIONS,
            f"offload_activations must be one of {', '.join(OFFLOAD_ACTIVATIONS)}",
        )
        need(
            self.gradient_checkpointing or self.offload_activations != "on",
            "offload_activations 'on' needs gradient_checkpointing",
        )
        need(self.lr_scheduler in LR_SCHEDULERS, f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        need(
            self.timestep_sampling in TIMESTEP_SAMPLING,
            f"timestep_sampling must be one of {', '.join(TIMESTEP_SAMPLING)}",
        )
        need(
            self.lr_warmup_steps < self.steps or self.lr_warmup_steps == 0,
            "lr_warmup_steps must be fewer than steps",
        )
        need(self.lora.targets is None or len(self.lora.targets) > 0, "LoRA targets must not be empty")
        need(
            len(self.validation_prompts) <= MAX_VALIDATION_PROMPTS,
            f"at most {MAX_VALIDATION_PROMPTS} validation prompts",
        )
        need(
            self.trigger_word is None or self.trigger_word.strip() != "",
            "trigger_word must not be blank when given",
        )
        if problems:
            raise TrainingConfigError("; ".join(problems))

    def check_geometry(
        self,
        *,
        temporal_factor: int = TEMPORAL_FACTOR,
        spatial_multiple: int = SPATIAL_MULTIPLE,
        transformer: TransformerDims | None = None,
    ) -> None:
        """The base's constraints on frame count and size, and (given its transformer) the
        positions its rotary embedding can place, checked once the base is known."""
        shape = {"frames": self.frames, "height": self.height, "width": self.width}
        factors = {"temporal_factor": temporal_factor, "spatial_multiple": spatial_multiple}
        problems = [geometry_problem(**shape, **factors)]
        if transformer is not None:
            problems.append(positions_problem(**shape, **factors, transformer=transformer))
        found = [problem for problem in problems if problem]
        if found:
            raise TrainingConfigError("; ".join(found))

    def check_base(self, dims: BaseDims) -> None:
        """Everything about this run that depends on the base, without loading it (API and worker)."""
        self.check_geometry(transformer=dims.transformer)

    def memory_plan(self, dims: BaseDims) -> MemoryEstimate:
        """The run's planned peak accelerator memory on a base, which the scheduler fits to workers."""
        return self._estimate(
            dims,
            validation=bool(self.validation_every),
            offload=self.offloads_activations(dims.transformer),
        )

    def offloads_activations(self, transformer: TransformerDims) -> bool:
        """Whether the run keeps its checkpointed block inputs in host memory: as
        ``offload_activations`` says, or under "auto" where training would otherwise plan above
        ``OFFLOAD_ABOVE``. It needs only the transformer (validation's VAE is left out of the
        rule), so the trainer, which knows no more of its base, decides as the plan does."""
        if self.offload_activations != "auto":
            return self.offload_activations == "on"
        if not self.gradient_checkpointing:
            return False
        alone = BaseDims(transformer=transformer, text_encoder=None, vae_params=0, vae_base_dim=0)
        return self._estimate(alone, validation=False, offload=False).training > OFFLOAD_ABOVE

    def _estimate(self, dims: BaseDims, *, validation: bool, offload: bool) -> MemoryEstimate:
        return estimate_peak_memory(
            dims,
            height=self.height,
            width=self.width,
            frames=self.frames,
            rank=self.lora.rank,
            quantization=self.quantization,
            batch_size=self.batch_size,
            gradient_checkpointing=self.gradient_checkpointing,
            eight_bit_optimizer=self.optimizer == "adamw8bit",
            validation=validation,
            offload_block_inputs=offload,
        )

    @classmethod
    def from_record(cls, record: dict[str, Any], **changes: Any) -> TrainConfig:
        """The inverse of ``to_record``: missing fields take their defaults, unknown ones are refused."""
        fields = {**record, **changes}
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TrainingConfigError(f"unknown settings: {', '.join(unknown)}")
        lora = dict(fields.pop("lora", None) or {})
        if lora.get("targets") is not None:
            lora["targets"] = tuple(lora["targets"])
        unknown_lora = sorted(set(lora) - {f.name for f in dataclasses.fields(LoraSettings)})
        if unknown_lora:
            raise TrainingConfigError(f"unknown LoRA settings: {', '.join(unknown_lora)}")
        if "validation_prompts" in fields:
            fields["validation_prompts"] = tuple(fields["validation_prompts"])
        if "quantization" in fields:
            try:
                fields["quantization"] = Quantization(fields["quantization"])
            except ValueError:
                raise TrainingConfigError(f"unknown quantization {fields['quantization']!r}") from None
        return cls(lora=LoraSettings(**lora), **fields)

    def to_record(self) -> dict[str, Any]:
        """Plain JSON: what a fine-tune job stores and an exported adapter's record holds."""
        record = dataclasses.asdict(self)
        record["quantization"] = str(self.quantization)
        record["validation_prompts"] = list(self.validation_prompts)
        if self.lora.targets is not None:
            record["lora"]["targets"] = list(self.lora.targets)
        return record
