"""Plans: the limits a tenant buys. A tenant's own overrides live on its row (``Tenant.quota_overrides``)."""

from __future__ import annotations

from typing import Any

from advanced_alchemy.types import JsonB
from sqlalchemy import BigInteger, Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


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


class QuotaNotice(TenantScoped, Base):
    """A tenant's allowance crossed 80 % (``warning``) or 100 % (``exhausted``) of its limit.

    One per quota, level and calendar month (unique), however many requests or heartbeats see
    the crossing: the first transaction to insert it wins, the others insert nothing. Notices
    are events: the API lists them and webhooks deliver them as ``quota.warning`` and
    ``quota.exhausted`` (``service/webhooks/feeds.py``).
    """

    __tablename__ = "quota_notice"
    __table_args__ = (UniqueConstraint("tenant_id", "quota", "level", "period"),)

    type: Mapped[str] = mapped_column(String(32))
    quota: Mapped[str] = mapped_column(String(40))
    level: Mapped[int] = mapped_column(Integer)  # percent of the limit: 80 or 100
    period: Mapped[str] = mapped_column(String(7))  # the month it counts in, "2026-12"
    data: Mapped[dict[str, Any]] = mapped_column(JsonB)
