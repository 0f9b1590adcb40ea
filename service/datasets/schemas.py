from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, field_validator

from service.schemas import Input, Output

Name = Annotated[str, Field(min_length=1, max_length=120)]
Caption = Annotated[str, Field(max_length=2000)]
TriggerWord = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]


class DatasetCreate(Input):
    name: Name
    description: Annotated[str, Field(max_length=5000)] = ""


class DatasetUpdate(Input):
    name: Name | None = None
    description: Annotated[str | None, Field(max_length=5000)] = None


class DatasetOut(Output):
    id: UUID
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


class ItemIn(Input):
    asset_id: UUID
    caption: Caption | None = None


class VersionWrite(Input):
    trigger_word: TriggerWord | None = None
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=10_000)]

    @field_validator("items")
    @classmethod
    def _no_repeats(cls, items: list[ItemIn]) -> list[ItemIn]:
        if len({item.asset_id for item in items}) != len(items):
            raise ValueError("an asset may appear only once in a version")
        return items


class ItemOut(Output):
    asset_id: UUID
    caption: str | None


class VersionOut(Output):
    id: UUID
    dataset_id: UUID
    number: int
    trigger_word: str | None
    locked: bool
    locked_at: datetime | None
    items: list[ItemOut]
    created_at: datetime
