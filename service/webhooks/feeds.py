"""The event logs webhooks deliver from, and the namespaced names subscribers use.

Each kind of work keeps its own event log with short type names (``succeeded``), which its
API stream uses; a webhook event names its kind too (``fine_tune.succeeded``,
``generation.succeeded``), since one endpoint hears about every kind. Adding a kind of
work to webhooks is one more ``Feed`` here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, get_args
from uuid import UUID

from sqlalchemy.orm import InstrumentedAttribute

from service.events.models import EventRecord
from service.generations.models import GenerationEvent, GenerationEventType
from service.jobs.models import JobEvent, JobEventType


@dataclass(frozen=True)
class Feed:
    kind: str  # the namespace of its webhook event types
    event: type[EventRecord]
    source_key: InstrumentedAttribute[UUID]  # also the payload's field naming the work
    types: tuple[str, ...]  # the log's own (short) type names

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(f"{self.kind}.{name}" for name in self.types)

    def own_types(self, subscribed: Collection[str]) -> list[str]:
        """The log's names among an endpoint's subscriptions (the ones in this namespace)."""
        prefix = f"{self.kind}."
        return [name.removeprefix(prefix) for name in subscribed if name.startswith(prefix)]

    def payload(self, event: EventRecord) -> dict[str, Any]:
        return {
            "id": str(event.id),
            "type": f"{self.kind}.{event.type}",
            "created_at": event.created_at.isoformat(),
            "tenant_id": str(event.tenant_id),
            self.source_key.key: str(getattr(event, self.source_key.key)),
            "seq": event.seq,
            "data": event.data,
        }


FEEDS = (
    Feed("fine_tune", JobEvent, JobEvent.job_id, get_args(JobEventType)),
    Feed("generation", GenerationEvent, GenerationEvent.generation_id, get_args(GenerationEventType)),
)
EVENT_TYPES: tuple[str, ...] = tuple(name for feed in FEEDS for name in feed.event_types)
# Progress arrives every step or two; it is opt-in so an endpoint is not flooded by default.
DEFAULT_EVENT_TYPES: tuple[str, ...] = tuple(name for name in EVENT_TYPES if not name.endswith(".progress"))
