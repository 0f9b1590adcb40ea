"""Queue figures for Prometheus, read from the database when ``/metrics`` is scraped.

Every API replica reads the same database, so each reports the same platform-wide
numbers: dashboards take their ``max``, not their sum. Labels are bounded sets (kind and
status), never a tenant. One aggregate query reads all the queues, and its answer is
reused for ``cache_seconds`` so that many scrapers cost the database one query. Besides the
leased work, ``upload_check`` counts direct uploads waiting for (queued) or under (running)
the ingest role's checks: if no worker runs that role, they only pile up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Select, case, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.work.lease import Leased
from core.work.status import WorkStatus
from service.db.tenancy import unscoped_session
from service.generations.models import Generation
from service.jobs.models import FineTuneJob
from service.uploads.models import UploadSession, UploadStatus
from service.webhooks.models import WebhookDelivery

logger = logging.getLogger("rushes.metrics")

# The queues, by the ``kind`` label they are reported under.
QUEUES: dict[str, type[Leased]] = {
    "fine_tune": FineTuneJob,
    "generation": Generation,
    "webhook_delivery": WebhookDelivery,
}
UPLOAD_CHECK = "upload_check"
KINDS = (*QUEUES, UPLOAD_CHECK)
OPEN = (WorkStatus.QUEUED, WorkStatus.RUNNING)

ITEMS = "rushes_work_items"
OLDEST_QUEUED = "rushes_work_oldest_queued_age_seconds"
LEASES_EXPIRED = "rushes_work_leases_expired"


@dataclass(frozen=True)
class QueueFigures:
    counts: dict[WorkStatus, int]
    # When the longest-waiting queued piece became due; None when nothing waits.
    oldest_due: datetime | None
    # Running work whose lease ran out and that no sweep has ended yet: its worker died
    # or stalled, and no live worker has swept since.
    leases_expired: int


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    queues: dict[str, QueueFigures]


def _figures(
    kind: str, model: type[Leased], now: datetime
) -> Select[tuple[str, WorkStatus, int, datetime | None, int]]:
    # When queued work became claimable: a webhook delivery waiting out its retry backoff is
    # not late, so it counts from ``not_before``, and only once that has passed.
    due = WebhookDelivery.not_before if model is WebhookDelivery else model.queued_at
    return (
        select(
            literal(kind).label("kind"),
            model.status,
            func.count().label("items"),
            func.min(case((due <= now, due))).label("oldest_due"),
            func.sum(case((model.lease_expires_at < now, 1), else_=0)).label("expired"),
        )
        .where(model.status.in_(OPEN))
        .group_by(model.status)
    )


def _upload_checks(now: datetime) -> Select[tuple[str, WorkStatus, int, datetime | None, int]]:
    # An upload is under a check while a worker's claim holds; waiting otherwise, since the
    # last change to its row (completion, or a claim that ran out or was handed back).
    claimed = UploadSession.verify_until > now
    status = case((claimed, literal(WorkStatus.RUNNING.name)), else_=literal(WorkStatus.QUEUED.name))
    return (
        select(
            literal(UPLOAD_CHECK).label("kind"),
            status.label("status"),
            func.count().label("items"),
            func.min(UploadSession.updated_at).label("oldest_due"),
            # A claim is never swept: a lapsed one is simply claimable again.
            literal(0).label("expired"),
        )
        .where(UploadSession.status == UploadStatus.VERIFYING)
        .group_by(status)
    )


async def read_snapshot(session: AsyncSession) -> Snapshot:
    now = datetime.now(UTC)
    statement = union_all(
        *(_figures(kind, model, now) for kind, model in QUEUES.items()), _upload_checks(now)
    )
    counts: dict[str, dict[WorkStatus, int]] = {kind: {} for kind in KINDS}
    oldest: dict[str, datetime | None] = dict.fromkeys(KINDS)
    expired = dict.fromkeys(KINDS, 0)
    for kind, status, items, oldest_due, stale in (await session.execute(statement)).tuples():
        counts[kind][status] = items
        expired[kind] += stale
        if status is WorkStatus.QUEUED:
            oldest[kind] = oldest_due
    return Snapshot(
        at=now,
        queues={kind: QueueFigures(counts[kind], oldest[kind], expired[kind]) for kind in KINDS},
    )


class WorkCollector(Collector):
    """The queue gauges, from the last snapshot ``refresh`` took."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_seconds: float) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.snapshot: Snapshot | None = None
        self._taken = -float("inf")
        self._lock = anyio.Lock()

    async def refresh(self) -> None:
        """Read the queues again unless the last read is recent; concurrent scrapes share one read."""
        if self._fresh():
            return
        async with self._lock:
            if self._fresh():
                return
            try:
                async with unscoped_session(self.sessions) as session:
                    self.snapshot = await read_snapshot(session)
            except Exception:
                # The scrape still answers with the HTTP and process metrics; gauges that
                # would be stale are left out rather than reported as current.
                logger.exception("metrics: reading the queues failed")
                self.snapshot = None
            # A failed read is not retried sooner either: a struggling database is not hammered.
            self._taken = time.monotonic()

    def _fresh(self) -> bool:
        return time.monotonic() - self._taken < self.cache_seconds

    def describe(self) -> Iterable[Metric]:
        return _families()

    def collect(self) -> Iterable[Metric]:
        if self.snapshot is None:
            return []
        families = _families()
        items, oldest, expired = families
        for kind, figures in self.snapshot.queues.items():
            for status in OPEN:
                items.add_metric([kind, status.value], figures.counts.get(status, 0))
            waited = (self.snapshot.at - figures.oldest_due).total_seconds() if figures.oldest_due else 0.0
            oldest.add_metric([kind], max(waited, 0.0))
            expired.add_metric([kind], figures.leases_expired)
        return families


def _families() -> Sequence[GaugeMetricFamily]:
    return (
        GaugeMetricFamily(
            ITEMS,
            "Queued and running work, platform-wide (every API replica reports the same)",
            labels=["kind", "status"],
        ),
        GaugeMetricFamily(
            OLDEST_QUEUED,
            "Seconds the longest-waiting queued work has waited since it was queued (webhook "
            "deliveries: since their retry fell due); 0 when nothing waits",
            labels=["kind"],
        ),
        GaugeMetricFamily(
            LEASES_EXPIRED,
            "Running work whose lease ran out and that no worker has swept back to the queue yet",
            labels=["kind"],
        ),
    )
