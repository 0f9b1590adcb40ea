"""Fine-tunes: start one from a dataset version, watch it live, cancel or resume it.

The job page renders what the job row says; ``web/static/js/job.js`` then follows the
same Server-Sent Events stream the SDK follows (``/v1/fine-tunes/{id}/events/stream``)
and keeps step, loss, time left, samples and events up to date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.bases.catalogue import Catalogue
from core.errors import DomainError
from core.settings import Settings
from core.storage import ObjectStorage
from service.auth.principal import Principal
from service.datasets import service as datasets
from service.datasets.models import Dataset
from service.datasets.schemas import VersionOut
from service.jobs import service as jobs
from service.jobs.presets import PRESETS
from service.jobs.schemas import FineTuneCreate, Preset
from service.pages.shared import LISTED, MEMBER, form_fields, notice_text, redirect, shell, words
from service.pages.templates import page

# The settings the form offers beside the preset, in the order shown: what changes a run most.
SETTINGS = (
    ("steps", "Steps", "How many training steps; more learns more, and takes longer."),
    ("learning_rate", "Learning rate", "How far each step moves the adapter."),
    ("rank", "Rank", "The adapter's capacity: higher holds more detail and is larger."),
    ("frames", "Frames per clip", "1 + a multiple of 4; longer clips teach motion."),
    ("width", "Width", "Pixels; a multiple of 16. Blank: the base's own size."),
    ("height", "Height", "Pixels; a multiple of 16. Blank: the base's own size."),
    (
        "checkpoint_every",
        "Checkpoint every",
        "Steps between checkpoints a cancelled or failed run resumes from.",
    ),
    ("validation_every", "Sample every", "Steps between sample clips of the validation prompt; 0 for none."),
)


@dataclass(frozen=True)
class Choice:
    """A dataset version one can train on."""

    dataset: Dataset
    version: VersionOut

    @property
    def value(self) -> str:
        return f"{self.dataset.id}:{self.version.number}"


async def _choices(db_session: AsyncSession) -> list[Choice]:
    sets, _ = await datasets.list_datasets(db_session, LISTED)
    found = []
    for dataset in sets:
        versions, _ = await datasets.list_versions(db_session, dataset.id, LISTED)
        found += [Choice(dataset, version) for version in reversed(versions) if version.items]
    return found


def _request(form: dict[str, str]) -> dict[str, Any]:
    """The API's request body from the form: blank settings are left to the preset."""
    dataset_id, _, number = form.get("dataset_version", "").partition(":")
    settings: dict[str, Any] = {name: form[name] for name, _, _ in SETTINGS if form.get(name)}
    if form.get("validation_prompt"):
        settings["validation_prompts"] = [form["validation_prompt"]]
    body: dict[str, Any] = {
        "dataset_id": dataset_id,
        "dataset_version": number,
        "base": form.get("base", ""),
        "preset": form.get("preset", Preset.STANDARD),
        "hyperparameters": settings,
    }
    if form.get("model_name"):
        body["model_name"] = form["model_name"]
    return body


class FineTunePages(Controller):
    path = "/app/fine-tunes"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def fine_tunes(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        found, _ = await jobs.list_jobs(db_session, LISTED, None)
        labels = {c.version.id: f"{c.dataset.name} v{c.version.number}" for c in await _choices(db_session)}
        context = {
            "jobs": await jobs.jobs_out(db_session, found),
            "labels": labels,
            "notice": notice_text(notice),
        }
        return page("fine_tunes.html", **await shell(db_session, principal, **context))

    @get("/new", opt=MEMBER)
    async def new(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        catalogue: NamedDependency[Catalogue],
        dataset_id: FromQuery[str | None] = None,
        version: FromQuery[str | None] = None,
    ) -> Template:
        form = {"dataset_version": f"{dataset_id}:{version}", "preset": Preset.QUICK}
        return await self._form_page(db_session, principal, catalogue, form, [])

    @staticmethod
    async def _form_page(
        db_session: AsyncSession,
        principal: Principal,
        catalogue: Catalogue,
        form: dict[str, str],
        errors: list[str],
        status_code: int = 200,
    ) -> Template:
        context = {
            "choices": await _choices(db_session),
            "bases": list(catalogue),
            "presets": PRESETS,
            "settings": SETTINGS,
            "form": form,
            "errors": errors,
        }
        return page(
            "fine_tune_new.html", status_code=status_code, **await shell(db_session, principal, **context)
        )

    @post("/", opt=MEMBER)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        catalogue: NamedDependency[Catalogue],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        form = await form_fields(request)
        try:
            body = FineTuneCreate.model_validate(_request(form))
            job = await jobs.create_job(
                db_session, principal, body, catalogue=catalogue, settings=settings.jobs, idempotency_key=None
            )
        except ValidationError as exc:
            return await self._form_page(db_session, principal, catalogue, form, words(exc), 400)
        except DomainError as exc:
            return await self._form_page(db_session, principal, catalogue, form, [exc.detail], exc.status)
        return redirect(f"/app/fine-tunes/{job.id}")

    @get("/{job_id:uuid}", opt=MEMBER)
    async def fine_tune(
        self,
        job_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        storage: NamedDependency[ObjectStorage],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        job = await jobs.job_out(db_session, await jobs.get_job(db_session, job_id))
        context = {
            "job": job,
            "samples": await jobs.list_samples(db_session, storage, job_id),
            "label": {c.version.id: c for c in await _choices(db_session)}.get(job.dataset_version_id),
            "notice": notice_text(notice),
        }
        return page("fine_tune.html", **await shell(db_session, principal, **context))

    @post("/{job_id:uuid}/cancel", opt=MEMBER)
    async def cancel(self, job_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> Redirect:
        await jobs.cancel_job(db_session, job_id)
        return redirect(f"/app/fine-tunes/{job_id}?notice=job-cancelled")

    @post("/{job_id:uuid}/resume", opt=MEMBER)
    async def resume(self, job_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> Redirect:
        await jobs.resume_job(db_session, job_id)
        return redirect(f"/app/fine-tunes/{job_id}?notice=job-resumed")
