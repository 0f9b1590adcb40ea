"""Webhooks: the tenant's endpoints, each with its recent deliveries; owners manage them.

The same service calls and access levels as ``/v1/webhooks``: members see, owners create,
edit, enable and disable, delete and redeliver. A new endpoint's signing secret is shown
once, on the page that answers the form, as a new API key is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from core.settings import Settings
from service.auth.principal import Principal
from service.db.pagination import PageRequest
from service.pages.shared import LISTED, MEMBER, OWNER, is_htmx, notice_text, redirect, shell, words
from service.pages.templates import SECURITY_HEADERS, page
from service.webhooks import service as webhooks
from service.webhooks.feeds import DEFAULT_EVENT_TYPES, EVENT_TYPES
from service.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookOut, WebhookUpdate, WebhookWithSecret

# The deliveries an endpoint's page shows, newest first.
RECENT = PageRequest(limit=25, offset=0)
LATEST = PageRequest(limit=1, offset=0)


@dataclass
class EndpointForm:
    """What the create and edit forms hold, as typed."""

    url: str = ""
    description: str = ""
    event_types: list[str] = field(default_factory=lambda: list(DEFAULT_EVENT_TYPES))
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, endpoint: WebhookOut) -> EndpointForm:
        return cls(endpoint.url, endpoint.description, list(endpoint.event_types))

    @classmethod
    async def read(cls, request: Request[Any, Any, Any]) -> EndpointForm:
        form = await request.form()
        return cls(
            str(form.get("url", "")).strip(),
            str(form.get("description", "")).strip(),
            [str(name) for name in form.getall("event_types", [])],
        )

    def fields(self) -> dict[str, Any]:
        """The API's request body. No box ticked is sent as an empty list, which the schema
        refuses in words, rather than as ``None``, which would mean the defaults."""
        return {"url": self.url, "description": self.description, "event_types": self.event_types}


async def _latest_status(db_session: AsyncSession, endpoint_id: UUID) -> DeliveryOut | None:
    found, _ = await webhooks.list_deliveries(db_session, endpoint_id, None, LATEST)
    return found[0] if found else None


async def _list_page(
    db_session: AsyncSession,
    principal: Principal,
    status_code: int = 200,
    form: EndpointForm | None = None,
    created: WebhookWithSecret | None = None,
    notice: str | None = None,
) -> Template:
    found, _ = await webhooks.list_endpoints(db_session, LISTED)
    endpoints = [WebhookOut.model_validate(endpoint) for endpoint in found]
    latest = {endpoint.id: await _latest_status(db_session, endpoint.id) for endpoint in endpoints}
    layout = await shell(
        db_session,
        principal,
        endpoints=endpoints,
        latest=latest,
        form=form or EndpointForm(),
        errors=(form.errors if form else []),
        created=created,
        event_types=EVENT_TYPES,
        notice=notice,
    )
    return page("webhooks.html", status_code=status_code, **layout)


async def _endpoint_page(
    db_session: AsyncSession,
    principal: Principal,
    endpoint_id: UUID,
    status_code: int = 200,
    form: EndpointForm | None = None,
    notice: str | None = None,
) -> Template:
    endpoint = WebhookOut.model_validate(await webhooks.get_endpoint(db_session, endpoint_id))
    deliveries, total = await webhooks.list_deliveries(db_session, endpoint_id, None, RECENT)
    form = form or EndpointForm.of(endpoint)
    layout = await shell(
        db_session,
        principal,
        endpoint=endpoint,
        deliveries=deliveries,
        total=total,
        form=form,
        errors=form.errors,
        event_types=EVENT_TYPES,
        notice=notice,
    )
    return page("webhook.html", status_code=status_code, **layout)


class WebhookPages(Controller):
    path = "/app/webhooks"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def endpoints(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await _list_page(db_session, principal, notice=notice_text(notice))

    @post("/", opt=OWNER)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Template:
        form = await EndpointForm.read(request)
        try:
            body = WebhookCreate.model_validate(form.fields())
            created = await webhooks.create_endpoint(db_session, body, settings.webhooks, settings.data_dir)
        except ValidationError as exc:
            form.errors = words(exc)
        except DomainError as exc:
            form.errors = [exc.detail]
        else:
            return await _list_page(db_session, principal, status_code=201, created=created)
        return await _list_page(db_session, principal, status_code=400, form=form)

    @get("/{endpoint_id:uuid}", opt=MEMBER)
    async def endpoint(
        self,
        endpoint_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await _endpoint_page(db_session, principal, endpoint_id, notice=notice_text(notice))

    @post("/{endpoint_id:uuid}", opt=OWNER)
    async def update(
        self,
        endpoint_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        form = await EndpointForm.read(request)
        try:
            body = WebhookUpdate.model_validate(form.fields())
            await webhooks.update_endpoint(db_session, endpoint_id, body, settings.webhooks)
        except ValidationError as exc:
            form.errors = words(exc)
        except DomainError as exc:
            if exc.status == 404:
                raise
            form.errors = [exc.detail]
        else:
            return redirect(f"/app/webhooks/{endpoint_id}?notice=webhook-saved")
        return await _endpoint_page(db_session, principal, endpoint_id, status_code=400, form=form)

    @post("/{endpoint_id:uuid}/enable", opt=OWNER)
    async def enable(
        self,
        endpoint_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        await webhooks.update_endpoint(
            db_session, endpoint_id, WebhookUpdate(enabled=True), settings.webhooks
        )
        return redirect(f"/app/webhooks/{endpoint_id}?notice=webhook-enabled")

    @post("/{endpoint_id:uuid}/disable", opt=OWNER)
    async def disable(
        self,
        endpoint_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        await webhooks.update_endpoint(
            db_session, endpoint_id, WebhookUpdate(enabled=False), settings.webhooks
        )
        return redirect(f"/app/webhooks/{endpoint_id}?notice=webhook-disabled")

    @post("/{endpoint_id:uuid}/delete", opt=OWNER)
    async def delete(
        self,
        endpoint_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
    ) -> Response[None] | Redirect:
        await webhooks.delete_endpoint(db_session, endpoint_id)
        done = "/app/webhooks?notice=webhook-deleted"
        if is_htmx(request):
            # The page it was deleted from is gone: htmx moves the browser to the list.
            return Response(None, status_code=200, headers={**SECURITY_HEADERS, "HX-Redirect": done})
        return redirect(done)

    @post("/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver", opt=OWNER)
    async def redeliver(
        self,
        endpoint_id: FromPath[UUID],
        delivery_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
    ) -> Redirect:
        await webhooks.redeliver(db_session, endpoint_id, delivery_id)
        return redirect(f"/app/webhooks/{endpoint_id}?notice=webhook-redelivered")
