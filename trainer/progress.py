"""What the training loop tells its caller each step, and how the caller stops it.

The callback runs inside the loop on the training thread: the service uses it as the job's
heartbeat and to cancel. Returning ``Control.STOP`` (or raising ``StopTraining``) makes the
trainer write a checkpoint and return; any other exception propagates without one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class Control(enum.Enum):
    CONTINUE = "continue"
    STOP = "stop"


class StopTraining(Exception):
    """Raised from a progress callback to stop after a checkpoint, like returning ``Control.STOP``."""


@dataclass(frozen=True)
class StepReport:
    step: int  # steps done, 1-based
    total_steps: int
    loss: float
    learning_rate: float
    samples_per_second: float
    peak_memory_bytes: int
    peak_memory_kind: str  # "cuda_max_allocated" or "process_peak_rss"
    checkpoint_key: str | None  # set on steps that wrote a checkpoint
    validation_keys: tuple[str, ...]  # MP4s rendered this step


ProgressCallback = Callable[[StepReport], Control | None]
