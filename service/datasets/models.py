from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db.base import Base, TenantScoped


class Dataset(TenantScoped, Base):
    __tablename__ = "dataset"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")


class DatasetVersion(TenantScoped, Base):
    """A set of assets with captions. Editable until a job trains on it; frozen after."""

    __tablename__ = "dataset_version"
    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    dataset_id: Mapped[UUID] = mapped_column(ForeignKey("dataset.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    trigger_word: Mapped[str | None] = mapped_column(String(64), default=None)
    locked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    items: Mapped[list[DatasetItem]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="DatasetItem.position"
    )


class DatasetItem(TenantScoped, Base):
    __tablename__ = "dataset_item"
    __table_args__ = (UniqueConstraint("version_id", "asset_id"),)

    version_id: Mapped[UUID] = mapped_column(ForeignKey("dataset_version.id", ondelete="CASCADE"), index=True)
    # RESTRICT: footage a version holds cannot vanish under it; the API says so first.
    asset_id: Mapped[UUID] = mapped_column(ForeignKey("asset.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    caption: Mapped[str | None] = mapped_column(Text, default=None)
