"""Plans: the limits a tenant buys. A tenant's own overrides live on its row (``Tenant.quota_overrides``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base


class Plan(Base):
    """Limits of one plan; a null limit is unlimited. Platform-wide: no tenant owns a plan."""

    __tablename__ = "plan"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    # The plan of every tenant with none of its own; at most one plan is the default.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    gpu_seconds_per_month: Mapped[int | None] = mapped_column(BigInteger, default=None)
    storage_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    models: Mapped[int | None] = mapped_column(BigInteger, default=None)
    concurrent_fine_tunes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    concurrent_generations: Mapped[int | None] = mapped_column(BigInteger, default=None)
    generations_per_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_upload_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # The Stripe price a subscription to this plan is billed at (``service.billing``): a
    # subscription changed to this price moves its tenant to this plan. None: not sold on Stripe.
    stripe_price_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
