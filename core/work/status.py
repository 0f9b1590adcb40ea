"""The one status every kind of queued work moves through."""

from __future__ import annotations

import enum


class WorkStatus(enum.StrEnum):
    """The life of any queued work: fine-tunes and generations alike."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (WorkStatus.SUCCEEDED, WorkStatus.FAILED, WorkStatus.CANCELLED)
