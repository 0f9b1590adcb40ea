"""Webhook endpoints and their delivery log, as the API sees them (one tenant's session)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from core.errors import Conflict, NotFound
from core.settings import WebhookSettings
from core.work.status import WorkStatus
from service.db.pagination import PageRequest, fetch_page
from service.webhooks.feeds import DEFAULT_EVENT_TYPES
from service.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, work_statuses
from service.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from service.webhooks.signing import endpoint_secret, signing_key
from service.webhooks.urls import parse_endpoint_url, resolve_endpoint


async def _checked_url(raw: str, settings: WebhookSettings) -> str:
    url = parse_endpoint_url(raw, allow_http_loopback=settings.allow_http_loopback)
    await resolve_endpoint(url, allow_http_loopback=settings.allow_http_loopback)
    return str(url)


def _with_secret(endpoint: WebhookEndpoint, settings: WebhookSettings, data_dir: Path) -> WebhookWithSecret:
    secret = endpoint_secret(signing_key(settings, data_dir), endpoint.id, endpoint.secret_version)
    return WebhookWithSecret(**WebhookOut.model_validate(endpoint).model_dump(), secret=secret)


async def create_endpoint(
    session: AsyncSession, body: WebhookCreate, settings: WebhookSettings, data_dir: Path
) -> WebhookWithSecret:
    count = await session.scalar(select(func.count(WebhookEndpoint.id)))
    if (count or 0) >= settings.max_endpoints_per_tenant:
        raise Conflict(
            f"A tenant may have at most {settings.max_endpoints_per_tenant} webhook endpoints; "
            "delete one first."
        )
    endpoint = WebhookEndpoint(
        # The id is chosen here because the secret shown below is derived from it.
        id=uuid7(),
        url=await _checked_url(body.url, settings),
        description=body.description,
        event_types=list(body.event_types or DEFAULT_EVENT_TYPES),
        enabled=body.enabled,
        enabled_at=datetime.now(UTC),
    )
    session.add(endpoint)
    await session.commit()
    return _with_secret(endpoint, settings, data_dir)


async def get_endpoint(session: AsyncSession, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


async def list_endpoints(session: AsyncSession, page: PageRequest) -> tuple[list[WebhookEndpoint], int]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc())
    rows, total = await fetch_page(session, stmt, page)
    return list(rows), total


async def update_endpoint(
    session: AsyncSession, endpoint_id: UUID, body: WebhookUpdate, settings: WebhookSettings
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, endpoint_id)
    if body.url is not None:
        endpoint.url = await _checked_url(body.url, settings)
    if body.description is not None:
        endpoint.description = body.description
    if body.event_types is not None:
        endpoint.event_types = list(body.event_types)
    if body.enabled is not None:
        if body.enabled and not endpoint.enabled:
            endpoint.enabled_at = datetime.now(UTC)
            await resume_deliveries(session, endpoint.id)
        elif not body.enabled and endpoint.enabled:
            await pause_deliveries(session, endpoint.id, datetime.now(UTC))
        endpoint.enabled = body.enabled
    await session.commit()
    return endpoint


async def pause_deliveries(session: AsyncSession, endpoint_id: UUID, now: datetime) -> None:
    """Disabling an endpoint is its deliveries' cancel (``core.work``): queued ones end cancelled
    now, and one being attempted is asked to stop. That one's result is still recorded, but a
    refused attempt, or a lease that lapses, then ends it cancelled rather than queued again.
    The API shows cancelled deliveries as pending: they wait for the endpoint."""
    await _update_deliveries(
        session, endpoint_id, WorkStatus.QUEUED, status=WorkStatus.CANCELLED, finished_at=now
    )
    await _update_deliveries(session, endpoint_id, WorkStatus.RUNNING, cancel_requested=True)


async def resume_deliveries(session: AsyncSession, endpoint_id: UUID) -> None:
    """Enabling an endpoint again queues its cancelled deliveries again, each keeping its attempts
    and the time its next attempt is due, and withdraws the cancel asked of one being attempted."""
    await _update_deliveries(
        session,
        endpoint_id,
        WorkStatus.CANCELLED,
        status=WorkStatus.QUEUED,
        cancel_requested=False,
        finished_at=None,
    )
    await _update_deliveries(session, endpoint_id, WorkStatus.RUNNING, cancel_requested=False)


async def _update_deliveries(
    session: AsyncSession, endpoint_id: UUID, current: WorkStatus, /, **values: Any
) -> None:
    """Set ``values`` on the endpoint's deliveries that are in ``current``."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == current)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def delete_endpoint(session: AsyncSession, endpoint_id: UUID) -> None:
    await session.delete(await get_endpoint(session, endpoint_id))
    await session.commit()


async def rotate_secret(
    session: AsyncSession, endpoint_id: UUID, settings: WebhookSettings, data_dir: Path
) -> WebhookWithSecret:
    endpoint = await get_endpoint(session, endpoint_id)
    endpoint.secret_version += 1
    endpoint.secret_rotated_at = datetime.now(UTC)
    await session.commit()
    return _with_secret(endpoint, settings, data_dir)


async def list_deliveries(
    session: AsyncSession, endpoint_id: UUID, status: DeliveryStatus | None, page: PageRequest
) -> tuple[list[DeliveryOut], int]:
    await get_endpoint(session, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status.in_(work_statuses(status)))
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows, total = await fetch_page(session, stmt, page)
    return [delivery_out(d) for d in rows], total


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    """The API's view of a delivery: its status as users know it (``PUBLIC_STATUS``)."""
    fields = {name: getattr(delivery, name) for name in DeliveryOut.model_fields}
    fields["status"] = delivery.public_status
    # A delivery whose dispatcher kept dying has no attempt of its own to explain its failure.
    fields["last_error"] = delivery.last_error or delivery.failure_reason
    return DeliveryOut.model_validate(fields)


async def redeliver(session: AsyncSession, endpoint_id: UUID, delivery_id: UUID) -> DeliveryOut:
    """Queue a finished delivery again, with a fresh set of attempts, due now."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    )
    if delivery is None:
        raise NotFound("No such delivery.")
    if delivery.public_status is DeliveryStatus.PENDING:
        raise Conflict("This delivery is still being attempted; wait for it to succeed or fail.")
    # Queued again, at the back; an endpoint that is disabled keeps it until it is enabled.
    now = datetime.now(UTC)
    delivery.status = WorkStatus.QUEUED
    delivery.attempts = 0
    delivery.cancel_requested = False
    delivery.failure_reason = None
    delivery.finished_at = None
    delivery.queued_at = delivery.not_before = now
    await session.commit()
    return delivery_out(delivery)
