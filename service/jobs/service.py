"""Fine-tune jobs as tenants see them: create, cancel, resume, and their events.

The worker side (leases, heartbeats, outcomes) is ``queue.py``; both write events through
``JOB_EVENTS`` so a job's events are numbered in one sequence.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.bases.catalogue import Catalogue
from core.errors import Conflict, Invalid, NotFound
from core.settings import JobSettings
from core.storage import ObjectInfo, ObjectStorage, TenantKeys
from core.work.status import WorkStatus
from service.auth.principal import Principal
from service.datasets.models import Dataset
from service.datasets.service import get_dataset, get_version, lock_version
from service.db.pagination import PageRequest, fetch_page
from service.events import lifecycle
from service.jobs import presets
from service.jobs.events import JOB_EVENTS
from service.jobs.models import FineTuneJob, JobEvent
from service.jobs.schemas import FineTuneCreate, FineTuneOut, SampleOut
from service.models.models import Model, ModelVersion
from service.models.service import ensure_name_free, get_model
from service.quotas.admission import Ask, admit, admit_new_model
from service.quotas.limits import Limits


async def create_job(
    session: AsyncSession,
    principal: Principal,
    body: FineTuneCreate,
    *,
    catalogue: Catalogue,
    settings: JobSettings,
    idempotency_key: str | None,
) -> FineTuneJob:
    dataset = await get_dataset(session, body.dataset_id)
    version = await get_version(session, body.dataset_id, body.dataset_version)
    if not version.items:
        raise Invalid("This dataset version holds no footage; add assets before training on it.")
    base = catalogue.get(body.base)
    config = presets.resolve(body.preset, body.hyperparameters, version.trigger_word, base)
    limits = await admit(session, principal.tenant_id, Ask(gpu_work=True))
    model = await _target_model(session, principal, body, dataset, version.number, base.id, limits)
    await lock_version(session, version.id)
    job = FineTuneJob(
        dataset_version_id=version.id,
        base_id=base.id,
        model_id=model.id,
        config=presets.job_record(config),
        status=WorkStatus.QUEUED,
        idempotency_key=idempotency_key,
        estimated_bytes=config.memory_plan(base.dims).total,
        total_steps=config.steps,
        max_attempts=settings.max_attempts,
        queued_at=datetime.now(UTC),
        created_by=principal.user_id,
        event_count=0,
    )
    session.add(job)
    await session.flush()
    await JOB_EVENTS.record(session, job, "queued", {"estimated_bytes": job.estimated_bytes})
    await session.commit()
    return job


async def _target_model(
    session: AsyncSession,
    principal: Principal,
    body: FineTuneCreate,
    dataset: Dataset,
    version_number: int,
    base_id: str,
    limits: Limits,
) -> Model:
    if body.model_id is not None:
        model = await get_model(session, body.model_id)
    else:
        name = body.model_name or f"{dataset.name} v{version_number}"
        existing = await session.scalar(select(Model).where(Model.name == name))
        if existing is None:
            await admit_new_model(session, principal.tenant_id, limits)
            model = Model(name=name, base_id=base_id, created_by=principal.user_id, version_count=0)
            session.add(model)
            await session.flush()
            return model
        if body.model_name is not None:
            await ensure_name_free(session, name)
        # Training the same dataset version again adds a version to its model.
        model = existing
    if model.base_id != base_id:
        raise Invalid(
            f"Model {model.name!r} is trained on base {model.base_id!r}; a version on {base_id!r} "
            "cannot join it. Name a new model instead."
        )
    return model


async def get_job(session: AsyncSession, job_id: UUID) -> FineTuneJob:
    job = await session.get(FineTuneJob, job_id)
    if job is None:
        raise NotFound("No such fine-tune.")
    return job


async def list_jobs(
    session: AsyncSession, page: PageRequest, status: WorkStatus | None
) -> tuple[list[FineTuneJob], int]:
    stmt = select(FineTuneJob).order_by(FineTuneJob.created_at.desc())
    if status is not None:
        stmt = stmt.where(FineTuneJob.status == status)
    rows, total = await fetch_page(session, stmt, page)
    return list(rows), total


async def cancel_job(session: AsyncSession, job_id: UUID) -> FineTuneJob:
    """A queued job ends now; a running one is stopped by its worker, which keeps a checkpoint."""
    return await lifecycle.cancel(session, JOB_EVENTS, lambda: get_job(session, job_id), "fine-tune")


async def resume_job(session: AsyncSession, job_id: UUID) -> FineTuneJob:
    """Queue a failed or cancelled job again; its next run starts from its last checkpoint."""
    job = await get_job(session, job_id)
    if job.model_id is None:
        raise Conflict("The model this fine-tune was training has been deleted; start a new fine-tune.")
    changed = job.status in (WorkStatus.FAILED, WorkStatus.CANCELLED) and await lifecycle.transition(
        session,
        job,
        job.status,
        status=WorkStatus.QUEUED,
        attempts=0,
        cancel_requested=False,
        failure_reason=None,
        finished_at=None,
        queued_at=datetime.now(UTC),
    )
    if not changed:
        raise Conflict(
            f"Only a failed or cancelled fine-tune can be resumed; this one is {job.status.value}."
        )
    await JOB_EVENTS.record(session, job, "queued", {"resumed_from_step": job.step})
    await session.commit()
    await session.refresh(job)
    return job


async def list_events(
    session: AsyncSession, job_id: UUID, after: int, page: PageRequest
) -> tuple[list[JobEvent], int]:
    await get_job(session, job_id)
    return await JOB_EVENTS.page(session, job_id, after, page)


async def jobs_out(session: AsyncSession, jobs: list[FineTuneJob]) -> list[FineTuneOut]:
    """Jobs as the API shows them, with the version number each succeeded one made (one query)."""
    made = [job.model_version_id for job in jobs if job.status is WorkStatus.SUCCEEDED]
    numbers: dict[UUID, int] = {}
    if made:
        rows = await session.execute(
            select(ModelVersion.id, ModelVersion.number).where(ModelVersion.id.in_(made))
        )
        numbers = dict(rows.tuples().all())
    fields = [name for name in FineTuneOut.model_fields if name != "model_version"]
    return [
        FineTuneOut.model_validate(
            {
                **{name: getattr(job, name) for name in fields},
                "model_version": numbers.get(job.model_version_id),
            }
        )
        for job in jobs
    ]


async def job_out(session: AsyncSession, job: FineTuneJob) -> FineTuneOut:
    (out,) = await jobs_out(session, [job])
    return out


_SAMPLE = re.compile(r"step-(\d{8})/(\d{2})\.mp4$")


async def list_samples(session: AsyncSession, storage: ObjectStorage, job_id: UUID) -> list[SampleOut]:
    """The validation clips the job has rendered so far, oldest first."""
    job = await get_job(session, job_id)
    objects = await anyio.to_thread.run_sync(storage.list_objects, TenantKeys(job.tenant_id).samples(job.id))
    samples = [
        SampleOut(step=int(found[1]), index=int(found[2]), size=info.size)
        for info in objects
        if (found := _SAMPLE.search(info.key))
    ]
    return sorted(samples, key=lambda sample: (sample.step, sample.index))


async def sample_object(
    session: AsyncSession, storage: ObjectStorage, job_id: UUID, step: int, index: int
) -> ObjectInfo:
    """One clip's key and size, checked to exist before any of the response goes out."""
    job = await get_job(session, job_id)
    info = await anyio.to_thread.run_sync(storage.stat, TenantKeys(job.tenant_id).sample(job.id, step, index))
    if info is None:
        raise NotFound("No such sample.")
    return info
