from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter, PathParameter
from litestar.response import Redirect, ServerSentEvent
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
from service.generations import service
from service.generations.events import GENERATION_EVENTS
from service.generations.schemas import GenerationCreate, GenerationEventOut, GenerationOut
from service.openapi import QUOTA_REFUSED, RATE_LIMITED
from service.params import sequence_after
from service.schemas import Page

_GENERATION = "/{generation_id:uuid}"


class GenerationController(Controller):
    path = "/v1/generations"
    tags = ["generations"]

    @post(
        operation_id="createGeneration",
        opt=access(Access.MEMBER),
        responses={402: QUOTA_REFUSED, 429: RATE_LIMITED},
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[GenerationCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        catalogue: NamedDependency[Catalogue],
        settings: NamedDependency[Settings],
    ) -> GenerationOut:
        """Queue a video. A request over the platform's limits or the model's guardrails is refused
        with the reason."""
        generation = await service.create_generation(
            db_session,
            principal,
            data,
            catalogue=catalogue,
            settings=settings.generations,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        return await service.generation_out(db_session, generation)

    @get(operation_id="listGenerations", opt=access(Access.MEMBER))
    async def list_generations(
        self,
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        status: Annotated[WorkStatus | None, Parameter(description="Only generations in this state.")] = None,
        model_id: Annotated[UUID | None, Parameter(description="Only generations of this model.")] = None,
    ) -> Page[GenerationOut]:
        generations, total = await service.list_generations(db_session, page, status, model_id)
        items = await service.generations_out(db_session, generations)
        return Page[GenerationOut].model_validate(page_body(items, total, page))

    @get(_GENERATION, operation_id="getGeneration", opt=access(Access.MEMBER))
    async def get_generation(
        self, generation_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> GenerationOut:
        generation = await service.get_generation(db_session, generation_id)
        return await service.generation_out(db_session, generation)

    @post(
        f"{_GENERATION}/cancel", operation_id="cancelGeneration", opt=access(Access.MEMBER), status_code=200
    )
    async def cancel(
        self, generation_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> GenerationOut:
        """A queued generation ends at once; a running one is dropped by its worker within a heartbeat."""
        generation = await service.cancel_generation(db_session, generation_id)
        return await service.generation_out(db_session, generation)

    @get(f"{_GENERATION}/events", operation_id="listGenerationEvents", opt=access(Access.MEMBER))
    async def events(
        self,
        generation_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        after: Annotated[int, sequence_after("Only events after this sequence number.")] = 0,
    ) -> Page[GenerationEventOut]:
        items, total = await service.list_events(db_session, generation_id, after, page)
        return Page[GenerationEventOut].model_validate(page_body(items, total, page))

    @get(f"{_GENERATION}/events/stream", operation_id="streamGenerationEvents", opt=access(Access.MEMBER))
    async def stream(
        self,
        request: Request[Any, Any, Any],
        generation_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        sessions: NamedDependency[async_sessionmaker[AsyncSession]],
        watch: NamedDependency[EventWatch],
        after: Annotated[int, sequence_after("Start after this sequence number.")] = 0,
    ) -> ServerSentEvent:
        """Live events; a reconnecting client sends ``Last-Event-ID`` and misses nothing."""
        generation = await service.get_generation(db_session, generation_id)
        after = resume_after(after, request.headers.get("last-event-id"))
        return ServerSentEvent(
            GENERATION_EVENTS.follow(sessions, watch, generation.tenant_id, generation.id, after)
        )

    @get(
        f"{_GENERATION}/outputs/{{name:str}}",
        operation_id="downloadGenerationOutput",
        opt=access(Access.MEMBER),
        responses={
            307: ResponseSpec(None, description="A signed URL to download from (S3 storage)."),
            **RANGE_RESPONSES,
        },
    )
    async def output(
        self,
        generation_id: FromPath[UUID],
        name: Annotated[str, PathParameter(description="video.mp4, poster.jpg or preview.webp.")],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        settings: NamedDependency[Settings],
        range_header: RangeHeader = None,
    ) -> Response[Any]:
        """A succeeded generation's video, poster frame or animated preview (ranges let a video seek)."""
        expires = timedelta(seconds=settings.generations.signed_url_seconds)
        download = await service.output_download(db_session, storage, generation_id, name, expires)
        if download.url is not None:
            return Redirect(download.url, status_code=307)
        return object_response(
            storage,
            download.key,
            size=download.size,
            media_type=download.media_type,
            range_header=range_header,
            headers={"content-disposition": download.disposition},
        )
