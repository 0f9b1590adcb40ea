"""Named starting points for a fine-tune, resolved into the ``TrainConfig`` the worker will run.

Resolution is the only rule that lives here: a preset's settings, replaced by those the
request gives, and a preset's warm-up shortened to fit a short run. Every other rule is the
training configuration's (``core.training``), checked when the config is built and against
the base, so a request the worker could not run is refused (422) before a job exists.
"""

from __future__ import annotations

from typing import Any

from core.bases.catalogue import BaseEntry
from core.bases.quantization import Quantization
from core.training import LoraSettings, TrainConfig, TrainingConfigError
from service.jobs.schemas import Hyperparameters, Preset

# A preset trains at the base's own picture size (``BaseEntry.generation``) unless the
# request names one: 832x480 on Wan 2.1, 64x64 on the tiny base.
_COMMON: dict[str, Any] = {
    "batch_size": 1,
    "quantization": Quantization.NF4,
    "lr_scheduler": "constant_with_warmup",
    "lr_warmup_steps": 50,
    "seed": 0,
    "checkpoint_every": 250,
    "validation_every": 0,
    "validation_prompts": [],
}
PRESETS: dict[Preset, dict[str, Any]] = {
    Preset.QUICK: {**_COMMON, "steps": 500, "learning_rate": 2e-4, "rank": 16, "alpha": 16.0, "frames": 33},
    Preset.STANDARD: {
        **_COMMON,
        "steps": 1500,
        "learning_rate": 1e-4,
        "rank": 32,
        "alpha": 32.0,
        "frames": 49,
    },
    Preset.THOROUGH: {
        **_COMMON,
        "steps": 3000,
        "learning_rate": 5e-5,
        "rank": 64,
        "alpha": 64.0,
        "frames": 81,
    },
}


def resolve(
    preset: Preset, overrides: Hyperparameters, trigger_word: str | None, base: BaseEntry
) -> TrainConfig:
    """The run a request asks for on ``base``, validated as the worker will load it.

    Raises ``TrainingConfigError`` (422) naming every rule the request breaks.
    """
    given = overrides.model_dump(exclude_none=True)
    size = {"height": base.generation.height, "width": base.generation.width}
    flat = {**PRESETS[preset], **size, **given}
    if flat["lr_warmup_steps"] >= flat["steps"] and "lr_warmup_steps" not in given:
        # A short run keeps the preset's proportion of warm-up rather than failing.
        flat["lr_warmup_steps"] = flat["steps"] // 10
    if flat["validation_every"] and not flat["validation_prompts"]:
        raise TrainingConfigError("validation_every needs at least one validation prompt.")
    lora = LoraSettings(rank=flat.pop("rank"), alpha=flat.pop("alpha"))
    flat["validation_prompts"] = tuple(flat["validation_prompts"])
    try:
        config = TrainConfig(**flat, lora=lora, trigger_word=trigger_word)
        config.check_base(base.dims)
    except TrainingConfigError as exc:
        raise TrainingConfigError(f"This fine-tune cannot run on base {base.id!r}: {exc}.") from None
    return config


def job_record(config: TrainConfig) -> dict[str, Any]:
    """What the job row stores: the whole record, so the worker runs exactly what was checked.

    ``device`` is where a run happens, which the worker decides, not part of what runs.
    """
    record = config.to_record()
    del record["device"]
    return record
