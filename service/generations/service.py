"""Generations as tenants see them: create, list, cancel, events and outputs.

A request is resolved in full when it is made (the model's version, the base's defaults, a
seed) and checked against the base's geometry, the platform's limits and the model's
guardrails, so a worker renders exactly what the row says. The worker side (batches,
heartbeats, outcomes) is ``queue.py``; both write events through ``GENERATION_EVENTS``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.bases.architecture import geometry_problem, positions_problem
from core.bases.catalogue import Catalogue
from core.errors import Conflict, Invalid, NotFound
from core.settings import GenerationSettings
from core.storage import ObjectStorage, TenantKeys, content_disposition
from core.storage.keys import OUTPUT_MEDIA_TYPES
from core.work.status import WorkStatus
from service.auth.principal import Principal
from service.db.pagination import PageRequest, fetch_page
from service.events import lifecycle
from service.generations.events import GENERATION_EVENTS
from service.generations.guardrails import Shape, check_guardrails, check_platform
from service.generations.models import Generation, GenerationEvent
from service.generations.schemas import GenerationCreate, GenerationOut, output_paths
from service.models.models import Model, ModelVersion
from service.models.schemas import Guardrails
from service.models.service import get_model, get_version
from service.quotas.admission import Ask, admit

# Seeds are drawn from the range a request may name (0 to 2**31 - 1).
_SEEDS = 2**31


async def create_generation(
    session: AsyncSession,
    principal: Principal,
    body: GenerationCreate,
    *,
    catalogue: Catalogue,
    settings: GenerationSettings,
    idempotency_key: str | None,
) -> Generation:
    model = await get_model(session, body.model_id)
    version = await _version(session, model, body.version)
    base = catalogue.get(version.base_id)
    defaults = base.generation
    shape = Shape(
        width=defaults.width if body.width is None else body.width,
        height=defaults.height if body.height is None else body.height,
        frames=defaults.frames if body.frames is None else body.frames,
        steps=defaults.steps if body.steps is None else body.steps,
    )
    if problem := geometry_problem(frames=shape.frames, height=shape.height, width=shape.width):
        raise Invalid(f"This request cannot be rendered: {problem}.")
    check_platform(shape, settings)
    transformer = base.dims.transformer
    if problem := positions_problem(
        frames=shape.frames, height=shape.height, width=shape.width, transformer=transformer
    ):
        raise Invalid(f"This request cannot be rendered: {problem}.")
    check_guardrails(shape, body.prompt, Guardrails.model_validate(model.guardrails))
    await admit(session, principal.tenant_id, Ask(gpu_work=True, generation=True))
    generation = Generation(
        model_id=model.id,
        model_version_id=version.id,
        base_id=base.id,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        width=shape.width,
        height=shape.height,
        frames=shape.frames,
        steps=shape.steps,
        guidance=defaults.guidance if body.guidance is None else body.guidance,
        seed=secrets.randbelow(_SEEDS) if body.seed is None else body.seed,
        adapter_strength=body.adapter_strength,
        status=WorkStatus.QUEUED,
        idempotency_key=idempotency_key,
        max_attempts=settings.max_attempts,
        queued_at=datetime.now(UTC),
        created_by=principal.user_id,
        event_count=0,
    )
    session.add(generation)
    await session.flush()
    await GENERATION_EVENTS.record(session, generation, "queued", {"model_version": version.number})
    await session.commit()
    return generation


async def _version(session: AsyncSession, model: Model, number: int | None) -> ModelVersion:
    if number is not None:
        return await get_version(session, model.id, number)
    latest = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.number.desc())
    )
    if latest is None:
        raise Conflict(
            f"Model {model.name!r} has no versions yet; it can render once a fine-tune of it succeeds."
        )
    return latest


async def get_generation(session: AsyncSession, generation_id: UUID) -> Generation:
    generation = await session.get(Generation, generation_id)
    if generation is None:
        raise NotFound("No such generation.")
    return generation


async def list_generations(
    session: AsyncSession, page: PageRequest, status: WorkStatus | None, model_id: UUID | None
) -> tuple[list[Generation], int]:
    stmt = select(Generation).order_by(Generation.created_at.desc())
    if status is not None:
        stmt = stmt.where(Generation.status == status)
    if model_id is not None:
        stmt = stmt.where(Generation.model_id == model_id)
    rows, total = await fetch_page(session, stmt, page)
    return list(rows), total


async def cancel_generation(session: AsyncSession, generation_id: UUID) -> Generation:
    """A queued generation ends now; a running one is dropped by its worker at its next heartbeat."""
    return await lifecycle.cancel(
        session, GENERATION_EVENTS, lambda: get_generation(session, generation_id), "generation"
    )


async def list_events(
    session: AsyncSession, generation_id: UUID, after: int, page: PageRequest
) -> tuple[list[GenerationEvent], int]:
    await get_generation(session, generation_id)
    return await GENERATION_EVENTS.page(session, generation_id, after, page)


async def generations_out(session: AsyncSession, generations: list[Generation]) -> list[GenerationOut]:
    """Generations as the API shows them, with their model version numbers (one query)."""
    version_ids = {g.model_version_id for g in generations if g.model_version_id is not None}
    numbers: dict[UUID, int] = {}
    if version_ids:
        rows = await session.execute(
            select(ModelVersion.id, ModelVersion.number).where(ModelVersion.id.in_(version_ids))
        )
        numbers = dict(rows.tuples().all())
    fields = [name for name in GenerationOut.model_fields if name not in ("version", "outputs")]
    return [
        GenerationOut.model_validate(
            {
                **{name: getattr(generation, name) for name in fields},
                "version": numbers.get(generation.model_version_id) if generation.model_version_id else None,
                "outputs": output_paths(generation.id) if generation.status is WorkStatus.SUCCEEDED else None,
            }
        )
        for generation in generations
    ]


async def generation_out(session: AsyncSession, generation: Generation) -> GenerationOut:
    (out,) = await generations_out(session, [generation])
    return out


@dataclass(frozen=True, slots=True)
class Download:
    """One output ready to send: a signed URL where the storage gives one, else its key to stream."""

    key: str
    media_type: str
    size: int
    disposition: str
    url: str | None


async def output_download(
    session: AsyncSession, storage: ObjectStorage, generation_id: UUID, name: str, expires: timedelta
) -> Download:
    """One output of a succeeded generation, checked to exist before any of the answer goes out."""
    generation = await get_generation(session, generation_id)
    if name not in OUTPUT_MEDIA_TYPES or generation.status is not WorkStatus.SUCCEEDED:
        raise NotFound("No such output.")
    key = TenantKeys(generation.tenant_id).output(generation.id, name)
    info = await anyio.to_thread.run_sync(storage.stat, key)
    if info is None:
        raise NotFound("No such output.")
    # Inline: a page's <video> and <img> show outputs, and opening one plays it in the browser.
    disposition = content_disposition(f"generation-{generation.id}-{name}", inline=True)
    url = await anyio.to_thread.run_sync(storage.presigned_get, key, expires, disposition)
    return Download(key, OUTPUT_MEDIA_TYPES[name], info.size, disposition, url)
