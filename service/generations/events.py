"""A generation's numbered events: the API and the worker append them, the API pages and streams them."""

from __future__ import annotations

from service.events.log import EventLog
from service.generations.models import Generation, GenerationEvent, GenerationEventType
from service.generations.schemas import GenerationEventOut

GENERATION_EVENTS: EventLog[Generation, GenerationEvent, GenerationEventType] = EventLog(
    Generation, GenerationEvent, GenerationEvent.generation_id, GenerationEventOut
)
