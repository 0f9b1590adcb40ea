"""Named starting points for a fine-tune, resolved into the trainer's configuration record.

A preset names every setting the memory estimate depends on, so the API can plan a job
without the trainer's defaults (which live behind torch).
"""

from __future__ import annotations

from typing import Any

from core.bases.architecture import geometry_problem
from core.bases.catalogue import BaseEntry
from core.bases.memory import estimate_peak_memory
from core.bases.quantization import Quantization
from core.errors import Invalid
from service.jobs.schemas import Hyperparameters, Preset

_COMMON: dict[str, Any] = {
    "height": 480,
    "width": 832,
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


def resolve(preset: Preset, overrides: Hyperparameters, trigger_word: str | None) -> dict[str, Any]:
    """The trainer's configuration record (``TrainConfig.to_record`` shape) for a request."""
    given = overrides.model_dump(exclude_none=True)
    flat = {**PRESETS[preset], **given}
    if problem := geometry_problem(frames=flat["frames"], height=flat["height"], width=flat["width"]):
        raise Invalid(f"Hyperparameters are not usable: {problem}.")
    if flat["lr_warmup_steps"] >= flat["steps"]:
        if "lr_warmup_steps" in given:
            raise Invalid("lr_warmup_steps must be fewer than steps.")
        # A short run keeps the preset's proportion of warm-up rather than failing.
        flat["lr_warmup_steps"] = flat["steps"] // 10
    if flat["validation_every"] and not flat["validation_prompts"]:
        raise Invalid("validation_every needs at least one validation prompt.")
    lora = {"rank": flat.pop("rank"), "alpha": flat.pop("alpha")}
    flat["quantization"] = str(flat["quantization"])
    return {**flat, "lora": lora, "trigger_word": trigger_word}


def estimated_bytes(base: BaseEntry, config: dict[str, Any]) -> int:
    return estimate_peak_memory(
        base.dims,
        height=config["height"],
        width=config["width"],
        frames=config["frames"],
        rank=config["lora"]["rank"],
        quantization=Quantization(config["quantization"]),
        batch_size=config["batch_size"],
        validation=bool(config["validation_every"]),
    ).total
