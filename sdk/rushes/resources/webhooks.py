"""Webhook endpoints for job events, and their delivery log. Verify deliveries with
:func:`rushes.webhooks.verify_signature`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment


def _path(webhook_id: str) -> str:
    return f"/v1/webhooks/{path_segment(webhook_id)}"


class Webhooks(Resource[R]):
    @endpoint
    def create(
        self,
        *,
        url: str,
        description: str = "",
        event_types: Sequence[str] | None = None,
        enabled: bool = True,
    ) -> Op[types.WebhookWithSecret]:
        """A new endpoint (owners only). Its signing ``secret`` is shown only now and on rotation.
        ``event_types`` (``fine_tune.succeeded``, ``generation.succeeded``, …) defaults to every
        type except the ``*.progress`` ones."""
        body: dict[str, Any] = {"url": url, "description": description, "enabled": enabled}
        if event_types is not None:
            body["event_types"] = list(event_types)
        return Op("POST", "/v1/webhooks", types.WebhookWithSecret.from_json, json=body)

    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.Webhook]]:
        return list_op("/v1/webhooks", types.Webhook.from_json, limit)

    @endpoint
    def get(self, webhook_id: str) -> Op[types.Webhook]:
        return Op("GET", _path(webhook_id), types.Webhook.from_json)

    @endpoint
    def update(
        self,
        webhook_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        event_types: Sequence[str] | None = None,
        enabled: bool | None = None,
    ) -> Op[types.Webhook]:
        """Change what is given; re-enabling an endpoint does not send what happened while it was off."""
        body = {
            k: v
            for k, v in {
                "url": url,
                "description": description,
                "event_types": None if event_types is None else list(event_types),
                "enabled": enabled,
            }.items()
            if v is not None
        }
        return Op("PATCH", _path(webhook_id), types.Webhook.from_json, json=body)

    @endpoint
    def delete(self, webhook_id: str) -> Op[None]:
        return Op("DELETE", _path(webhook_id), nothing)

    @endpoint
    def rotate_secret(self, webhook_id: str) -> Op[types.WebhookWithSecret]:
        """A new signing secret; for a while deliveries are signed with the previous one too."""
        return Op("POST", f"{_path(webhook_id)}/rotate-secret", types.WebhookWithSecret.from_json)

    @paginated
    def deliveries(
        self, webhook_id: str, *, status: str | None = None, limit: int | None = None
    ) -> Op[types.Page[types.WebhookDelivery]]:
        """The delivery log, newest first; ``status`` is ``pending``, ``succeeded`` or ``failed``."""
        return list_op(
            f"{_path(webhook_id)}/deliveries", types.WebhookDelivery.from_json, limit, status=status
        )

    @endpoint
    def redeliver(self, webhook_id: str, delivery_id: str) -> Op[types.WebhookDelivery]:
        """Send a finished delivery again, with a fresh set of attempts."""
        return Op(
            "POST",
            f"{_path(webhook_id)}/deliveries/{path_segment(delivery_id)}/redeliver",
            types.WebhookDelivery.from_json,
        )
