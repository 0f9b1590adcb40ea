"""Turns events of fine-tunes and generations into signed deliveries, and sends them.

The workers' ``webhooks`` role runs it.

A round has three steps, each safe to run in several processes at once:

1. Fan out. Events of the last ``lookback_seconds`` that an enabled endpoint of their
   tenant subscribes to, and that have no delivery for that endpoint yet, become queued
   deliveries. An anti-join against the deliveries decides what is new, not a cursor, so
   an event committed late or out of order by another process is still found. The unique
   (endpoint, event) pair makes a second replica's identical insert a no-op, and is what
   guarantees one delivery per event.
2. Claim. Deliveries are queued work (``core.work``), claimed through ``WorkQueue`` like
   fine-tunes and generations: the expiry sweep first, then due deliveries of enabled
   endpoints (``not_before`` passed), oldest due first, by the one conditional claim that
   counts the attempt and leases the delivery for the request's time limit and a margin.
   A dispatcher that dies leaves its leases to lapse, and the delivery is queued again.
3. Send and record. Each claimed delivery is POSTed once; its result is recorded only while
   the dispatcher still holds that attempt, and every recorded attempt is logged. A 2xx
   finishes it succeeded; anything else is ``WorkQueue.retry``: queued again not before the
   backoff, failed after ``max_attempts``, cancelled if its endpoint was disabled meanwhile.
   A dispatcher cancelled mid-round (its worker shutting down) hands back what it has not
   recorded, without counting those attempts.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import anyio
import httpx
from sqlalchemy import Row, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import Invalid
from core.settings import WebhookSettings
from core.work.queue import WorkEvent, WorkKind, WorkQueue, ignore_lost_race
from core.work.status import WorkStatus
from service.db.engine import uninterrupted
from service.db.inserts import insert_ignoring_duplicates
from service.db.tenancy import unscoped_session
from service.webhooks.feeds import FEEDS, Feed, FeedEvent
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from service.webhooks.signing import endpoint_secret, signature_header, signing_key
from service.webhooks.urls import parse_endpoint_url, resolve_endpoint

logger = logging.getLogger("rushes.webhooks")

# Deliveries created per round; the rest wait for the next round.
_FAN_OUT_BATCH = 1000
# A lease outlives the request's own time limit by this much before another replica may retry.
_LEASE_MARGIN_SECONDS = 30.0
# How much of a failing answer's body the delivery log keeps.
_ERROR_BODY_CHARS = 500
USER_AGENT = "Rushes-Webhooks/1"


@dataclass(frozen=True, slots=True)
class DispatchReport:
    queued: int  # deliveries created
    sent: int  # attempts made
    succeeded: int
    failed: int  # deliveries that ran out of attempts


@dataclass(frozen=True, slots=True)
class Claim:
    """One delivery a dispatcher holds: what it needs to send it, and the attempt it claimed."""

    delivery_id: UUID
    tenant_id: UUID
    owner: str
    attempt: int
    event_id: UUID
    payload: dict[str, Any]
    url: str
    endpoint_id: UUID
    secret_version: int
    secret_rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def _log_event(
    session: AsyncSession, delivery: WebhookDelivery, event: WorkEvent, data: dict[str, Any]
) -> None:
    """Deliveries keep no event log (their attempt log is what users read); the core's events are logged."""
    logger.info("webhook delivery %s %s", delivery.id, event, extra={"delivery": str(delivery.id), **data})


DELIVERIES: WorkKind[WebhookDelivery] = WorkKind(
    WebhookDelivery, _log_event, noun="webhook delivery", retry_hint="redeliver it to try again"
)


def _now() -> datetime:
    return datetime.now(UTC)


def _first_id_at(moment: datetime) -> UUID:
    """The smallest UUIDv7 made at or after ``moment``. Event ids are time-ordered, so a range
    on the primary key is a time window on an indexed column."""
    millis = int(moment.timestamp() * 1000)
    return UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62))


def http_client(settings: WebhookSettings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=settings.request_timeout_seconds,
        follow_redirects=False,
        # A proxy from the environment would choose the address, undoing the address check.
        trust_env=False,
        # Every request connects to the address it just checked; a pooled connection could
        # be one opened for another host name on that address, under that name's certificate.
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def dispatcher_name() -> str:
    """A lease owner no other dispatcher uses: host, process and a random part."""
    return f"webhooks@{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"


def delivery_lease_seconds(settings: WebhookSettings) -> float:
    """How long a claimed delivery is held: the request's own time limit and a margin."""
    return settings.request_timeout_seconds + _LEASE_MARGIN_SECONDS


async def dispatch_once(
    sessions: async_sessionmaker[AsyncSession],
    settings: WebhookSettings,
    data_dir: Path,
    *,
    http: httpx.AsyncClient | None = None,
    now: datetime | None = None,
    owner: str | None = None,
) -> DispatchReport:
    """One round: create the deliveries new events call for, then send what is due."""
    now = now or _now()
    owner = owner or dispatcher_name()
    queue = DeliveryQueue(sessions, settings)
    queued = await _fan_out(sessions, settings, now)
    claims = await queue.claim(owner, now, settings.concurrency)
    if not claims:
        return DispatchReport(queued, 0, 0, 0)
    key = signing_key(settings, data_dir)
    statuses: list[WorkStatus | None] = []
    unrecorded = {claim.delivery_id: claim for claim in claims}

    async def deliver(claim: Claim, client: httpx.AsyncClient) -> None:
        outcome = await _attempt(client, claim, _secrets(key, claim, settings, now), settings)
        statuses.append(await queue.record(claim, outcome, now))
        del unrecorded[claim.delivery_id]

    try:
        async with (
            http_client(settings) if http is None else nullcontext(http) as client,
            anyio.create_task_group() as tasks,
        ):
            for claim in claims:
                tasks.start_soon(deliver, claim, client)
    finally:
        if unrecorded:  # cancelled, or a record failed: hand the rest back now
            with anyio.CancelScope(shield=True):
                try:
                    await queue.release(owner, list(unrecorded), _now())
                except Exception:
                    logger.exception("handing back %d webhook deliveries failed", len(unrecorded))
    return DispatchReport(
        queued,
        len(claims),
        statuses.count(WorkStatus.SUCCEEDED),
        statuses.count(WorkStatus.FAILED),
    )


async def run_webhook_dispatcher(
    sessions: async_sessionmaker[AsyncSession],
    settings: WebhookSettings,
    data_dir: Path,
    *,
    owner: str | None = None,
) -> None:
    """Rounds until cancelled; a full round goes again at once, as more is likely due.

    ``owner`` names this dispatcher's leases; one kept across restarts (a worker's own name)
    ends the leases its previous run held as it starts, instead of waiting for them to lapse.
    """
    if owner is not None:
        await uninterrupted(DeliveryQueue(sessions, settings).abandon(owner))
    owner = owner or dispatcher_name()
    async with http_client(settings) as http:
        while True:
            sent = 0
            try:
                round_ = dispatch_once(sessions, settings, data_dir, http=http, owner=owner)
                sent = (await uninterrupted(round_)).sent
            except Exception:
                logger.exception("webhook dispatch failed; trying again next round")
            if sent < settings.concurrency:
                await anyio.sleep(settings.poll_interval_seconds)


def _session(sessions: async_sessionmaker[AsyncSession]) -> AsyncSession:
    return unscoped_session(sessions)  # the dispatcher serves every tenant


async def _fan_out(
    sessions: async_sessionmaker[AsyncSession], settings: WebhookSettings, now: datetime
) -> int:
    async with _session(sessions) as session:
        endpoints = (
            await session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(WebhookEndpoint.enabled)
            )
        ).all()
        created = 0
        for feed in FEEDS:
            created += await _fan_out_feed(session, settings, now, feed, endpoints)
        return created


async def _fan_out_feed(
    session: AsyncSession,
    settings: WebhookSettings,
    now: datetime,
    feed: Feed,
    endpoints: Sequence[Row[tuple[UUID, list[str]]]],
) -> int:
    """Queue the deliveries one event log's new events call for."""
    subscriptions: dict[tuple[str, ...], list[UUID]] = {}
    for endpoint_id, event_types in endpoints:
        own = tuple(sorted(feed.own_types(event_types)))
        if own:
            subscriptions.setdefault(own, []).append(endpoint_id)
    if not subscriptions:
        return 0
    event = feed.event
    # Endpoints grouped by the types they take: the type filter stays in SQL, so events
    # nobody subscribes to (progress, mostly) are never read, round after round.
    subscribed = or_(
        *(and_(WebhookEndpoint.id.in_(ids), event.type.in_(types)) for types, ids in subscriptions.items())
    )
    delivered = exists().where(
        WebhookDelivery.endpoint_id == WebhookEndpoint.id, WebhookDelivery.event_id == event.id
    )
    missing = (
        select(event, WebhookEndpoint.id)
        .join(
            WebhookEndpoint,
            and_(
                WebhookEndpoint.tenant_id == event.tenant_id,
                event.created_at >= WebhookEndpoint.enabled_at,
            ),
        )
        .where(
            event.id >= _first_id_at(now - timedelta(seconds=settings.lookback_seconds)),
            subscribed,
            ~delivered,
        )
        .order_by(event.id)
        .limit(_FAN_OUT_BATCH)
    )
    rows = [
        {
            "tenant_id": found.tenant_id,
            "endpoint_id": endpoint_id,
            "event_id": found.id,
            "event_type": f"{feed.kind}.{found.type}",
            "payload": feed.payload(found),
            "status": WorkStatus.QUEUED,
            "attempts": 0,
            "max_attempts": settings.max_attempts,
            "queued_at": now,
            "not_before": now,
        }
        for found, endpoint_id in cast(
            "list[tuple[FeedEvent, UUID]]", (await session.execute(missing)).tuples().all()
        )
    ]
    if not rows:
        return 0
    insert = insert_ignoring_duplicates(session, WebhookDelivery, ["endpoint_id", "event_id"]).returning(
        WebhookDelivery.id
    )
    created = 0
    async with ignore_lost_race(session):  # lost: the next round finds them again
        created = len((await session.scalars(insert, rows)).all())
        await session.commit()
    return created


class DeliveryQueue:
    """Webhook deliveries as queued work: what to claim is chosen here, the leases are ``WorkQueue``'s."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: WebhookSettings,
        lease_seconds: float | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.work = WorkQueue(DELIVERIES, lease_seconds or delivery_lease_seconds(settings))

    def _session(self) -> AsyncSession:
        return _session(self.sessions)

    async def claim(self, owner: str, now: datetime, limit: int) -> list[Claim]:
        """Sweep lapsed leases, then claim up to ``limit`` due deliveries of enabled endpoints,
        oldest due first."""
        async with self._session() as session, ignore_lost_race(session):  # lost: ask again next round
            await self.work.expire(session, now)
            await session.commit()
            due = await session.scalars(
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == WorkStatus.QUEUED, *self.work.due(now), WebhookEndpoint.enabled
                )
                .order_by(WebhookDelivery.not_before, WebhookDelivery.id)
                .limit(limit)
            )
            ids = list(due.all())
            # The claim starts a transaction of its own with its write.
            await session.rollback()
            if not ids:
                return []
            claimed = await self.work.claim(session, owner, ids, now)
            if not claimed:
                await session.rollback()
                return []
            endpoints = {
                endpoint.id: endpoint
                for endpoint in await session.scalars(
                    select(WebhookEndpoint).where(WebhookEndpoint.id.in_({d.endpoint_id for d in claimed}))
                )
            }
            claims = [
                Claim(
                    delivery_id=delivery.id,
                    tenant_id=delivery.tenant_id,
                    owner=owner,
                    attempt=delivery.attempts,
                    event_id=delivery.event_id,
                    payload=delivery.payload,
                    url=endpoints[delivery.endpoint_id].url,
                    endpoint_id=delivery.endpoint_id,
                    secret_version=endpoints[delivery.endpoint_id].secret_version,
                    secret_rotated_at=endpoints[delivery.endpoint_id].secret_rotated_at,
                )
                for delivery in claimed
            ]
            await session.commit()
            return claims
        return []

    async def record(self, claim: Claim, outcome: Outcome, now: datetime) -> WorkStatus | None:
        """Store the attempt and its delivery's new status; None when the claim was lost (the
        endpoint deleted, or the lease lapsed and another dispatcher took the delivery)."""
        logger.info(
            "webhook delivery %s attempt %d to %s: %s in %d ms",
            claim.delivery_id,
            claim.attempt,
            claim.url,
            outcome.error or f"HTTP {outcome.status_code}",
            outcome.duration_ms,
        )
        result: dict[str, Any] = {
            "last_attempt_at": now,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "last_duration_ms": outcome.duration_ms,
        }
        ids, owner, attempt = [claim.delivery_id], claim.owner, claim.attempt
        async with self._session() as session:
            # Written first thing in the transaction (``WorkQueue``'s held operations are), so
            # SQLite queues it behind other writers instead of refusing it as a lost race.
            if outcome.ok:
                rows = await self.work.finish(
                    session,
                    owner,
                    ids,
                    WorkStatus.SUCCEEDED,
                    now,
                    attempt=attempt,
                    delivered_at=now,
                    **result,
                )
            else:
                retry_at = now + _retry_delay(claim.attempt, self.settings)
                reason = outcome.error or f"HTTP {outcome.status_code}"
                rows = await self.work.retry(
                    session, owner, ids, now, retry_at, reason=reason, attempt=attempt, **result
                )
            if not rows:
                await session.rollback()
                return None
            session.add(
                WebhookAttempt(
                    tenant_id=claim.tenant_id,
                    delivery_id=claim.delivery_id,
                    number=claim.attempt,
                    url=claim.url,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                    created_at=now,
                )
            )
            status = rows[0].status
            await session.commit()
        return status

    async def release(self, owner: str, ids: list[UUID], now: datetime | None = None) -> list[UUID]:
        """Hand back deliveries this dispatcher holds without counting their attempts (it is
        stopping); returns those handed back."""
        async with self._session() as session:
            released = await self.work.release(session, owner, ids, now or _now())
            await session.commit()
        return [delivery.id for delivery in released]

    async def abandon(self, owner: str, now: datetime | None = None) -> None:
        """End now the leases a dead dispatcher of this name held, as if they had lapsed."""
        async with self._session() as session:
            await self.work.abandon(session, owner, now or _now())
            await session.commit()


def _secrets(key: bytes, claim: Claim, settings: WebhookSettings, now: datetime) -> list[str]:
    current = [endpoint_secret(key, claim.endpoint_id, claim.secret_version)]
    rotated = claim.secret_rotated_at
    if rotated is not None and now - rotated < timedelta(seconds=settings.rotation_overlap_seconds):
        current.append(endpoint_secret(key, claim.endpoint_id, claim.secret_version - 1))
    return current


async def _attempt(
    http: httpx.AsyncClient, claim: Claim, secrets: list[str], settings: WebhookSettings
) -> Outcome:
    body = json.dumps(claim.payload, separators=(",", ":")).encode()
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        # The limit covers the name lookup too, which httpx's own timeout does not.
        with anyio.fail_after(settings.request_timeout_seconds):
            url = parse_endpoint_url(claim.url, allow_http_loopback=settings.allow_http_loopback)
            addresses = await resolve_endpoint(url, allow_http_loopback=settings.allow_http_loopback)
            timestamp = int(time.time())
            headers = {
                "Host": url.netloc.decode("ascii"),
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Rushes-Event-Id": str(claim.event_id),
                "Rushes-Timestamp": str(timestamp),
                "Rushes-Signature": signature_header(secrets, timestamp, body),
            }
            response = await post_pinned(http, url, addresses, body, headers)
            try:
                status_code = response.status_code
                if response.is_redirect:
                    error = f"HTTP {status_code}: redirects are not followed"
                elif not response.is_success:
                    error = f"HTTP {status_code}" + await _body_excerpt(response)
            finally:
                await response.aclose()
    except Invalid as exc:
        error = exc.detail
    except (TimeoutError, httpx.TimeoutException):
        error = f"No answer within {settings.request_timeout_seconds:g} s."
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Outcome(status_code, error, round((time.monotonic() - started) * 1000))


async def post_pinned(
    http: httpx.AsyncClient, url: httpx.URL, addresses: list[str], body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """Connect to the addresses just checked, never to a second lookup's answer (which could
    differ), trying each in turn as a browser would: a host with an IPv6 address may not be
    reachable over IPv6 from here."""
    # TLS verifies the certificate against the URL's host, not the address connected to.
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}

    def to(address: str) -> httpx.Request:
        return http.build_request(
            "POST", url.copy_with(host=address), content=body, headers=headers, extensions=extensions
        )

    for address in addresses[:-1]:
        with suppress(httpx.ConnectError):
            return await http.send(to(address), stream=True)
    return await http.send(to(addresses[-1]), stream=True)


async def _body_excerpt(response: httpx.Response) -> str:
    received = b""
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) >= _ERROR_BODY_CHARS * 4:
            break
    text = received.decode("utf-8", "replace").strip()[:_ERROR_BODY_CHARS]
    return f": {text}" if text else ""


def _retry_delay(attempt: int, settings: WebhookSettings) -> timedelta:
    # The exponent is bounded so that a generous max_attempts cannot overflow the float.
    backoff = min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** min(attempt - 1, 40))
    # Jitter spreads the retries of many deliveries that failed together (one outage).
    return timedelta(seconds=backoff * random.uniform(0.5, 1.0))


__all__ = [
    "DELIVERIES",
    "Claim",
    "DeliveryQueue",
    "DispatchReport",
    "Outcome",
    "delivery_lease_seconds",
    "dispatch_once",
    "dispatcher_name",
    "http_client",
    "post_pinned",
    "run_webhook_dispatcher",
]
