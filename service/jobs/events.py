"""A fine-tune's numbered events: the API and the worker append them, the API pages and streams them."""

from __future__ import annotations

from service.events.log import EventLog
from service.jobs.models import FineTuneJob, JobEvent, JobEventType
from service.jobs.schemas import JobEventOut

JOB_EVENTS: EventLog[FineTuneJob, JobEvent, JobEventType] = EventLog(
    FineTuneJob, JobEvent, JobEvent.job_id, JobEventOut
)
