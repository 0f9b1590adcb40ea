from __future__ import annotations

import enum
from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Enum, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class Rights(enum.StrEnum):
    OWNED = "owned"
    LICENSED = "licensed"


class UploadStatus(enum.StrEnum):
    OPEN = "open"
    COMPLETING = "completing"
    # Whole in storage, waiting for (or under) the ``ingest`` role's checks; direct uploads only.
    VERIFYING = "verifying"
    COMPLETED = "completed"
    # The checks refused the file; ``failure`` says why and its objects are gone.
    FAILED = "failed"


class Transfer(enum.StrEnum):
    """How a session's bytes reach storage."""

    API = "api"
    DIRECT = "direct"


class UploadSession(TenantScoped, Base):
    __tablename__ = "upload_session"

    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(127))
    rights: Mapped[Rights] = mapped_column(Enum(Rights, native_enum=False, length=16))
    licence_ref: Mapped[str | None] = mapped_column(String(500), default=None)
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int] = mapped_column(Integer)
    # Chosen up front so the multipart upload can target the asset's final key.
    asset_id: Mapped[UUID] = mapped_column(unique=True)
    storage_upload_id: Mapped[str] = mapped_column(String(1024))
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, native_enum=False, length=16), default=UploadStatus.OPEN, index=True
    )
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    transfer: Mapped[Transfer] = mapped_column(
        Enum(Transfer, native_enum=False, length=16), default=Transfer.API, server_default=Transfer.API.name
    )
    # Set by completion for the ``ingest`` role, which creates the asset later.
    allow_duplicate: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The problem details (RFC 9457 members) of a failed check.
    failure: Mapped[dict[str, Any] | None] = mapped_column(JsonB, default=None)
    # The ``ingest`` worker checking the upload, and until when that claim holds.
    verify_owner: Mapped[str | None] = mapped_column(String(255), default=None)
    verify_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Checks that ended in an error of ours (storage, disk), not a verdict on the file.
    verify_attempts: Mapped[int] = mapped_column(default=0, server_default="0")


class UploadPart(TenantScoped, Base):
    __tablename__ = "upload_part"
    __table_args__ = (UniqueConstraint("session_id", "part_number"),)

    session_id: Mapped[UUID] = mapped_column(ForeignKey("upload_session.id", ondelete="CASCADE"), index=True)
    part_number: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    # Set when the part came with a Content-Digest, which it was checked against.
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    etag: Mapped[str] = mapped_column(String(255))


class AssetKind(enum.StrEnum):
    VIDEO = "video"
    STILL = "still"


class Asset(TenantScoped, Base):
    __tablename__ = "asset"

    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(127))
    kind: Mapped[AssetKind] = mapped_column(Enum(AssetKind, native_enum=False, length=16))
    media: Mapped[dict[str, Any]] = mapped_column(JsonB)
    rights: Mapped[Rights] = mapped_column(Enum(Rights, native_enum=False, length=16))
    licence_ref: Mapped[str | None] = mapped_column(String(500), default=None)
    attested_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"))
    attested_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
