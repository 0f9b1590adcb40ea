"""Generations: the form on a model version, a generation's live status, the video in the page.

The generation page follows the same event stream as the SDK (``web/static/js/generation.js``)
and plays the output from the API's output route, which serves it inline.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.bases.catalogue import Catalogue
from core.errors import DomainError, NotFound
from core.settings import Settings
from service.auth.principal import Principal
from service.generations import service as generations
from service.generations.schemas import GenerationCreate, GenerationOut
from service.models import service as models
from service.models.schemas import ModelOut
from service.pages.shared import LISTED, MEMBER, form_fields, notice_text, redirect, shell, words
from service.pages.templates import page
from service.uploads import service as uploads

# Settings a blank field leaves to the base's defaults (or, for the seed, to chance).
OPTIONAL = ("width", "height", "frames", "steps", "seed")


_FORM = "generate.html"


def _request(form: dict[str, str]) -> dict[str, Any]:
    """The API's request body from the form."""
    model_id, _, version = form.get("model_version", "").partition(":")
    body: dict[str, Any] = {
        "model_id": model_id,
        "version": version or None,
        "prompt": form.get("prompt", ""),
        "negative_prompt": form.get("negative_prompt", ""),
        **{name: form[name] for name in OPTIONAL if form.get(name)},
    }
    if form.get("adapter_strength"):
        body["adapter_strength"] = form["adapter_strength"]
    return body


async def version_choices(db_session: AsyncSession) -> list[tuple[ModelOut, int]]:
    """Every model version one can render with, newest first."""
    found, _ = await models.list_models(db_session, LISTED)
    listed = [ModelOut.model_validate(model) for model in found]
    return [(model, number) for model in listed for number in range(model.version_count, 0, -1)]


async def render_form(
    template: str,
    db_session: AsyncSession,
    principal: Principal,
    settings: Settings,
    form: dict[str, str],
    errors: list[str],
    status_code: int = 200,
) -> Template:
    """A form that renders videos (generate, compare): the versions to pick from, the
    platform's limits, what was typed and what was refused."""
    context = {
        "choices": await version_choices(db_session),
        "limits": settings.generations,
        "form": form,
        "errors": errors,
    }
    return page(template, status_code=status_code, **await shell(db_session, principal, **context))


class GenerationPages(Controller):
    path = "/app/generations"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def generations(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        found, _ = await generations.list_generations(db_session, LISTED, None, None)
        listed = await generations.generations_out(db_session, found)
        names = {model.id: model.name for model, _ in await version_choices(db_session)}
        return page("generations.html", **await shell(db_session, principal, generations=listed, names=names))

    @get("/new", opt=MEMBER)
    async def new(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        model_id: FromQuery[str | None] = None,
        version: FromQuery[str | None] = None,
    ) -> Template:
        form = {"model_version": f"{model_id}:{version}", "adapter_strength": "1.0"}
        return await render_form(_FORM, db_session, principal, settings, form, [])

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
            body = GenerationCreate.model_validate(_request(form))
            generation = await generations.create_generation(
                db_session,
                principal,
                body,
                catalogue=catalogue,
                settings=settings.generations,
                idempotency_key=None,
            )
        except ValidationError as exc:
            return await render_form(_FORM, db_session, principal, settings, form, words(exc), 400)
        except DomainError as exc:
            return await render_form(
                "generate.html", db_session, principal, settings, form, [exc.detail], exc.status
            )
        return redirect(f"/app/generations/{generation.id}")

    @get("/{generation_id:uuid}", opt=MEMBER)
    async def generation(
        self,
        generation_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        generation = await generations.get_generation(db_session, generation_id)
        shown = await generations.generation_out(db_session, generation)
        model = await models.get_model(db_session, shown.model_id) if shown.model_id else None
        context = {
            "generation": shown,
            "model": model,
            "copied_footage": await _copied_footage(db_session, shown),
            "notice": notice_text(notice),
        }
        return page("generation.html", **await shell(db_session, principal, **context))

    @post("/{generation_id:uuid}/cancel", opt=MEMBER)
    async def cancel(
        self, generation_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Redirect:
        await generations.cancel_generation(db_session, generation_id)
        return redirect(f"/app/generations/{generation_id}?notice=generation-cancelled")


async def _copied_footage(db_session: AsyncSession, shown: GenerationOut) -> str | None:
    """The file name of the training clip the memorisation check found closest, to name it in words."""
    if shown.memorisation is None or shown.memorisation.asset_id is None:
        return None
    try:
        return (await uploads.get_asset(db_session, shown.memorisation.asset_id)).filename
    except NotFound:  # deleted since, with every version that held it
        return None
