"""``GET /metrics``: the Prometheus text exposition, behind the bearer token from settings."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.types import Guard
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.settings import MetricsSettings
from service.auth.policy import Access, access
from service.metrics.work import WorkCollector


class Exposition(Collector):
    """What ``/metrics`` shows: this process's registry (requests, uploads, the process) and the queues."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def bearer_token_guard(token: str) -> Guard:
    """Admit only requests that carry ``Authorization: Bearer <token>``."""
    expected = token.encode()

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        scheme, _, given = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise NotAuthorizedException(
                "Send the metrics token as 'Authorization: Bearer <token>'.",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )

    return guard


def metrics_route(settings: MetricsSettings, work: WorkCollector) -> HTTPRouteHandler:
    exposition = Exposition(REGISTRY, work)
    token = settings.token.get_secret_value()

    # Past the session and API-key checks (no account reads metrics): the token alone guards it.
    @get(
        "/metrics",
        opt=access(Access.PUBLIC),
        guards=[bearer_token_guard(token)] if token else [],
        include_in_schema=False,
    )
    async def metrics() -> Response[bytes]:
        await work.refresh()
        # As a header: a media type would have Litestar add a second charset parameter.
        return Response(generate_latest(exposition), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
