"""Usage and billing: this month's use of each quota, the usage ledger, and the Stripe portal.

The figures are ``GET /v1/quotas``, ``GET /v1/usage/ledger`` and ``GET /v1/billing``'s, from the
same service calls; this module only puts them into words (and the admin console reuses
``quota_rows`` and ``ledger_rows`` for any tenant).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from service.auth.principal import Principal
from service.billing import service as billing
from service.db.pagination import PageRequest
from service.pages.formatting import amount, gpu_time, limit_text, pager
from service.pages.shared import MEMBER, OWNER, shell
from service.pages.templates import page as render
from service.pages.templates import size
from service.quotas import service as quotas
from service.quotas.limits import Quota
from service.quotas.schemas import QuotasOut, QuotaUse
from service.usage import service as usage
from service.usage.models import Charge
from service.usage.schemas import LedgerEntryOut, UsageOut

QUOTA_LABELS = {
    Quota.GPU_SECONDS_PER_MONTH: "GPU time this month",
    Quota.STORAGE_BYTES: "Storage",
    Quota.MODELS: "Models",
    Quota.CONCURRENT_FINE_TUNES: "Fine-tunes running at once",
    Quota.CONCURRENT_GENERATIONS: "Videos rendering at once",
    Quota.GENERATIONS_PER_MINUTE: "Videos started in the last minute",
    Quota.MAX_UPLOAD_BYTES: "Largest upload",
}
# What new work meets at the limit: ``QuotaUse.when_reached`` in words.
AT_LIMIT = {
    "refused_402": "New work that needs it is refused until there is room again.",
    "refused_413": "A larger file is refused.",
    "refused_429": "New videos are refused for a minute.",
    "queued": "More wait in the queue and start as these finish.",
}
CHARGE_LABELS = {
    Charge.FINE_TUNE_GPU_SECONDS: "Fine-tune GPU time",
    Charge.GENERATION_GPU_SECONDS: "Video GPU time",
    Charge.OUTPUT_BYTES: "Video outputs stored",
}
STATUS_WORDS = {
    "active": "Active",
    "past_due": "Payment past due",
    "suspended": "Suspended",
}
# Share of a limit from which a quota is shown as nearly used up.
WARN_AT = 0.8
# The per-day chart's drawing area, in SVG units: one slot a day, bars rising from the foot.
CHART_HEIGHT = 120
DAY_WIDTH = 20
BAR_WIDTH = 14


@dataclass(frozen=True, slots=True)
class QuotaRow:
    quota: Quota
    label: str
    used: str
    limit: str
    unlimited: bool
    bar: bool  # a share of a limit to draw (not for unlimited quotas, nor the largest upload)
    bar_max: int
    bar_value: float
    percent: int
    state: str  # "ok", "warn" (at least 80 % used) or "full" (the limit is reached)
    at_limit: str


def quota_rows(quotas_out: QuotasOut) -> list[QuotaRow]:
    return [_row(use) for use in quotas_out.quotas]


def _row(use: QuotaUse) -> QuotaRow:
    limit = use.limit
    metered = limit is not None and use.quota != Quota.MAX_UPLOAD_BYTES
    # A limit of 0 allows nothing: reached already.
    share = (use.used / limit if limit else 1.0) if metered else 0.0
    state = "full" if metered and share >= 1 else "warn" if metered and share >= WARN_AT else "ok"
    return QuotaRow(
        quota=use.quota,
        label=QUOTA_LABELS[use.quota],
        used=amount(use.quota, use.used),
        limit=limit_text(limit, use.quota),
        unlimited=limit is None,
        bar=metered,
        # A limit of 0 draws a full bar of 1.
        bar_max=max(limit or 0, 1),
        bar_value=min(use.used, float(limit)) if limit else 1.0,
        percent=min(100, int(share * 100)),
        state=state,
        at_limit=AT_LIMIT[use.when_reached],
    )


@dataclass(frozen=True, slots=True)
class LedgerRow:
    entry: LedgerEntryOut
    label: str
    amount: str
    credit: bool
    work: str  # what was charged: a fine-tune or a video
    link: str | None  # the tenant's own page for the work charged


def ledger_rows(entries: list[Any], links: bool) -> list[LedgerRow]:
    rows = []
    for entry in entries:
        out = LedgerEntryOut.model_validate(entry)
        bytes_ = out.charge == Charge.OUTPUT_BYTES
        fine_tune = out.charge == Charge.FINE_TUNE_GPU_SECONDS
        kind = "fine-tunes" if fine_tune else "generations"
        rows.append(
            LedgerRow(
                entry=out,
                label=CHARGE_LABELS[out.charge],
                amount=size(int(abs(out.quantity))) if bytes_ else gpu_time(out.quantity),
                credit=out.quantity < 0,
                work="Fine-tune" if fine_tune else "Video",
                link=f"/app/{kind}/{out.work_id}" if links and out.work_id else None,
            )
        )
    return rows


async def tenant_ledger(
    db_session: AsyncSession, tenant_id: UUID, page: PageRequest, base: str, links: bool
) -> dict[str, Any]:
    entries, total = await quotas.list_ledger(db_session, tenant_id, page)
    return {"ledger": ledger_rows(entries, links), "pager": pager(base, page, total, len(entries))}


@dataclass(frozen=True, slots=True)
class DayBar:
    """One UTC day of the month so far: its GPU time in words and its bars (SVG units),
    fine-tunes stacked on videos."""

    day: date
    fine_tune: str
    generation: str
    total: str
    videos: int
    x: int
    generation_y: float
    generation_height: float
    fine_tune_y: float
    fine_tune_height: float
    worked: bool  # anything charged or rendered that day: a row of the table


@dataclass(frozen=True, slots=True)
class UsageChart:
    since: date
    until: date
    days: list[DayBar]
    width: int
    height: int
    bar_width: int
    peak: str  # the tallest bar's GPU time, the chart's scale
    fine_tune_total: str
    generation_total: str
    total: str


def usage_chart(used: UsageOut) -> UsageChart:
    """Every day of ``used``'s period with its GPU time, scaled so the busiest day fills the height."""
    by_day = {day.date: day for day in used.days}
    # A slot for every day to the end of the last day's month, so the bars keep one width
    # all month and the days still to come show as room left.
    month_end = (used.until.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    count = (month_end - used.since).days + 1
    dates = [used.since + timedelta(days=n) for n in range(count)]
    totals = {when: (day.fine_tune_gpu_seconds, day.generation_gpu_seconds) for when, day in by_day.items()}
    # Credits can leave a day below zero; a bar never goes below the axis.
    peak = max([max(0.0, f + g) for f, g in totals.values()], default=0.0)
    scale = CHART_HEIGHT / peak if peak > 0 else 0.0
    bars = []
    for n, when in enumerate(dates):
        fine_tune, generation = totals.get(when, (0.0, 0.0))
        video_height = max(0.0, generation) * scale
        tune_height = max(0.0, fine_tune) * scale
        bars.append(
            DayBar(
                day=when,
                fine_tune=gpu_time(fine_tune),
                generation=gpu_time(generation),
                total=gpu_time(fine_tune + generation),
                videos=by_day[when].generations if when in by_day else 0,
                x=n * DAY_WIDTH + (DAY_WIDTH - BAR_WIDTH) // 2,
                generation_y=round(CHART_HEIGHT - video_height, 2),
                generation_height=round(video_height, 2),
                fine_tune_y=round(CHART_HEIGHT - video_height - tune_height, 2),
                fine_tune_height=round(tune_height, 2),
                worked=when in by_day,
            )
        )
    return UsageChart(
        since=used.since,
        until=used.until,
        days=bars,
        width=count * DAY_WIDTH,
        height=CHART_HEIGHT,
        bar_width=BAR_WIDTH,
        peak=gpu_time(peak),
        fine_tune_total=gpu_time(used.fine_tunes.gpu_seconds),
        generation_total=gpu_time(used.generations.gpu_seconds),
        total=gpu_time(used.fine_tunes.gpu_seconds + used.generations.gpu_seconds),
    )


class UsagePages(Controller):
    path = "/app/usage"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def usage(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        page: NamedDependency[PageRequest],
    ) -> Template:
        tenant_id = principal.tenant_id
        use = await quotas.tenant_quotas(db_session, tenant_id)
        gpu = next(q for q in use.quotas if q.quota == Quota.GPU_SECONDS_PER_MONTH)
        today = usage.utc_today()
        # GET /v1/usage's default period: this month so far.
        this_month = await usage.tenant_usage(
            db_session, tenant_id, usage.resolve_period(None, None, today), today
        )
        context = {
            "chart": usage_chart(this_month),
            "quotas": use,
            "rows": quota_rows(use),
            "resets_at": gpu.resets_at,
            "billing": await billing.tenant_billing(db_session, settings.billing, tenant_id),
            "status_words": STATUS_WORDS,
            **await tenant_ledger(db_session, tenant_id, page, "/app/usage", links=True),
        }
        return render("usage.html", **await shell(db_session, principal, **context))

    @post("/billing-portal", opt=OWNER)
    async def billing_portal(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Template:
        """Opens a Customer Portal session made now (they expire) and sends the browser there.

        Not with a 303: a redirect that ends on another host after a form post is refused by
        the pages' ``form-action 'self'``, so a page that moves on by itself (a meta refresh,
        which the policy leaves alone, with a link for anyone whose browser does not follow it).
        """
        portal = await billing.portal_session(db_session, settings.billing, principal.tenant_id)
        return render("billing_portal.html", **await shell(db_session, principal, portal_url=portal.url))
