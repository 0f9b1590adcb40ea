"""The metrics plugin: Litestar's Prometheus middleware for requests, and ``GET /metrics``."""

from __future__ import annotations

from litestar._asgi.utils import wrap_in_exception_handler
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.types import ASGIApp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import MetricsSettings
from service.metrics.endpoint import metrics_route
from service.metrics.work import WorkCollector


class RequestMetricsMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware over an exception handler of its own.

    The middleware after it (authentication, the cross-site guard, idempotency) refuse a
    request by raising, and Litestar turns such an exception into its response only above
    all route middleware: without this inner handler (the one Litestar puts around every
    route's handler) each refusal would pass through uncounted and be recorded as a 200.
    """

    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(wrap_in_exception_handler(app), config)


# Requests by method, route template (``path_template``: ``/v1/fine-tunes/{job_id}``, never
# the raw path, so the label set is bounded by the routes) and status. A path no route
# matches never reaches route middleware, so it is not counted at all.
HTTP_METRICS = PrometheusConfig(
    app_name="rushes",
    prefix="rushes_http",
    group_path=True,
    middleware_class=RequestMetricsMiddleware,
    # Up to a minute: upload parts and downloads of large files are slow on purpose.
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
)


class MetricsPlugin(InitPluginProtocol):
    """Adds request metrics and ``GET /metrics`` when ``RUSHES_METRICS__ENABLED``; nothing otherwise."""

    def __init__(self, settings: MetricsSettings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if not self.settings.enabled:
            return app_config
        # First, so that it times and counts what every other middleware does too.
        app_config.middleware.insert(0, HTTP_METRICS.middleware)
        work = WorkCollector(self.sessions, self.settings.cache_seconds)
        app_config.route_handlers.append(metrics_route(self.settings, work))
        return app_config
