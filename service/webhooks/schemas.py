from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field

from service.schemas import Input, Output
from service.webhooks.feeds import EVENT_TYPES
from service.webhooks.models import DeliveryStatus
from service.webhooks.urls import MAX_URL_LENGTH

Url = Annotated[str, Field(min_length=1, max_length=MAX_URL_LENGTH)]
Description = Annotated[str, Field(max_length=500)]
# One of ``EVENT_TYPES``: the list is built from the event logs, so it is checked, not typed.
EventType = Annotated[str, Field(json_schema_extra={"enum": list(EVENT_TYPES)})]


def _known_and_distinct(types: list[str]) -> list[str]:
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event type {unknown[0]!r}; the types are {', '.join(EVENT_TYPES)}")
    return sorted(set(types), key=EVENT_TYPES.index)


EventTypes = Annotated[
    list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES)), AfterValidator(_known_and_distinct)
]


class WebhookCreate(Input):
    url: Url
    description: Description = ""
    # Omitted: every type except the ``*.progress`` ones.
    event_types: EventTypes | None = None
    enabled: bool = True


class WebhookUpdate(Input):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = None


class WebhookOut(Output):
    id: UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    secret_version: int
    secret_rotated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    """Shown on creation and rotation only: the secret that verifies ``Rushes-Signature``."""

    secret: str


class AttemptOut(Output):
    number: int
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


class DeliveryOut(Output):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    last_duration_ms: int | None
    delivered_at: datetime | None
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]
    created_at: datetime
