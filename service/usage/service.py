"""A tenant's usage, summed in the database from the rows that already hold it.

Fine-tunes and generations carry their own GPU seconds (``gpu_seconds``), generations their
outputs' size, assets and model versions their sizes; nothing is copied elsewhere. Each figure
group is one aggregate query, so no row is loaded into Python, and every query names the
tenant explicitly: a member's request also runs under the tenancy hook (which adds the same
condition), an admin's runs unscoped (``service.admin.service.get_usage``).

Attribution: a fine-tune or generation counts on the UTC day it finished (``finished_at``:
succeeded, failed or cancelled); one that has started and not finished (``finished_at`` is
null, ``started_at`` is not: running, or queued again after a lost lease or a resume) counts
on today, with the GPU seconds charged so far. Work that never started counts nowhere until
it ends.

Charging: a fine-tune's charged seconds are ``gpu_seconds - waived_gpu_seconds``. When a run
fails by the platform's fault (an internal error, running out of memory, settings the API
accepted but the run refused), the worker waives every second charged to it so far
(``worker.run_job``), so such a job costs nothing and, if resumed, is charged from the resume.
A failure on the tenant's input, and a cancellation, are charged. Generations are charged only
when they succeed or are cancelled after rendering; a failed one never is.
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


def _charged_fine_tune_seconds() -> ColumnElement[float]:
    """A fine-tune's GPU seconds less those waived because it failed by the platform's fault."""
    return FineTuneJob.gpu_seconds - FineTuneJob.waived_gpu_seconds


def _count(condition: ColumnElement[bool] | None = None) -> ColumnElement[int]:
    return func.count() if condition is None else func.count().filter(condition)


def _total(column: Any, type_: Any = Float) -> ColumnElement[Any]:
    return func.coalesce(func.sum(column), literal_column("0", type_))


async def tenant_usage(session: AsyncSession, tenant_id: UUID, period: Period, today: date) -> UsageOut:
    """The tenant's usage in ``period`` and its storage now; ``today`` is the current UTC day."""
    fine_tunes = (
        await session.execute(
            select(
                _count(),
                _count(FineTuneJob.status == WorkStatus.SUCCEEDED),
                _total(_charged_fine_tune_seconds()),
            )
            .select_from(FineTuneJob)
            .where(_attributed(FineTuneJob, tenant_id, period, today))
        )
    ).one()
    generations = (
        await session.execute(
            select(
                _count(),
                _count(Generation.status == WorkStatus.SUCCEEDED),
                _total(Generation.gpu_seconds),
                _total(Generation.output_bytes, Integer),
            )
            .select_from(Generation)
            .where(_attributed(Generation, tenant_id, period, today))
        )
    ).one()
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
            count=fine_tunes[0], succeeded=fine_tunes[1], gpu_seconds=float(fine_tunes[2])
        ),
        generations=GenerationUsage(
            count=generations[0],
            succeeded=generations[1],
            gpu_seconds=float(generations[2]),
            output_bytes=int(generations[3]),
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
    """Per-day figures: every attributed row of both kinds, grouped by its day in one query."""
    zero, one = literal_column("0", Integer), literal_column("1", Integer)
    rows = (
        select(
            _day(FineTuneJob, today).label("day"),
            _charged_fine_tune_seconds().label("fine_tune_gpu_seconds"),
            zero.label("generation_gpu_seconds"),
            zero.label("generations"),
        )
        .where(_attributed(FineTuneJob, tenant_id, period, today))
        .union_all(
            select(
                _day(Generation, today),
                zero,
                Generation.gpu_seconds,
                one,
            ).where(_attributed(Generation, tenant_id, period, today))
        )
        .subquery()
    )
    grouped = await session.execute(
        select(
            rows.c.day,
            _total(rows.c.fine_tune_gpu_seconds),
            _total(rows.c.generation_gpu_seconds),
            _total(rows.c.generations, Integer),
        )
        .group_by(rows.c.day)
        .order_by(rows.c.day)
    )
    return [
        UsageDay(
            date=day,
            fine_tune_gpu_seconds=float(fine_tune),
            generation_gpu_seconds=float(generation),
            generations=int(count),
        )
        for day, fine_tune, generation, count in grouped
    ]
