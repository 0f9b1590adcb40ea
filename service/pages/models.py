"""Models: the list, and a model's page with its versions, each adapter to download and its look;
rename it, edit its guardrails and delete it with the API's service calls and access levels
(renaming is any member's, as ``PATCH /v1/models/{id}`` is; guardrails and delete are owners')."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict
from core.storage import ObjectStorage
from service.auth.principal import Principal
from service.models import service as models
from service.models.schemas import Guardrails, ModelOut, ModelUpdate, ModelVersionOut, VersionLook
from service.pages.shared import LISTED, MEMBER, OWNER, form_fields, notice_text, redirect, shell, words
from service.pages.templates import page

# A version's look on its page: each property's label, then each component of the distance
# to the footage with its unit (``VersionLook``).
LOOK_PROPERTIES = (
    ("lightness", "Brightness (median L*)"),
    ("contrast", "Contrast (L* deviation)"),
    ("a", "Cast, green (-) to red (+) (a*)"),
    ("b", "Cast, blue (-) to yellow (+) (b*)"),
    ("colourfulness", "Colourfulness (RMS chroma)"),
    ("grain", "Grain (noise, L*)"),
    ("sharpness", "Sharpness (edge contrast, L* per pixel)"),
    ("flicker", "Flicker (change of mean L* per frame)"),
)
LOOK_COMPONENTS = (
    ("colour", "Colour", "ΔE"),
    ("tone", "Tone", "L*"),
    ("grain", "Grain", "L*"),
    ("sharpness", "Sharpness", "(|ln| of the ratio)"),
    ("flicker", "Flicker", "L* per frame"),
    ("total", "Overall", "visible differences"),
)


def look_change(reduction: float) -> str:
    """How much closer to the footage's look the version's renders are than the base's, in words."""
    percent = round(reduction * 100)
    return f"{percent} % closer to" if percent >= 0 else f"{-percent} % further from"


def look_verdict(look: VersionLook | None) -> str:
    """The look flag in words, for the versions table and each version's look."""
    if look is None:
        return "not measured"
    if not look.measured or look.reduction is None:
        return "could not be measured"
    change = f"{look_change(look.reduction)} the footage"
    return f"learned the look ({change})" if look.moved else f"did not move the look ({change})"


# The guardrails form's limits, with their labels.
GUARDRAIL_LIMITS = (
    ("max_width", "Widest video (pixels)"),
    ("max_height", "Tallest video (pixels)"),
    ("max_frames", "Most frames"),
    ("max_steps", "Most steps"),
)
WHOLE_NUMBER = re.compile(r"[0-9]+")


@dataclass
class GuardrailsForm:
    """The guardrails as the form holds them: blocked terms one a line, limits as typed."""

    blocked_terms: str = ""
    limits: dict[str, str] = field(default_factory=dict)
    memorisation_policy: str = "record"
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, guardrails: Guardrails) -> GuardrailsForm:
        limits = {
            name: "" if getattr(guardrails, name) is None else str(getattr(guardrails, name))
            for name, _ in GUARDRAIL_LIMITS
        }
        return cls("\n".join(guardrails.blocked_terms), limits, guardrails.memorisation_policy)

    @classmethod
    def read(cls, form: dict[str, str]) -> GuardrailsForm:
        limits = {name: form.get(name, "").replace(",", "").replace("_", "") for name, _ in GUARDRAIL_LIMITS}
        return cls(form.get("blocked_terms", ""), limits, form.get("memorisation_policy", "record"))

    def body(self) -> Guardrails | None:
        """The API's request body, or ``None`` with ``errors`` set."""
        limits: dict[str, int | None] = {}
        for name, label in GUARDRAIL_LIMITS:
            text = self.limits[name]
            # Only ASCII digits: ``int`` refuses "²", which ``str.isdigit`` takes.
            if text and not (WHOLE_NUMBER.fullmatch(text) and int(text) >= 1):
                self.errors.append(
                    f"{label}: enter a whole number from 1, or leave it blank for the platform's limit."
                )
            limits[name] = int(text) if text and WHOLE_NUMBER.fullmatch(text) else None
        terms = [line.strip() for line in self.blocked_terms.splitlines() if line.strip()]
        if self.errors:
            return None
        try:
            return Guardrails.model_validate(
                {"blocked_terms": terms, "memorisation_policy": self.memorisation_policy, **limits}
            )
        except ValidationError as exc:
            self.errors = words(exc)
            return None


class ModelPages(Controller):
    path = "/app/models"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def models(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        found, _ = await models.list_models(db_session, LISTED)
        listed = [ModelOut.model_validate(model) for model in found]
        return page(
            "models.html", **await shell(db_session, principal, models=listed, notice=notice_text(notice))
        )

    @get("/{model_id:uuid}", opt=MEMBER)
    async def model(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await _model_page(db_session, principal, model_id, notice=notice_text(notice))

    @post("/{model_id:uuid}", opt=MEMBER)
    async def rename(
        self,
        model_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        form = await form_fields(request)
        values = {"name": form.get("name", ""), "description": form.get("description", "")}
        try:
            await models.update_model(db_session, model_id, ModelUpdate.model_validate(values))
        except ValidationError as exc:
            errors = words(exc)
        except Conflict as exc:
            errors = [exc.detail]
        else:
            return redirect(f"/app/models/{model_id}?notice=model-saved")
        return await _model_page(
            db_session, principal, model_id, status_code=400, values=values, name_errors=errors
        )

    @post("/{model_id:uuid}/guardrails", opt=OWNER)
    async def guardrails(
        self,
        model_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        form = GuardrailsForm.read(await form_fields(request))
        body = form.body()
        if body is None:
            return await _model_page(db_session, principal, model_id, status_code=400, guardrails=form)
        await models.set_guardrails(db_session, model_id, body)
        return redirect(f"/app/models/{model_id}?notice=guardrails-saved")

    @get("/{model_id:uuid}/delete", opt=OWNER)
    async def delete_form(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        return await _delete_page(db_session, principal, model_id)

    @post("/{model_id:uuid}/delete", opt=OWNER)
    async def delete(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        storage: NamedDependency[ObjectStorage],
    ) -> Template | Redirect:
        try:
            await models.delete_model(db_session, storage, model_id)
        except Conflict as exc:
            return await _delete_page(db_session, principal, model_id, status_code=409, errors=[exc.detail])
        return redirect("/app/models?notice=model-deleted")


async def _model_page(
    db_session: AsyncSession,
    principal: Principal,
    model_id: UUID,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    name_errors: list[str] | None = None,
    guardrails: GuardrailsForm | None = None,
    notice: str | None = None,
) -> Template:
    model = ModelOut.model_validate(await models.get_model(db_session, model_id))
    found, _ = await models.list_versions(db_session, model_id, LISTED)
    versions = [ModelVersionOut.model_validate(version) for version in reversed(found)]
    return page(
        "model.html",
        status_code=status_code,
        **await shell(
            db_session,
            principal,
            model=model,
            versions=versions,
            look_verdict=look_verdict,
            look_change=look_change,
            look_properties=LOOK_PROPERTIES,
            look_components=LOOK_COMPONENTS,
            values=values or {"name": model.name, "description": model.description},
            name_errors=name_errors or [],
            guardrails=guardrails or GuardrailsForm.of(model.guardrails),
            guardrail_limits=GUARDRAIL_LIMITS,
            notice=notice,
        ),
    )


async def _delete_page(
    db_session: AsyncSession,
    principal: Principal,
    model_id: UUID,
    status_code: int = 200,
    errors: list[str] | None = None,
) -> Template:
    model = ModelOut.model_validate(await models.get_model(db_session, model_id))
    layout = await shell(db_session, principal, model=model, errors=errors or [])
    return page("model_delete.html", status_code=status_code, **layout)
