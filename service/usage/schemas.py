from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import Field

from service.schemas import Output
from service.usage.models import Charge

# The rules every per-period figure follows, stated once for the OpenAPI descriptions.
ATTRIBUTION = (
    "Each fine-tune and generation counts on one UTC day: the day it finished (succeeded, failed or "
    "cancelled), or today while it has started and not yet finished."
)
CHARGED = "GPU seconds are the usage ledger's: each charge counts on the UTC day the work was done."


class FineTuneUsage(Output):
    count: int = Field(description=f"Fine-tunes attributed to the period. {ATTRIBUTION}")
    succeeded: int = Field(description="Those of them that succeeded.")
    gpu_seconds: float = Field(
        description=(
            "GPU seconds charged to fine-tunes in the period: measured device time at each heartbeat, "
            f"less credits for fine-tunes that failed by the platform's fault. {CHARGED}"
        )
    )


class GenerationUsage(Output):
    count: int = Field(description=f"Generations attributed to the period. {ATTRIBUTION}")
    succeeded: int = Field(description="Those of them that succeeded.")
    gpu_seconds: float = Field(
        description=(
            "GPU seconds charged to generations in the period: each an equal share of its batch's wall "
            f"time, when it succeeds or is cancelled after rendering. {CHARGED}"
        )
    )
    output_bytes: int = Field(description="Outputs (video, poster, preview) charged in the period.")


class StorageUsage(Output):
    """What the tenant stores now, whatever the period."""

    footage_bytes: int = Field(description="Uploaded footage (assets), as uploaded.")
    adapter_bytes: int = Field(description="Trained adapters (model versions).")
    output_bytes: int = Field(description="Outputs of succeeded generations.")
    total_bytes: int = Field(description="The three together.")


class UsageDay(Output):
    date: dt.date = Field(description="A UTC day.")
    fine_tune_gpu_seconds: float
    generation_gpu_seconds: float
    generations: int = Field(description="Generations attributed to the day.")


class UsageOut(Output):
    """A tenant's usage over a period of UTC days (both ends included) and its storage now."""

    since: dt.date
    until: dt.date
    fine_tunes: FineTuneUsage
    generations: GenerationUsage
    storage: StorageUsage
    days: list[UsageDay] = Field(
        description=f"One entry per day of the period with work attributed to it, oldest first. {ATTRIBUTION}"
    )


class LedgerEntryOut(Output):
    """One charge (positive) or credit (negative) on the usage ledger."""

    id: UUID = Field(description="Unique; billing sends it to Stripe as the meter event's identifier.")
    charge: Charge = Field(description="What is charged; the unit is in the name.")
    quantity: float
    work_id: UUID | None = Field(description="The fine-tune or generation charged.")
    attempt: int | None
    occurred_at: dt.datetime = Field(description="When the work was done: the day the charge counts on.")
