"""Datasets and their versions. A version is frozen once a job trains on it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid, NotFound
from service.datasets.models import Dataset, DatasetItem, DatasetVersion
from service.datasets.schemas import DatasetCreate, DatasetUpdate, ItemOut, VersionOut, VersionWrite
from service.db.pagination import PageRequest, fetch_page
from service.uploads.models import Asset


async def create_dataset(session: AsyncSession, body: DatasetCreate) -> Dataset:
    await _ensure_name_free(session, body.name)
    dataset = Dataset(name=body.name, description=body.description)
    session.add(dataset)
    await session.commit()
    return dataset


async def _ensure_name_free(session: AsyncSession, name: str) -> None:
    if await session.scalar(select(Dataset.id).where(Dataset.name == name)):
        raise Conflict(f"A dataset named {name!r} already exists.")


async def get_dataset(session: AsyncSession, dataset_id: UUID) -> Dataset:
    dataset = await session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound("No such dataset.")
    return dataset


async def list_datasets(session: AsyncSession, page: PageRequest) -> tuple[list[Dataset], int]:
    rows, total = await fetch_page(session, select(Dataset).order_by(Dataset.created_at.desc()), page)
    return list(rows), total


async def update_dataset(session: AsyncSession, dataset_id: UUID, body: DatasetUpdate) -> Dataset:
    dataset = await get_dataset(session, dataset_id)
    if body.name is not None and body.name != dataset.name:
        await _ensure_name_free(session, body.name)
        dataset.name = body.name
    if body.description is not None:
        dataset.description = body.description
    await session.commit()
    return dataset


async def delete_dataset(session: AsyncSession, dataset_id: UUID) -> None:
    dataset = await get_dataset(session, dataset_id)
    if await session.scalar(
        select(DatasetVersion.id).where(
            DatasetVersion.dataset_id == dataset_id, DatasetVersion.locked_at.is_not(None)
        )
    ):
        raise Conflict("A version of this dataset has been trained on; it is kept as the models' provenance.")
    await session.delete(dataset)
    await session.commit()


async def create_version(session: AsyncSession, dataset_id: UUID, body: VersionWrite) -> VersionOut:
    await get_dataset(session, dataset_id)
    await _ensure_assets(session, body)
    number = (
        await session.scalar(
            select(func.max(DatasetVersion.number)).where(DatasetVersion.dataset_id == dataset_id)
        )
    ) or 0
    version = DatasetVersion(
        dataset_id=dataset_id, number=number + 1, trigger_word=body.trigger_word, items=[]
    )
    _set_items(version, body)
    session.add(version)
    await session.commit()
    return version_out(version)


async def get_version(session: AsyncSession, dataset_id: UUID, number: int) -> DatasetVersion:
    version = await session.scalar(
        select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id, DatasetVersion.number == number)
    )
    if version is None:
        raise NotFound("No such dataset version.")
    return version


async def list_versions(
    session: AsyncSession, dataset_id: UUID, page: PageRequest
) -> tuple[list[VersionOut], int]:
    await get_dataset(session, dataset_id)
    stmt = (
        select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id).order_by(DatasetVersion.number)
    )
    rows, total = await fetch_page(session, stmt, page)
    return [version_out(v) for v in rows], total


async def replace_version(
    session: AsyncSession, dataset_id: UUID, number: int, body: VersionWrite
) -> VersionOut:
    version = await _editable(session, dataset_id, number)
    await _ensure_assets(session, body)
    version.trigger_word = body.trigger_word
    version.items.clear()
    # Flush the removals first: the new items may reuse (version, asset) pairs.
    await session.flush()
    _set_items(version, body)
    await session.commit()
    return version_out(version)


async def delete_version(session: AsyncSession, dataset_id: UUID, number: int) -> None:
    version = await _editable(session, dataset_id, number)
    await session.delete(version)
    await session.commit()


async def lock_version(session: AsyncSession, version_id: UUID) -> DatasetVersion:
    """Freeze a version; jobs call this in the transaction that starts training on it."""
    version = await session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound("No such dataset version.")
    if version.locked_at is None:
        version.locked_at = datetime.now(UTC)
    return version


async def _editable(session: AsyncSession, dataset_id: UUID, number: int) -> DatasetVersion:
    version = await get_version(session, dataset_id, number)
    if version.locked_at is not None:
        raise Conflict("This version has been trained on and can no longer change; create a new version.")
    return version


async def _ensure_assets(session: AsyncSession, body: VersionWrite) -> None:
    wanted = {item.asset_id for item in body.items}
    found = set((await session.scalars(select(Asset.id).where(Asset.id.in_(wanted)))).all())
    if unknown := wanted - found:
        raise Invalid("Some assets do not exist.", unknown_assets=sorted(str(a) for a in unknown))


def _set_items(version: DatasetVersion, body: VersionWrite) -> None:
    version.items.extend(
        DatasetItem(asset_id=item.asset_id, caption=item.caption, position=index)
        for index, item in enumerate(body.items)
    )


def version_out(version: DatasetVersion) -> VersionOut:
    return VersionOut(
        id=version.id,
        dataset_id=version.dataset_id,
        number=version.number,
        trigger_word=version.trigger_word,
        locked=version.locked_at is not None,
        locked_at=version.locked_at,
        items=[ItemOut(asset_id=i.asset_id, caption=i.caption) for i in version.items],
        created_at=version.created_at,
    )
