"""Datasets: list them, make one from picked clips with captions, see and edit its versions.

A version is editable until a fine-tune trains on it, then frozen; the page says which.
Forms post and redirect; invalid input is re-rendered beside the form in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from service.auth.principal import Principal
from service.datasets import service as datasets
from service.datasets.schemas import DatasetCreate, VersionOut, VersionWrite
from service.pages.shared import LISTED, MEMBER, form_fields, notice_text, redirect, shell, words
from service.pages.templates import page
from service.params import Number
from service.uploads import service as uploads
from service.uploads.schemas import AssetOut


@dataclass
class VersionForm:
    """What a version form holds: the trigger word and each picked clip's caption."""

    trigger_word: str = ""
    captions: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, version: VersionOut | None) -> VersionForm:
        if version is None:
            return cls()
        captions = {str(item.asset_id): item.caption or "" for item in version.items}
        return cls(version.trigger_word or "", captions)

    @classmethod
    async def read(cls, request: Request[Any, Any, Any]) -> VersionForm:
        form = await request.form()
        captions = {
            str(asset_id): str(form.get(f"caption-{asset_id}", "")).strip()
            for asset_id in form.getall("asset", [])
        }
        return cls(str(form.get("trigger_word", "")).strip(), captions)

    def body(self) -> VersionWrite | None:
        """The API's request body, or ``None`` with ``errors`` set."""
        if not self.captions:
            self.errors = ["Clips: choose at least one clip for the dataset to hold."]
            return None
        try:
            return VersionWrite.model_validate(
                {
                    "trigger_word": self.trigger_word or None,
                    "items": [
                        {"asset_id": asset_id, "caption": caption or None}
                        for asset_id, caption in self.captions.items()
                    ],
                }
            )
        except ValidationError as exc:
            self.errors = words(exc)
            return None


async def _assets(db_session: AsyncSession) -> list[AssetOut]:
    assets, _ = await uploads.list_assets(db_session, LISTED)
    return assets


class DatasetPages(Controller):
    path = "/app/datasets"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def datasets(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        sets, _ = await datasets.list_datasets(db_session, LISTED)
        versions = {d.id: (await datasets.list_versions(db_session, d.id, LISTED))[0] for d in sets}
        context = {"datasets": sets, "versions": versions, "notice": notice_text(notice)}
        return page("datasets.html", **await shell(db_session, principal, **context))

    @get("/new", opt=MEMBER)
    async def new_dataset(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        return await self._new_page(db_session, principal, {}, VersionForm())

    @staticmethod
    async def _new_page(
        db_session: AsyncSession,
        principal: Principal,
        values: dict[str, str],
        form: VersionForm,
        status_code: int = 200,
    ) -> Template:
        context = {"values": values, "form": form, "assets": await _assets(db_session)}
        return page(
            "dataset_new.html", status_code=status_code, **await shell(db_session, principal, **context)
        )

    @post("/", opt=MEMBER)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        fields = await form_fields(request)
        values = {name: fields.get(name, "") for name in ("name", "description")}
        form = await VersionForm.read(request)
        dataset_body: DatasetCreate | None = None
        try:
            dataset_body = DatasetCreate.model_validate(values)
        except ValidationError as exc:
            form.errors = words(exc)
        version_body = form.body() if dataset_body is not None else None
        if dataset_body is None or version_body is None:
            return await self._new_page(db_session, principal, values, form, status_code=400)
        try:
            dataset = await datasets.create_dataset(db_session, dataset_body)
        except DomainError as exc:
            form.errors = [exc.detail]
            return await self._new_page(db_session, principal, values, form, status_code=exc.status)
        await datasets.create_version(db_session, dataset.id, version_body)
        return redirect(f"/app/datasets/{dataset.id}?notice=dataset-created")

    @get("/{dataset_id:uuid}", opt=MEMBER)
    async def dataset(
        self,
        dataset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        dataset = await datasets.get_dataset(db_session, dataset_id)
        versions, _ = await datasets.list_versions(db_session, dataset_id, LISTED)
        assets = {asset.id: asset for asset in await _assets(db_session)}
        context = {"dataset": dataset, "versions": versions, "assets": assets, "notice": notice_text(notice)}
        return page("dataset.html", **await shell(db_session, principal, **context))

    @get("/{dataset_id:uuid}/versions/new", opt=MEMBER)
    async def new_version(
        self,
        dataset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        versions, _ = await datasets.list_versions(db_session, dataset_id, LISTED)
        # A new version starts as a copy of the latest, the usual next step after training on it.
        form = VersionForm.of(versions[-1] if versions else None)
        return await self._version_page(db_session, principal, dataset_id, None, form)

    @post("/{dataset_id:uuid}/versions", opt=MEMBER)
    async def create_version(
        self,
        dataset_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        form = await VersionForm.read(request)
        body = form.body()
        if body is None:
            return await self._version_page(db_session, principal, dataset_id, None, form, 400)
        await datasets.create_version(db_session, dataset_id, body)
        return redirect(f"/app/datasets/{dataset_id}?notice=version-created")

    @get("/{dataset_id:uuid}/versions/{number:int}/edit", opt=MEMBER)
    async def edit_version(
        self,
        dataset_id: FromPath[UUID],
        number: Number,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        version = datasets.version_out(await datasets.get_version(db_session, dataset_id, number))
        return await self._version_page(db_session, principal, dataset_id, version, VersionForm.of(version))

    @post("/{dataset_id:uuid}/versions/{number:int}", opt=MEMBER)
    async def save_version(
        self,
        dataset_id: FromPath[UUID],
        number: Number,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        form = await VersionForm.read(request)
        body = form.body()
        version = datasets.version_out(await datasets.get_version(db_session, dataset_id, number))
        if body is None:
            return await self._version_page(db_session, principal, dataset_id, version, form, 400)
        try:
            await datasets.replace_version(db_session, dataset_id, number, body)
        except DomainError as exc:
            form.errors = [exc.detail]
            return await self._version_page(db_session, principal, dataset_id, version, form, exc.status)
        return redirect(f"/app/datasets/{dataset_id}?notice=version-saved")

    @staticmethod
    async def _version_page(
        db_session: AsyncSession,
        principal: Principal,
        dataset_id: UUID,
        version: VersionOut | None,
        form: VersionForm,
        status_code: int = 200,
    ) -> Template:
        dataset = await datasets.get_dataset(db_session, dataset_id)
        context = {"dataset": dataset, "version": version, "form": form, "assets": await _assets(db_session)}
        return page(
            "dataset_version.html", status_code=status_code, **await shell(db_session, principal, **context)
        )
