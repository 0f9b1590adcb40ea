"""Response models. Ids are strings; timestamps are timezone-aware datetimes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from rushes._models import Model

T = TypeVar("T")

__all__ = [
    "ApiKey",
    "ApiKeyWithSecret",
    "Asset",
    "Dataset",
    "DatasetItem",
    "DatasetVersion",
    "Me",
    "Member",
    "Membership",
    "Page",
    "Rights",
    "Tenant",
    "TenantSummary",
    "Upload",
    "UploadPart",
    "User",
]

#: ``"owned"``, or ``{"kind": "licensed", "licence_ref": "..."}`` (``{"kind": "owned"}`` works too).
Rights = Literal["owned"] | dict[str, str]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: ``items`` plus where it sits in the whole."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant(Model):
    id: str
    name: str
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership(Model):
    tenant: Tenant
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Me(Model):
    user_id: str
    email: str
    is_platform_admin: bool
    tenant: Tenant
    role: str
    memberships: list[Membership] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Member(Model):
    user_id: str
    email: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey(Model):
    id: str
    name: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyWithSecret(ApiKey):
    """A newly created key. ``key`` is the secret, shown only this once."""

    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadPart(Model):
    part_number: int
    size: int
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Upload(Model):
    id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    part_size: int
    part_count: int
    status: str
    expires_at: datetime
    asset_id: str | None = None
    parts: list[UploadPart] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset(Model):
    id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    kind: str
    rights: str
    attested_by: str
    attested_at: datetime
    created_at: datetime
    licence_ref: str | None = None
    media: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dataset(Model):
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetItem(Model):
    asset_id: str
    caption: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetVersion(Model):
    id: str
    dataset_id: str
    number: int
    locked: bool
    created_at: datetime
    trigger_word: str | None = None
    locked_at: datetime | None = None
    items: list[DatasetItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantSummary(Model):
    id: str
    name: str
    status: str
    created_at: datetime
    members: int
    assets: int
    storage_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Model):
    id: str
    email: str
    is_platform_admin: bool
    created_at: datetime
