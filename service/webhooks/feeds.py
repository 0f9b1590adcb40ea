"""The event logs webhooks deliver from, and the namespaced names subscribers use.

Each kind of work keeps its own event log with short type names (``succeeded``), which its
API stream uses; a webhook event names its kind too (``fine_tune.succeeded``,
``generation.succeeded``), since one endpoint hears about every kind. The tenant's own
events (quota notices, ``quota.warning``) are a feed too. Adding a kind of event to
webhooks is one more ``Feed`` here.
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
from service.quotas.models import QuotaNotice
from service.quotas.notices import LEVELS

# A row of a feed's table: ``id``, ``tenant_id``, ``type``, ``data`` and ``created_at``.
FeedEvent = EventRecord | QuotaNotice


@dataclass(frozen=True)
class Feed:
    kind: str  # the namespace of its webhook event types
    event: type[FeedEvent]
    # The work an event log numbers its events for (``job_id``), also the payload's field
    # naming it; None for the tenant's own events, which are not numbered.
    source_key: InstrumentedAttribute[UUID] | None
    types: tuple[str, ...]  # the log's own (short) type names

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(f"{self.kind}.{name}" for name in self.types)

    def own_types(self, subscribed: Collection[str]) -> list[str]:
        """The log's names among an endpoint's subscriptions (the ones in this namespace)."""
        prefix = f"{self.kind}."
        return [name.removeprefix(prefix) for name in subscribed if name.startswith(prefix)]

    def payload(self, event: FeedEvent) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(event.id),
            "type": f"{self.kind}.{event.type}",
            "created_at": event.created_at.isoformat(),
            "tenant_id": str(event.tenant_id),
        }
        if self.source_key is not None and isinstance(event, EventRecord):
            body[self.source_key.key] = str(getattr(event, self.source_key.key))
            body["seq"] = event.seq
        return {**body, "data": event.data}


FEEDS = (
    Feed("fine_tune", JobEvent, JobEvent.job_id, get_args(JobEventType)),
    Feed("generation", GenerationEvent, GenerationEvent.generation_id, get_args(GenerationEventType)),
    Feed("quota", QuotaNotice, None, tuple(kind for _, kind in LEVELS)),
)
EVENT_TYPES: tuple[str, ...] = tuple(name for feed in FEEDS for name in feed.event_types)
# Progress arrives every step or two; it is opt-in so an endpoint is not flooded by default.
DEFAULT_EVENT_TYPES: tuple[str, ...] = tuple(name for name in EVENT_TYPES if not name.endswith(".progress"))
