"""Datasets and their numbered versions (the exact clips and captions a fine-tune uses)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment

#: An asset id, a ``{"asset_id": ..., "caption": ...}`` mapping, or a :class:`~rushes.types.DatasetItem`.
ItemLike = str | Mapping[str, Any] | types.DatasetItem


def _item(item: ItemLike) -> dict[str, Any]:
    if isinstance(item, str):
        return {"asset_id": item}
    if isinstance(item, types.DatasetItem):
        return {"asset_id": item.asset_id, "caption": item.caption}
    return dict(item)


def _version_body(items: Sequence[ItemLike], trigger_word: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"items": [_item(i) for i in items]}
    if trigger_word is not None:
        body["trigger_word"] = trigger_word
    return body


class Datasets(Resource[R]):
    @property
    def versions(self) -> DatasetVersions[R]:
        return DatasetVersions(self._requester)

    @endpoint
    def create(self, *, name: str, description: str = "") -> Op[types.Dataset]:
        return Op(
            "POST", "/v1/datasets", types.Dataset.from_json, json={"name": name, "description": description}
        )

    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.Dataset]]:
        return list_op("/v1/datasets", types.Dataset.from_json, limit)

    @endpoint
    def get(self, dataset_id: str) -> Op[types.Dataset]:
        return Op("GET", f"/v1/datasets/{path_segment(dataset_id)}", types.Dataset.from_json)

    @endpoint
    def update(
        self, dataset_id: str, *, name: str | None = None, description: str | None = None
    ) -> Op[types.Dataset]:
        body = {k: v for k, v in {"name": name, "description": description}.items() if v is not None}
        return Op("PATCH", f"/v1/datasets/{path_segment(dataset_id)}", types.Dataset.from_json, json=body)

    @endpoint
    def delete(self, dataset_id: str) -> Op[None]:
        return Op("DELETE", f"/v1/datasets/{path_segment(dataset_id)}", nothing)


class DatasetVersions(Resource[R]):
    @endpoint
    def create(
        self, dataset_id: str, *, items: Sequence[ItemLike], trigger_word: str | None = None
    ) -> Op[types.DatasetVersion]:
        """A new version from assets (ids, or ``{"asset_id", "caption"}`` mappings)."""
        return Op(
            "POST",
            f"/v1/datasets/{path_segment(dataset_id)}/versions",
            types.DatasetVersion.from_json,
            json=_version_body(items, trigger_word),
        )

    @paginated
    def list(self, dataset_id: str, *, limit: int | None = None) -> Op[types.Page[types.DatasetVersion]]:
        return list_op(
            f"/v1/datasets/{path_segment(dataset_id)}/versions", types.DatasetVersion.from_json, limit
        )

    @endpoint
    def get(self, dataset_id: str, number: int) -> Op[types.DatasetVersion]:
        return Op(
            "GET",
            f"/v1/datasets/{path_segment(dataset_id)}/versions/{int(number)}",
            types.DatasetVersion.from_json,
        )

    @endpoint
    def replace(
        self, dataset_id: str, number: int, *, items: Sequence[ItemLike], trigger_word: str | None = None
    ) -> Op[types.DatasetVersion]:
        """Replace an unlocked version's items."""
        return Op(
            "PUT",
            f"/v1/datasets/{path_segment(dataset_id)}/versions/{int(number)}",
            types.DatasetVersion.from_json,
            json=_version_body(items, trigger_word),
        )

    @endpoint
    def delete(self, dataset_id: str, number: int) -> Op[None]:
        return Op("DELETE", f"/v1/datasets/{path_segment(dataset_id)}/versions/{int(number)}", nothing)
