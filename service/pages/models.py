"""Models: the list, and a model's page with its versions, each adapter to download and its look."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.models import service as models
from service.models.schemas import ModelOut, ModelVersionOut, VersionLook
from service.pages.shared import LISTED, MEMBER, shell
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


class ModelPages(Controller):
    path = "/app/models"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def models(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        found, _ = await models.list_models(db_session, LISTED)
        listed = [ModelOut.model_validate(model) for model in found]
        return page("models.html", **await shell(db_session, principal, models=listed))

    @get("/{model_id:uuid}", opt=MEMBER)
    async def model(
        self,
        model_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        model = ModelOut.model_validate(await models.get_model(db_session, model_id))
        found, _ = await models.list_versions(db_session, model_id, LISTED)
        versions = [ModelVersionOut.model_validate(version) for version in reversed(found)]
        return page(
            "model.html",
            **await shell(
                db_session,
                principal,
                model=model,
                versions=versions,
                look_verdict=look_verdict,
                look_change=look_change,
                look_properties=LOOK_PROPERTIES,
                look_components=LOOK_COMPONENTS,
            ),
        )
