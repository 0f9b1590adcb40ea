"""Errors the trainer raises for things its caller can fix."""

from __future__ import annotations

from core.training import TrainingInputError

# Bad user input: a missing folder, an undecodable clip, an impossible setting. The same class
# as ``core.training``'s, so a configuration refused by the API (422) and one refused here are
# one error. The CLI prints these as one line and exits non-zero; the worker records the
# message as the reason the job failed. Anything else is a bug and keeps its traceback.
TrainerInputError = TrainingInputError

__all__ = ["TrainerInputError"]
