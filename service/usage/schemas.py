from __future__ import annotations

import datetime as dt

from pydantic import Field

from service.schemas import Output

# The rule every per-period figure follows, stated once for the OpenAPI descriptions.
ATTRIBUTION = (
    "Each fine-tune and generation counts on one UTC day: the day it finished (succeeded, failed or "
    "cancelled), or today while it has started and not yet finished, with its GPU seconds so far."
)


class FineTuneUsage(Output):
    count: int = Field(description=f"Fine-tunes attributed to the period. {ATTRIBUTION}")
    succeeded: int = Field(description="Those of them that succeeded.")
    gpu_seconds: float = Field(
        description=(
            "Their GPU seconds: measured device time charged at each heartbeat, across every attempt, "
            "less the seconds waived when a fine-tune failed by the platform's fault."
        )
    )


class GenerationUsage(Output):
    count: int = Field(description=f"Generations attributed to the period. {ATTRIBUTION}")
    succeeded: int = Field(description="Those of them that succeeded.")
    gpu_seconds: float = Field(
        description="Their GPU seconds: each generation is charged an equal share of its batch's wall time."
    )
    output_bytes: int = Field(description="The size of the outputs (video, poster, preview) they wrote.")


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
