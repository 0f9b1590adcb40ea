"""Models and their versions. Versions are made only by a fine-tune that succeeds."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, NotFound
from core.storage import ObjectStorage, TenantKeys
from core.work.status import WorkStatus
from service.db.pagination import PageRequest, fetch_page
from service.generations.models import Generation
from service.jobs.models import FineTuneJob
from service.models import card
from service.models.models import Model, ModelVersion
from service.models.schemas import Guardrails, ModelUpdate

_ACTIVE = (WorkStatus.QUEUED, WorkStatus.RUNNING)


async def ensure_name_free(session: AsyncSession, name: str) -> None:
    if await session.scalar(select(Model.id).where(Model.name == name)):
        raise Conflict(f"A model named {name!r} already exists.")


async def get_model(session: AsyncSession, model_id: UUID) -> Model:
    model = await session.get(Model, model_id)
    if model is None:
        raise NotFound("No such model.")
    return model


async def list_models(session: AsyncSession, page: PageRequest) -> tuple[list[Model], int]:
    rows, total = await fetch_page(session, select(Model).order_by(Model.created_at.desc()), page)
    return list(rows), total


async def update_model(session: AsyncSession, model_id: UUID, body: ModelUpdate) -> Model:
    model = await get_model(session, model_id)
    if body.name is not None and body.name != model.name:
        await ensure_name_free(session, body.name)
        model.name = body.name
    if body.description is not None:
        model.description = body.description
    await session.commit()
    return model


async def set_guardrails(session: AsyncSession, model_id: UUID, guardrails: Guardrails) -> Guardrails:
    """Replace a model's guardrails; they apply to generations requested from then on."""
    model = await get_model(session, model_id)
    model.guardrails = guardrails.model_dump()
    await session.commit()
    return guardrails


async def delete_model(session: AsyncSession, storage: ObjectStorage, model_id: UUID) -> None:
    """Delete a model, its versions and their adapters; refused while a job trains it or a
    generation waits to render with it. Finished generations and their videos stay."""
    model = await get_model(session, model_id)
    active = await session.scalar(
        select(FineTuneJob.id).where(FineTuneJob.model_id == model_id, FineTuneJob.status.in_(_ACTIVE))
    )
    if active is not None:
        raise Conflict("A fine-tune is still training this model; cancel it first.", job_id=str(active))
    rendering = await session.scalar(
        select(Generation.id).where(Generation.model_id == model_id, Generation.status.in_(_ACTIVE))
    )
    if rendering is not None:
        raise Conflict(
            "A generation is still waiting to render with this model; cancel it first.",
            generation_id=str(rendering),
        )
    version_ids = list(
        await session.scalars(select(ModelVersion.id).where(ModelVersion.model_id == model_id))
    )
    await session.delete(model)
    await session.commit()
    # Rows first: an adapter whose row is gone is unreachable, the reverse would be a broken model.
    keys = TenantKeys(model.tenant_id)
    for version_id in version_ids:
        await anyio.to_thread.run_sync(storage.delete_prefix, keys.adapter(version_id))


async def list_versions(
    session: AsyncSession, model_id: UUID, page: PageRequest
) -> tuple[list[ModelVersion], int]:
    await get_model(session, model_id)
    stmt = select(ModelVersion).where(ModelVersion.model_id == model_id).order_by(ModelVersion.number)
    rows, total = await fetch_page(session, stmt, page)
    return list(rows), total


async def get_version(session: AsyncSession, model_id: UUID, number: int) -> ModelVersion:
    version = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model_id, ModelVersion.number == number)
    )
    if version is None:
        raise NotFound("No such model version.")
    return version


async def add_version(
    session: AsyncSession,
    job: FineTuneJob,
    *,
    adapter_sha256: str,
    adapter_bytes: int,
    final_loss: float | None,
    look: dict[str, Any] | None = None,
) -> ModelVersion:
    """The version a succeeded job made, in the transaction that marks it succeeded."""
    if job.model_id is None:
        raise Conflict("The model this fine-tune was training has been deleted.")
    # The row lock numbers concurrent successes on one model one after another.
    model = await session.scalar(select(Model).where(Model.id == job.model_id).with_for_update())
    if model is None:
        raise Conflict("The model this fine-tune was training has been deleted.")
    model.version_count += 1
    version = ModelVersion(
        id=job.model_version_id,
        tenant_id=job.tenant_id,
        model_id=model.id,
        number=model.version_count,
        job_id=job.id,
        dataset_version_id=job.dataset_version_id,
        base_id=job.base_id,
        trigger_word=job.config.get("trigger_word"),
        config=job.config,
        adapter_sha256=adapter_sha256,
        adapter_bytes=adapter_bytes,
        steps=job.total_steps,
        final_loss=final_loss,
        look=look,
    )
    session.add(version)
    await session.flush()
    return version


async def write_card(
    session: AsyncSession, storage: ObjectStorage, version: ModelVersion, record: dict[str, Any]
) -> None:
    """Writes the version's model card beside its adapter (``service.models.card``)."""
    model = await session.get_one(Model, version.model_id)
    text = card.render(model, version, record).encode()
    key = TenantKeys(version.tenant_id).model_card(version.id)
    await anyio.to_thread.run_sync(storage.put_bytes, key, text, card.MEDIA_TYPE)


async def card_text(session: AsyncSession, storage: ObjectStorage, version: ModelVersion) -> bytes:
    """The card as written with the version; a version made before cards existed gets one
    rendered now from the same row and record, so every version has one to download."""
    keys = TenantKeys(version.tenant_id)
    if await anyio.to_thread.run_sync(storage.stat, keys.model_card(version.id)) is not None:
        return await anyio.to_thread.run_sync(storage.get_bytes, keys.model_card(version.id))
    record = json.loads(await anyio.to_thread.run_sync(storage.get_bytes, keys.training_record(version.id)))
    model = await session.get_one(Model, version.model_id)
    return card.render(model, version, record).encode()
