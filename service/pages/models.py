"""Models: the list, and a model's page with its versions, each adapter to download."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal
from service.models import service as models
from service.models.schemas import ModelOut, ModelVersionOut
from service.pages.shared import LISTED, MEMBER, shell
from service.pages.templates import page


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
        return page("model.html", **await shell(db_session, principal, model=model, versions=versions))
