"""Compare: one prompt, seed and settings rendered by two model versions side by side, so a
filmmaker sees what training changed.

A generation always renders with a model version; "the base alone" is a version at adapter
strength 0, which leaves the base's weights as they are. The form makes both generations with
the API's service function; ``/app/compare?a=…&b=…`` follows both live (``generation.js``) and
then plays them together (``compare.js``). Both ids are looked up through the tenant, so
another tenant's answers the 404 page.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.bases.catalogue import Catalogue
from core.errors import DomainError
from core.settings import Settings
from service.auth.principal import Principal
from service.generations import service as generations
from service.generations.models import Generation
from service.generations.schemas import GenerationCreate, GenerationOut
from service.models.schemas import ModelOut
from service.pages.generations import render_form, version_choices
from service.pages.shared import MEMBER, form_fields, redirect, shell, words
from service.pages.templates import page
from service.schemas import INT32_MAX

SIDES = ("a", "b")
# Settings both sides share; blank leaves each to the base's default (the seed: one drawn for both).
SHARED = ("width", "height", "frames", "steps", "guidance")
# What two generations must share to be compared like for like, in words.
LIKE_FOR_LIKE = {
    "prompt": "prompt",
    "negative_prompt": "negative prompt",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "frames": "frames",
    "steps": "steps",
    "guidance": "guidance",
}


_FORM = "compare_new.html"


def _request(form: dict[str, str], side: str, seed: str) -> dict[str, Any]:
    """One side's API request body from the form."""
    model_id, _, version = form.get(f"version_{side}", "").partition(":")
    return {
        "model_id": model_id,
        "version": version or None,
        "prompt": form.get("prompt", ""),
        "negative_prompt": form.get("negative_prompt", ""),
        "seed": seed,
        "adapter_strength": form.get(f"strength_{side}") or "1.0",
        **{name: form[name] for name in SHARED if form.get(name)},
    }


def _other_side(choices: list[tuple[ModelOut, int]], value: str, strength: str) -> tuple[str, str]:
    """What to compare a version with by default: another version of its model, else the base alone."""
    model_id = value.partition(":")[0]
    for model, number in choices:
        other = f"{model.id}:{number}"
        if str(model.id) == model_id and other != value:
            return other, "1.0"
    return value, "1.0" if float(strength or 1) == 0 else "0"


async def _form_from(db_session: AsyncSession, source: UUID | None) -> dict[str, str]:
    """The form's starting values: a generation's settings when comparing it, else the newest version."""
    choices = await version_choices(db_session)
    if source is not None:
        shown = await generations.generation_out(
            db_session, await generations.get_generation(db_session, source)
        )
        form = {name: str(getattr(shown, name)) for name in (*LIKE_FOR_LIKE, "adapter_strength")}
        form["version_a"] = f"{shown.model_id}:{shown.version}"
        form["strength_a"] = form.pop("adapter_strength")
    elif choices:
        model, number = choices[0]
        form = {"version_a": f"{model.id}:{number}", "strength_a": "1.0"}
    else:
        return {}
    form["version_b"], form["strength_b"] = _other_side(choices, form["version_a"], form["strength_a"])
    return form


def _side_label(shown: GenerationOut, names: dict[UUID, str]) -> str:
    """What renders a side, in words ("version", not "v": a model's name often ends in one)."""
    name = names.get(shown.model_id, "a deleted model") if shown.model_id else "a deleted model"
    version = f", version {shown.version}" if shown.version else ""
    if shown.adapter_strength == 0:
        return f"the base ({shown.base_id}) alone: {name}{version}, at strength 0"
    return f"{name}{version}, at strength {shown.adapter_strength:g}"


class ComparePages(Controller):
    path = "/app/compare"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def compare(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        a: FromQuery[UUID | None] = None,
        b: FromQuery[UUID | None] = None,
        source: Annotated[UUID | None, QueryParameter(name="from")] = None,
    ) -> Template:
        if a is None or b is None:
            form = await _form_from(db_session, source)
            return await render_form(_FORM, db_session, principal, settings, form, [])
        pair = await generations.generations_out(
            db_session, [await generations.get_generation(db_session, found) for found in (a, b)]
        )
        names = {model.id: model.name for model, _ in await version_choices(db_session)}
        context = {
            "sides": [
                (side, shown, _side_label(shown, names)) for side, shown in zip(SIDES, pair, strict=True)
            ],
            "differences": [
                said
                for name, said in LIKE_FOR_LIKE.items()
                if getattr(pair[0], name) != getattr(pair[1], name)
            ],
        }
        return page("compare.html", **await shell(db_session, principal, **context))

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
        # A blank seed is drawn here, not by each generation: both must render from the same noise.
        seed = form.get("seed") or str(secrets.randbelow(INT32_MAX + 1))
        bodies: list[GenerationCreate] = []
        found: dict[str, list[str]] = {}
        for side in SIDES:
            try:
                bodies.append(GenerationCreate.model_validate(_request(form, side, seed)))
            except ValidationError as exc:
                found[side] = words(exc)
        if found:
            return await render_form(
                "compare_new.html", db_session, principal, settings, form, _side_errors(found), 400
            )
        made: list[Generation] = []
        try:
            for body in bodies:
                made.append(
                    await generations.create_generation(
                        db_session,
                        principal,
                        body,
                        catalogue=catalogue,
                        settings=settings.generations,
                        idempotency_key=None,
                    )
                )
        except DomainError as exc:
            # One side alone compares nothing: the first is withdrawn when the second is refused
            # (a quota reached in between, say). One that has ended already has nothing to undo.
            for generation in made:
                with contextlib.suppress(DomainError):
                    await generations.cancel_generation(db_session, generation.id)
            return await render_form(
                "compare_new.html", db_session, principal, settings, form, [exc.detail], exc.status
            )
        return redirect(f"/app/compare?a={made[0].id}&b={made[1].id}")


def _side_errors(found: dict[str, list[str]]) -> list[str]:
    """Each reason once: a shared field's is wrong on both sides alike, a side's own is named."""
    errors = {said: "" for said in found.get("a", []) if said in found.get("b", [])}
    for side, reasons in found.items():
        errors.update({f"Video {side.upper()}: {said}": "" for said in reasons if said not in errors})
    return list(errors)
