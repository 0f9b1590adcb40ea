from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import ServerSentEvent, Stream
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bases.catalogue import Catalogue
from core.settings import Settings
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest, page_body
from service.downloads import RANGE_RESPONSES, RangeHeader, object_response
from service.events.log import resume_after
from service.events.watch import EventWatch
from service.jobs import service
from service.jobs.events import JOB_EVENTS
from service.jobs.schemas import BaseOut, FineTuneCreate, FineTuneOut, JobEventOut, SampleOut
from service.openapi import QUOTA_REFUSED
from service.params import Index, sequence_after
from service.schemas import Page

_JOB = "/{job_id:uuid}"


class FineTuneController(Controller):
    path = "/v1/fine-tunes"
    tags = ["fine-tunes"]

    @post(
        operation_id="createFineTune",
        opt=access(Access.MEMBER),
        responses={402: QUOTA_REFUSED},
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[FineTuneCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        catalogue: NamedDependency[Catalogue],
        settings: NamedDependency[Settings],
    ) -> FineTuneOut:
        job = await service.create_job(
            db_session,
            principal,
            data,
            catalogue=catalogue,
            settings=settings.jobs,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        return await service.job_out(db_session, job)

    @get(operation_id="listFineTunes", opt=access(Access.MEMBER))
    async def list_jobs(
        self,
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        status: Annotated[WorkStatus | None, Parameter(description="Only jobs in this state.")] = None,
    ) -> Page[FineTuneOut]:
        jobs, total = await service.list_jobs(db_session, page, status)
        items = await service.jobs_out(db_session, jobs)
        return Page[FineTuneOut].model_validate(page_body(items, total, page))

    @get(_JOB, operation_id="getFineTune", opt=access(Access.MEMBER))
    async def get_job(self, job_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> FineTuneOut:
        return await service.job_out(db_session, await service.get_job(db_session, job_id))

    @post(f"{_JOB}/cancel", operation_id="cancelFineTune", opt=access(Access.MEMBER), status_code=200)
    async def cancel(self, job_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> FineTuneOut:
        return await service.job_out(db_session, await service.cancel_job(db_session, job_id))

    @post(f"{_JOB}/resume", operation_id="resumeFineTune", opt=access(Access.MEMBER), status_code=200)
    async def resume(self, job_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> FineTuneOut:
        return await service.job_out(db_session, await service.resume_job(db_session, job_id))

    @get(f"{_JOB}/samples", operation_id="listFineTuneSamples", opt=access(Access.MEMBER))
    async def samples(
        self,
        job_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> list[SampleOut]:
        """Validation clips rendered during training (``sample`` events announce each step's)."""
        return await service.list_samples(db_session, storage, job_id)

    @get(
        f"{_JOB}/samples/{{step:int}}/{{index:int}}",
        operation_id="downloadFineTuneSample",
        opt=access(Access.MEMBER),
        media_type="video/mp4",
        responses=RANGE_RESPONSES,
    )
    async def sample(
        self,
        job_id: FromPath[UUID],
        step: Index,
        index: Index,
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        range_header: RangeHeader = None,
    ) -> Stream:
        info = await service.sample_object(db_session, storage, job_id, step, index)
        return object_response(
            storage, info.key, size=info.size, media_type="video/mp4", range_header=range_header
        )

    @get(f"{_JOB}/events", operation_id="listFineTuneEvents", opt=access(Access.MEMBER))
    async def events(
        self,
        job_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        after: Annotated[int, sequence_after("Only events after this sequence number.")] = 0,
    ) -> Page[JobEventOut]:
        items, total = await service.list_events(db_session, job_id, after, page)
        return Page[JobEventOut].model_validate(page_body(items, total, page))

    @get(f"{_JOB}/events/stream", operation_id="streamFineTuneEvents", opt=access(Access.MEMBER))
    async def stream(
        self,
        request: Request[Any, Any, Any],
        job_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        sessions: NamedDependency[async_sessionmaker[AsyncSession]],
        watch: NamedDependency[EventWatch],
        after: Annotated[int, sequence_after("Start after this sequence number.")] = 0,
    ) -> ServerSentEvent:
        """Live events; a reconnecting client sends ``Last-Event-ID`` and misses nothing."""
        job = await service.get_job(db_session, job_id)
        after = resume_after(after, request.headers.get("last-event-id"))
        return ServerSentEvent(JOB_EVENTS.follow(sessions, watch, job.tenant_id, job.id, after))


@get("/v1/bases", operation_id="listBases", opt=access(Access.MEMBER), tags=["fine-tunes"])
async def list_bases(catalogue: NamedDependency[Catalogue]) -> list[BaseOut]:
    """The bases this deployment can fine-tune."""
    return [BaseOut(id=entry.id, family=entry.family, parameters=entry.parameters) for entry in catalogue]
