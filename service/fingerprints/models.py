from __future__ import annotations

from uuid import UUID

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class FrameHash(TenantScoped, Base):
    """The perceptual hash of one frame sampled from an asset (``core.fingerprints``), made
    when its upload completed (or, for footage uploaded before hashing existed, by the first
    generation checked against it). Goes with its asset."""

    __tablename__ = "frame_hash"

    asset_id: Mapped[UUID] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"), index=True)
    # Where the frame lies in the asset, from its start; 0 for a still.
    seconds: Mapped[float] = mapped_column(Float)
    bits: Mapped[bytes] = mapped_column(LargeBinary(32))
    # PDQ's 0-100 rating; frames below ``core.fingerprints.MIN_QUALITY`` are kept but not compared,
    # so an asset that was hashed always has rows.
    quality: Mapped[int] = mapped_column(Integer)
