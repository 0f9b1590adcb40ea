from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.policy import Access, access
from service.datasets import service
from service.datasets.schemas import DatasetCreate, DatasetOut, DatasetUpdate, VersionOut, VersionWrite
from service.db.pagination import PageRequest, page_body
from service.params import Number
from service.schemas import Page


class DatasetController(Controller):
    path = "/v1/datasets"
    tags = ["datasets"]

    @post(operation_id="createDataset", opt=access(Access.MEMBER))
    async def create(
        self, data: JSONBody[DatasetCreate], db_session: NamedDependency[AsyncSession]
    ) -> DatasetOut:
        return DatasetOut.model_validate(await service.create_dataset(db_session, data))

    @get(operation_id="listDatasets", opt=access(Access.MEMBER))
    async def list_datasets(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[DatasetOut]:
        items, total = await service.list_datasets(db_session, page)
        return Page[DatasetOut].model_validate(page_body(items, total, page))

    @get("/{dataset_id:uuid}", operation_id="getDataset", opt=access(Access.MEMBER))
    async def get_dataset(
        self, dataset_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> DatasetOut:
        return DatasetOut.model_validate(await service.get_dataset(db_session, dataset_id))

    @patch("/{dataset_id:uuid}", operation_id="updateDataset", opt=access(Access.MEMBER))
    async def update(
        self,
        dataset_id: FromPath[UUID],
        data: JSONBody[DatasetUpdate],
        db_session: NamedDependency[AsyncSession],
    ) -> DatasetOut:
        return DatasetOut.model_validate(await service.update_dataset(db_session, dataset_id, data))

    @delete("/{dataset_id:uuid}", operation_id="deleteDataset", opt=access(Access.MEMBER))
    async def delete_dataset(
        self, dataset_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> None:
        await service.delete_dataset(db_session, dataset_id)

    @post("/{dataset_id:uuid}/versions", operation_id="createDatasetVersion", opt=access(Access.MEMBER))
    async def create_version(
        self,
        dataset_id: FromPath[UUID],
        data: JSONBody[VersionWrite],
        db_session: NamedDependency[AsyncSession],
    ) -> VersionOut:
        return await service.create_version(db_session, dataset_id, data)

    @get("/{dataset_id:uuid}/versions", operation_id="listDatasetVersions", opt=access(Access.MEMBER))
    async def list_versions(
        self,
        dataset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
    ) -> Page[VersionOut]:
        items, total = await service.list_versions(db_session, dataset_id, page)
        return Page[VersionOut].model_validate(page_body(items, total, page))

    @get(
        "/{dataset_id:uuid}/versions/{number:int}",
        operation_id="getDatasetVersion",
        opt=access(Access.MEMBER),
    )
    async def get_version(
        self, dataset_id: FromPath[UUID], number: Number, db_session: NamedDependency[AsyncSession]
    ) -> VersionOut:
        return service.version_out(await service.get_version(db_session, dataset_id, number))

    @put(
        "/{dataset_id:uuid}/versions/{number:int}",
        operation_id="replaceDatasetVersion",
        opt=access(Access.MEMBER),
    )
    async def replace_version(
        self,
        dataset_id: FromPath[UUID],
        number: Number,
        data: JSONBody[VersionWrite],
        db_session: NamedDependency[AsyncSession],
    ) -> VersionOut:
        return await service.replace_version(db_session, dataset_id, number, data)

    @delete(
        "/{dataset_id:uuid}/versions/{number:int}",
        operation_id="deleteDatasetVersion",
        opt=access(Access.MEMBER),
    )
    async def delete_version(
        self, dataset_id: FromPath[UUID], number: Number, db_session: NamedDependency[AsyncSession]
    ) -> None:
        await service.delete_version(db_session, dataset_id, number)
