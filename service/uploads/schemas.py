from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field, model_validator

from service.schemas import Input, Output
from service.uploads.models import AssetKind, Rights, Transfer, UploadStatus

# Media types compare case-insensitively (RFC 2045); stored in lower case.
_CONTENT_TYPE = re.compile(r"^(video|image)/[A-Za-z0-9][A-Za-z0-9.+-]{0,100}$", re.IGNORECASE)


def _filename(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValueError("filename must not contain control characters")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise ValueError("filename must be a bare name, without folders")
    if len(value.encode()) > 255:
        raise ValueError("filename must be at most 255 bytes")
    return value


def _content_type(value: str) -> str:
    if not _CONTENT_TYPE.match(value):
        raise ValueError("content_type must be a video/* or image/* media type")
    return value.lower()


Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_filename)]
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN), AfterValidator(str.lower)]


class RightsAttestation(Input):
    """The uploader's statement that they may train on this footage."""

    kind: Rights
    licence_ref: Annotated[str | None, Field(max_length=500)] = None

    @model_validator(mode="after")
    def _licence_needs_reference(self) -> RightsAttestation:
        if self.kind is Rights.LICENSED and not self.licence_ref:
            raise ValueError("licensed footage needs a licence_ref")
        if self.kind is Rights.OWNED and self.licence_ref:
            raise ValueError("licence_ref applies only to licensed footage")
        return self


class UploadCreate(Input):
    filename: Filename
    size: Annotated[int, Field(ge=1, description="Bytes; an empty file is not footage.")]
    sha256: Sha256
    content_type: Annotated[str, AfterValidator(_content_type)]
    rights: RightsAttestation
    part_size: int | None = Field(default=None, description="Bytes per part; the server picks if omitted.")
    allow_duplicate: bool = Field(
        default=False,
        description="Store the file even if the library already holds one with this sha256; "
        "otherwise such an upload is refused with 409 `duplicate-asset` naming `existing_asset_id`.",
    )
    direct: bool = Field(
        default=False,
        description="The client can PUT parts straight to storage with signed URLs "
        "(`POST /v1/uploads/{id}/part-urls`). Where the storage backend signs them, the session's "
        "`transfer` is `direct`; otherwise `api`, and parts go through `PUT .../parts/{n}`.",
    )


class UploadComplete(Input):
    allow_duplicate: bool = Field(
        default=False,
        description="Make the asset even if one with the same sha256 was stored meanwhile; "
        "otherwise the upload is discarded with 409 `duplicate-asset` naming `existing_asset_id`.",
    )


class PartOut(Output):
    part_number: int
    size: int
    sha256: str | None = Field(
        description="The part's sha256 when it was sent with a `Content-Digest` and checked against it; "
        "null otherwise (the whole file's sha256 is checked at completion either way)."
    )


# One request signs at most this many parts: a batch a client sends before asking again.
MAX_PART_URLS = 100


class PartUrlsRequest(Input):
    part_numbers: Annotated[
        list[Annotated[int, Field(ge=1, le=10_000)]],
        Field(min_length=1, max_length=MAX_PART_URLS, description="The parts to sign, each once."),
    ]

    @model_validator(mode="after")
    def _distinct(self) -> PartUrlsRequest:
        if len(set(self.part_numbers)) != len(self.part_numbers):
            raise ValueError("part_numbers must not repeat")
        return self


class PartUrlOut(Output):
    part_number: int
    size: int = Field(description="The part's exact length in bytes.")
    url: str = Field(description="`PUT` the part's bytes here, with no credentials.")


class PartUrlsOut(Output):
    parts: list[PartUrlOut]
    expires_at: datetime = Field(description="The URLs refuse requests after this; ask again.")


class UploadOut(Output):
    id: UUID
    filename: str
    size: int
    sha256: str
    content_type: str
    rights: Rights
    licence_ref: str | None
    part_size: int
    part_count: int
    status: UploadStatus
    transfer: Transfer
    expires_at: datetime
    asset_id: UUID | None = Field(description="Set once the upload is complete.")
    failure: dict[str, Any] | None = Field(
        default=None,
        description="Why the checks refused the file (RFC 9457 problem details), when `status` is `failed`.",
    )
    parts: list[PartOut]


class AssetOut(Output):
    id: UUID
    filename: str
    size: int
    sha256: str
    content_type: str
    kind: AssetKind
    media: dict[str, Any]
    rights: Rights
    licence_ref: str | None
    attested_by: UUID
    attested_at: datetime
    created_at: datetime
