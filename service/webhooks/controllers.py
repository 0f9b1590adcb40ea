from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from service.auth.policy import Access, access
from service.db.pagination import PageRequest, page_body
from service.idempotency.middleware import SHOWN_ONCE
from service.schemas import Page
from service.webhooks import service
from service.webhooks.models import DeliveryStatus
from service.webhooks.schemas import DeliveryOut, WebhookCreate, WebhookOut, WebhookUpdate, WebhookWithSecret


class WebhookController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post(operation_id="createWebhook", opt={**access(Access.OWNER), **SHOWN_ONCE})
    async def create(
        self,
        data: JSONBody[WebhookCreate],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> WebhookWithSecret:
        return await service.create_endpoint(db_session, data, settings.webhooks, settings.data_dir)

    @get(operation_id="listWebhooks", opt=access(Access.MEMBER))
    async def list_webhooks(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[WebhookOut]:
        items, total = await service.list_endpoints(db_session, page)
        return Page[WebhookOut].model_validate(page_body(items, total, page))

    @get("/{endpoint_id:uuid}", operation_id="getWebhook", opt=access(Access.MEMBER))
    async def get_webhook(
        self, endpoint_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> WebhookOut:
        return WebhookOut.model_validate(await service.get_endpoint(db_session, endpoint_id))

    @patch("/{endpoint_id:uuid}", operation_id="updateWebhook", opt=access(Access.OWNER))
    async def update(
        self,
        endpoint_id: FromPath[UUID],
        data: JSONBody[WebhookUpdate],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> WebhookOut:
        endpoint = await service.update_endpoint(db_session, endpoint_id, data, settings.webhooks)
        return WebhookOut.model_validate(endpoint)

    @delete("/{endpoint_id:uuid}", operation_id="deleteWebhook", opt=access(Access.OWNER))
    async def delete_webhook(
        self, endpoint_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> None:
        await service.delete_endpoint(db_session, endpoint_id)

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        operation_id="rotateWebhookSecret",
        status_code=HTTP_200_OK,
        opt={**access(Access.OWNER), **SHOWN_ONCE},
    )
    async def rotate_secret(
        self,
        endpoint_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> WebhookWithSecret:
        return await service.rotate_secret(db_session, endpoint_id, settings.webhooks, settings.data_dir)

    @get("/{endpoint_id:uuid}/deliveries", operation_id="listWebhookDeliveries", opt=access(Access.MEMBER))
    async def list_deliveries(
        self,
        endpoint_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        status: DeliveryStatus | None = Parameter(default=None, description="Only deliveries in this state."),
    ) -> Page[DeliveryOut]:
        items, total = await service.list_deliveries(db_session, endpoint_id, status, page)
        return Page[DeliveryOut].model_validate(page_body(items, total, page))

    @post(
        "/{endpoint_id:uuid}/deliveries/{delivery_id:uuid}/redeliver",
        operation_id="redeliverWebhookDelivery",
        status_code=HTTP_202_ACCEPTED,
        opt=access(Access.OWNER),
    )
    async def redeliver(
        self,
        endpoint_id: FromPath[UUID],
        delivery_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
    ) -> DeliveryOut:
        return await service.redeliver(db_session, endpoint_id, delivery_id)
