"""A run's hyperparameters: ``core.training``'s ``TrainConfig``, shared with the API and the worker,
plus the checks that need the trainer's model specification."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.training import (
    LR_SCHEDULERS,
    OFFLOAD_ACTIVATIONS,
    OPTIMIZERS,
    TIMESTEP_SAMPLING,
    LoraSettings,
    TrainConfig,
)

if TYPE_CHECKING:
    from trainer.models.registry import ModelSpecification

__all__ = [
    "LR_SCHEDULERS",
    "OFFLOAD_ACTIVATIONS",
    "OPTIMIZERS",
    "TIMESTEP_SAMPLING",
    "LoraSettings",
    "TrainConfig",
    "check_specification",
]


def check_specification(config: TrainConfig, spec: ModelSpecification) -> None:
    """The base's constraints as the loaded specification states them: frame count and size,
    and the positions its transformer places. Reads configs only; builds no model."""
    config.check_geometry(
        temporal_factor=spec.temporal_factor,
        spatial_multiple=spec.spatial_multiple,
        transformer=spec.transformer_dims(),
    )
