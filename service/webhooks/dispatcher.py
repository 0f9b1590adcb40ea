"""Turns job events into signed deliveries and sends them; runs in every API replica.

A round has three steps, each safe to run in several processes at once:

1. Fan out. Events of the last ``lookback_seconds`` that an enabled endpoint of their
   tenant subscribes to, and that have no delivery for that endpoint yet, become pending
   deliveries. An anti-join against the deliveries decides what is new, not a cursor, so
   an event committed late or out of order by another process is still found. The unique
   (endpoint, event) pair makes a second replica's identical insert a no-op, and is what
   guarantees one delivery per event.
2. Claim. Due deliveries are claimed by counting the attempt and moving ``next_attempt_at``
   past the request's time limit: ``FOR UPDATE SKIP LOCKED`` passes over rows another
   replica is claiming (PostgreSQL), and the conditional update gives one winner on any
   database. The claim of a dispatcher that dies lapses, and the delivery is due again.
3. Send and record. Each claimed delivery is POSTed once; its result is recorded only if
   the attempt count still matches the claim, and every attempt is logged.
"""

from __future__ import annotations

import json
import logging
import random
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import anyio
import httpx
from sqlalchemy import CursorResult, and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import Invalid
from core.settings import WebhookSettings
from core.work.queue import is_lost_race
from service.db.tenancy import unscoped_session
from service.jobs.models import JobEvent
from service.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from service.webhooks.signing import endpoint_secret, signature_header, signing_key
from service.webhooks.urls import parse_endpoint_url, resolve_endpoint

logger = logging.getLogger("rushes.webhooks")

# Deliveries created per round; the rest wait for the next round.
_FAN_OUT_BATCH = 1000
# A claim outlives the request's own time limit by this much before another replica may retry.
_CLAIM_MARGIN = timedelta(seconds=30)
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
class _Claim:
    delivery_id: UUID
    tenant_id: UUID
    attempt: int
    event_id: UUID
    payload: dict[str, Any]
    url: str
    endpoint_id: UUID
    secret_version: int
    secret_rotated_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _now() -> datetime:
    return datetime.now(UTC)


def _first_id_at(moment: datetime) -> UUID:
    """The smallest UUIDv7 made at or after ``moment``. Event ids are time-ordered, so a range
    on the primary key is a time window on an indexed column."""
    millis = int(moment.timestamp() * 1000)
    return UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62))


def _payload(event: JobEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "tenant_id": str(event.tenant_id),
        "job_id": str(event.job_id),
        "seq": event.seq,
        "data": event.data,
    }


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


async def dispatch_once(
    sessions: async_sessionmaker[AsyncSession],
    settings: WebhookSettings,
    data_dir: Path,
    *,
    http: httpx.AsyncClient | None = None,
    now: datetime | None = None,
) -> DispatchReport:
    """One round: create the deliveries new events call for, then send what is due."""
    now = now or _now()
    queued = await _fan_out(sessions, settings, now)
    claims = await _claim(sessions, settings, now)
    if not claims:
        return DispatchReport(queued, 0, 0, 0)
    key = signing_key(settings, data_dir)
    statuses: list[DeliveryStatus | None] = []

    async def deliver(claim: _Claim, client: httpx.AsyncClient) -> None:
        outcome = await _attempt(client, claim, _secrets(key, claim, settings, now), settings)
        statuses.append(await _record(sessions, claim, outcome, settings, now))

    async with (
        http_client(settings) if http is None else nullcontext(http) as client,
        anyio.create_task_group() as tasks,
    ):
        for claim in claims:
            tasks.start_soon(deliver, claim, client)
    return DispatchReport(
        queued,
        len(claims),
        statuses.count(DeliveryStatus.SUCCEEDED),
        statuses.count(DeliveryStatus.FAILED),
    )


async def run_webhook_dispatcher(
    sessions: async_sessionmaker[AsyncSession], settings: WebhookSettings, data_dir: Path
) -> None:
    """Rounds until cancelled; a full round goes again at once, as more is likely due."""
    async with http_client(settings) as http:
        while True:
            sent = 0
            try:
                sent = (await dispatch_once(sessions, settings, data_dir, http=http)).sent
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
        subscriptions: dict[tuple[str, ...], list[UUID]] = {}
        for endpoint_id, event_types in await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(WebhookEndpoint.enabled)
        ):
            subscriptions.setdefault(tuple(sorted(event_types)), []).append(endpoint_id)
        if not subscriptions:
            return 0
        # Endpoints grouped by the types they take: the type filter stays in SQL, so events
        # nobody subscribes to (progress, mostly) are never read, round after round.
        subscribed = or_(
            *(
                and_(WebhookEndpoint.id.in_(ids), JobEvent.type.in_(types))
                for types, ids in subscriptions.items()
            )
        )
        delivered = exists().where(
            WebhookDelivery.endpoint_id == WebhookEndpoint.id, WebhookDelivery.event_id == JobEvent.id
        )
        missing = (
            select(JobEvent, WebhookEndpoint.id)
            .join(
                WebhookEndpoint,
                and_(
                    WebhookEndpoint.tenant_id == JobEvent.tenant_id,
                    JobEvent.created_at >= WebhookEndpoint.enabled_at,
                ),
            )
            .where(
                JobEvent.id >= _first_id_at(now - timedelta(seconds=settings.lookback_seconds)),
                subscribed,
                ~delivered,
            )
            .order_by(JobEvent.id)
            .limit(_FAN_OUT_BATCH)
        )
        rows = [
            {
                "tenant_id": event.tenant_id,
                "endpoint_id": endpoint_id,
                "event_id": event.id,
                "event_type": event.type,
                "payload": _payload(event),
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
            }
            for event, endpoint_id in (await session.execute(missing)).tuples()
        ]
        if not rows:
            return 0
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = (
            dialect.insert(WebhookDelivery)
            .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
            .returning(WebhookDelivery.id)
        )
        try:
            created = len((await session.scalars(insert, rows)).all())
            await session.commit()
        except OperationalError as exc:
            if not is_lost_race(exc):
                raise
            await session.rollback()
            return 0
        return created


async def _claim(
    sessions: async_sessionmaker[AsyncSession], settings: WebhookSettings, now: datetime
) -> list[_Claim]:
    async with _session(sessions) as session:
        due = (
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(settings.concurrency)
        )
        if session.get_bind().dialect.name != "sqlite":  # SQLite has no row locks; its writers queue
            due = due.with_for_update(skip_locked=True, of=WebhookDelivery)
        try:
            ids = list((await session.scalars(due)).all())
            if not ids:
                return []
            claimed = list(
                (
                    await session.scalars(
                        update(WebhookDelivery)
                        .where(
                            WebhookDelivery.id.in_(ids),
                            WebhookDelivery.status == DeliveryStatus.PENDING,
                            WebhookDelivery.next_attempt_at <= now,
                        )
                        .values(
                            attempts=WebhookDelivery.attempts + 1,
                            next_attempt_at=now
                            + timedelta(seconds=settings.request_timeout_seconds)
                            + _CLAIM_MARGIN,
                        )
                        .returning(WebhookDelivery.id)
                        .execution_options(synchronize_session=False)
                    )
                ).all()
            )
            rows = (
                await session.execute(
                    select(
                        WebhookDelivery.id.label("delivery_id"),
                        WebhookDelivery.tenant_id,
                        WebhookDelivery.attempts.label("attempt"),
                        WebhookDelivery.event_id,
                        WebhookDelivery.payload,
                        WebhookEndpoint.url,
                        WebhookDelivery.endpoint_id,
                        WebhookEndpoint.secret_version,
                        WebhookEndpoint.secret_rotated_at,
                    )
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_(claimed))
                )
            ).mappings()
            claims = [_Claim(**row) for row in rows]
            await session.commit()
        except OperationalError as exc:
            if not is_lost_race(exc):
                raise
            await session.rollback()
            return []
        return claims


def _secrets(key: bytes, claim: _Claim, settings: WebhookSettings, now: datetime) -> list[str]:
    current = [endpoint_secret(key, claim.endpoint_id, claim.secret_version)]
    rotated = claim.secret_rotated_at
    if rotated is not None and now - rotated < timedelta(seconds=settings.rotation_overlap_seconds):
        current.append(endpoint_secret(key, claim.endpoint_id, claim.secret_version - 1))
    return current


async def _attempt(
    http: httpx.AsyncClient, claim: _Claim, secrets: list[str], settings: WebhookSettings
) -> _Outcome:
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
    return _Outcome(status_code, error, round((time.monotonic() - started) * 1000))


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


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    claim: _Claim,
    outcome: _Outcome,
    settings: WebhookSettings,
    now: datetime,
) -> DeliveryStatus | None:
    """Store the attempt; None when the claim was lost (the endpoint deleted, or the claim
    lapsed and another replica took the delivery)."""
    if outcome.ok:
        status, next_attempt_at = DeliveryStatus.SUCCEEDED, None
    elif claim.attempt >= settings.max_attempts:
        status, next_attempt_at = DeliveryStatus.FAILED, None
    else:
        status, next_attempt_at = DeliveryStatus.PENDING, now + _retry_delay(claim.attempt, settings)
    logger.info(
        "webhook delivery %s attempt %d to %s: %s in %d ms",
        claim.delivery_id,
        claim.attempt,
        claim.url,
        outcome.error or f"HTTP {outcome.status_code}",
        outcome.duration_ms,
    )
    async with _session(sessions) as session:
        # Written first thing in the transaction, so SQLite queues it behind other writers
        # instead of refusing it as a lost race.
        result = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == claim.delivery_id,
                WebhookDelivery.attempts == claim.attempt,
                WebhookDelivery.status == DeliveryStatus.PENDING,
            )
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                last_attempt_at=now,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                last_duration_ms=outcome.duration_ms,
                delivered_at=now if outcome.ok else WebhookDelivery.delivered_at,
            )
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
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
        await session.commit()
    return status


__all__ = ["DispatchReport", "dispatch_once", "http_client", "post_pinned", "run_webhook_dispatcher"]
