"""A tenant's usage: its charges from the usage ledger, its work and storage from their rows.

GPU seconds and output bytes are the ledger's (``service.usage.ledger``): each charge counts on
the UTC day the work was done (a fine-tune's seconds on the day of each heartbeat, so a run
that spans midnight or a resume splits across days), credits on the day they were given.
Counts of fine-tunes and generations are of their rows, each on the day it finished, or on
today while it has started and not finished; work that never started counts nowhere until it
ends. Every query names the tenant explicitly: a member's request also runs under the tenancy
hook (which adds the same condition), an admin's runs unscoped
(``service.admin.service.get_usage``).

What is charged (one rule, ``docs/billing.md``): a fine-tune's GPU seconds at every heartbeat
and at its end, credited back in full when it fails by the platform's fault; a generation's
share of its batch's seconds and its outputs when it succeeds, or is cancelled after
rendering. A failed generation is never charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Date, Float, Integer, and_, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from core.errors import Invalid
from core.work.status import WorkStatus
from service.generations.models import Generation
from service.jobs.models import FineTuneJob
from service.models.models import ModelVersion
from service.uploads.models import Asset
from service.usage.models import GPU_CHARGES, Charge, LedgerEntry
from service.usage.schemas import FineTuneUsage, GenerationUsage, StorageUsage, UsageDay, UsageOut

# The longest period one request may ask for, in days (both ends included): a leap year.
MAX_DAYS = 366

Work = type[FineTuneJob] | type[Generation]


def utc_today() -> date:
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class Period:
    """UTC days ``since`` to ``until``, both included."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time.min, UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.until + timedelta(days=1), time.min, UTC)

    def holds(self, day: date) -> bool:
        return self.since <= day <= self.until


def resolve_period(since: date | None, until: date | None, today: date) -> Period:
    """The period a request names. ``until`` defaults to today and ``since`` to the first day
    of ``until``'s month, so a request naming neither covers this month so far."""
    hint = "" if until else "; until defaults to today"
    until = until or today
    since = since or until.replace(day=1)
    if since > until:
        raise Invalid(f"since ({since}) is after until ({until}){hint}.")
    days = (until - since).days + 1
    if days > MAX_DAYS:
        raise Invalid(f"A usage period covers at most {MAX_DAYS} days; {since} to {until} is {days} days.")
    return Period(since, until)


class utc_date(FunctionElement[date]):
    """The UTC calendar day of a timestamp column, in each database's own words."""

    type = Date()
    inherit_cache = True


@compiles(utc_date)
def _utc_date(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # A timestamptz becomes a date in the session's time zone; name UTC instead.
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored as UTC text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return f"date({compiler.process(element.clauses, **kw)})"


def _attributed(work: Work, tenant_id: UUID, period: Period, today: date) -> ColumnElement[bool]:
    """The rows of one tenant that count in the period (see the module's docstring)."""
    ended = and_(work.finished_at >= period.start, work.finished_at < period.end)
    if period.holds(today):
        under_way = and_(work.finished_at.is_(None), work.started_at.is_not(None))
        ended = or_(ended, under_way)
    return and_(work.tenant_id == tenant_id, ended)


def _day(work: Work, today: date) -> ColumnElement[date]:
    return func.coalesce(utc_date(work.finished_at), literal(today, Date))


def _charged_in(tenant_id: UUID, period: Period) -> ColumnElement[bool]:
    return and_(
        LedgerEntry.tenant_id == tenant_id,
        LedgerEntry.occurred_at >= period.start,
        LedgerEntry.occurred_at < period.end,
    )


def _count(condition: ColumnElement[bool] | None = None) -> ColumnElement[int]:
    return func.count() if condition is None else func.count().filter(condition)


def _total(column: Any, type_: Any = Float) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), literal_column("0", type_))


async def tenant_usage(session: AsyncSession, tenant_id: UUID, period: Period, today: date) -> UsageOut:
    """The tenant's usage in ``period`` and its storage now; ``today`` is the current UTC day."""
    fine_tunes = (
        await session.execute(
            select(_count(), _count(FineTuneJob.status == WorkStatus.SUCCEEDED))
            .select_from(FineTuneJob)
            .where(_attributed(FineTuneJob, tenant_id, period, today))
        )
    ).one()
    generations = (
        await session.execute(
            select(_count(), _count(Generation.status == WorkStatus.SUCCEEDED))
            .select_from(Generation)
            .where(_attributed(Generation, tenant_id, period, today))
        )
    ).one()
    charged = dict(
        (
            await session.execute(
                select(LedgerEntry.charge, _total(LedgerEntry.quantity))
                .where(_charged_in(tenant_id, period))
                .group_by(LedgerEntry.charge)
            )
        )
        .tuples()
        .all()
    )
    storage = (
        await session.execute(
            select(
                select(_total(Asset.size, Integer)).where(Asset.tenant_id == tenant_id).scalar_subquery(),
                select(_total(ModelVersion.adapter_bytes, Integer))
                .where(ModelVersion.tenant_id == tenant_id)
                .scalar_subquery(),
                select(_total(Generation.output_bytes, Integer))
                .where(Generation.tenant_id == tenant_id, Generation.status == WorkStatus.SUCCEEDED)
                .scalar_subquery(),
            )
        )
    ).one()
    footage, adapters, outputs = (int(n) for n in storage)
    return UsageOut(
        since=period.since,
        until=period.until,
        fine_tunes=FineTuneUsage(
            count=fine_tunes[0],
            succeeded=fine_tunes[1],
            gpu_seconds=float(charged.get(Charge.FINE_TUNE_GPU_SECONDS, 0.0)),
        ),
        generations=GenerationUsage(
            count=generations[0],
            succeeded=generations[1],
            gpu_seconds=float(charged.get(Charge.GENERATION_GPU_SECONDS, 0.0)),
            output_bytes=int(charged.get(Charge.OUTPUT_BYTES, 0)),
        ),
        storage=StorageUsage(
            footage_bytes=footage,
            adapter_bytes=adapters,
            output_bytes=outputs,
            total_bytes=footage + adapters + outputs,
        ),
        days=await _days(session, tenant_id, period, today),
    )


async def _days(session: AsyncSession, tenant_id: UUID, period: Period, today: date) -> list[UsageDay]:
    """Per-day figures: GPU seconds from the ledger by the day they were charged, and the
    generations attributed to each day (see the module's docstring), in two grouped queries."""
    day = utc_date(LedgerEntry.occurred_at)
    seconds: dict[date, dict[Charge, float]] = {}
    for when, charge, quantity in await session.execute(
        select(day, LedgerEntry.charge, _total(LedgerEntry.quantity))
        .where(_charged_in(tenant_id, period), LedgerEntry.charge.in_(GPU_CHARGES))
        .group_by(day, LedgerEntry.charge)
    ):
        seconds.setdefault(when, {})[charge] = float(quantity)
    generation_day = _day(Generation, today)
    counts = {
        when: int(count)
        for when, count in await session.execute(
            select(generation_day, func.count())
            .where(_attributed(Generation, tenant_id, period, today))
            .group_by(generation_day)
        )
    }
    return [
        UsageDay(
            date=when,
            fine_tune_gpu_seconds=seconds.get(when, {}).get(Charge.FINE_TUNE_GPU_SECONDS, 0.0),
            generation_gpu_seconds=seconds.get(when, {}).get(Charge.GENERATION_GPU_SECONDS, 0.0),
            generations=counts.get(when, 0),
        )
        for when in sorted(seconds.keys() | counts.keys())
    ]
