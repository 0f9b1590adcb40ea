"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from advanced_alchemy.extensions.litestar import AsyncSessionConfig, SQLAlchemyAsyncConfig, SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.static_files import create_static_files_router

from core.bases.catalogue import load_catalogue
from core.logs import configure_logging
from core.settings import Settings, get_settings
from core.storage import ObjectStorage, storage_from_settings
from service.accounts.controllers import ApiKeyController, AuthController, MeController
from service.admin.controllers import AdminController
from service.audit.controllers import AdminAuditController, AuditController
from service.auth.csrf import CrossSiteRequestGuard
from service.auth.deps import provide_principal
from service.auth.middleware import AuthenticationMiddleware
from service.auth.policy import Access, access, enforce_access, undeclared_routes
from service.billing.controllers import AdminBillingController, BillingController
from service.datasets.controllers import DatasetController
from service.db.engine import create_engine, session_factory
from service.db.pagination import provide_page
from service.errors import exception_handlers, problem_details_config
from service.events.watch import EventWatch
from service.generations.controllers import GenerationController
from service.idempotency.middleware import IdempotencyMiddleware
from service.jobs.controllers import FineTuneController, list_bases
from service.metrics.plugin import MetricsPlugin
from service.models.controllers import ModelController
from service.openapi import ClosedBodySchemaPlugin, document_api
from service.pages.controllers import pages_router
from service.pages.templates import STATIC, template_config
from service.params import refuse_unreadable_urls
from service.quotas.controllers import PlanController, QuotaController
from service.request_context import request_id_middleware
from service.response_headers import add_response_headers
from service.system.controllers import healthz, readyz
from service.tenants.controllers import TenantExportController
from service.uploads.controllers import AssetController, UploadController
from service.usage.controllers import UsageController
from service.webhooks.controllers import WebhookController

API_VERSION = "1.0.0"
# The API reference at /schema, with its scripts served from this server (web/static/vendor),
# so it works offline and loads nothing from another host.
_SWAGGER = "/static/vendor/swagger-ui-5.36.0"
API_REFERENCE = SwaggerRenderPlugin(
    js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
    css_url=f"{_SWAGGER}/swagger-ui.css",
    standalone_preset_js_url=f"{_SWAGGER}/swagger-ui-standalone-preset.js",
    path="/swagger",
    favicon="",
)


def cors_config(origins: list[str]) -> CORSConfig | None:
    """Cross-origin calls from the configured origins only, with an API key: no cookies, so the
    browser session (and the cross-site guard that protects it) stays same-origin."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Content-Digest", "Idempotency-Key", "X-Request-ID"],
        expose_headers=[
            "X-Request-ID",
            "Idempotent-Replayed",
            "Location",
            "Retry-After",
            "Content-Disposition",
        ],
        allow_credentials=False,
        max_age=600,
    )


def create_app(settings: Settings | None = None, storage: ObjectStorage | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log)
    engine = create_engine(
        settings.database_url, echo=settings.database.echo, pool_size=settings.database.pool_size
    )
    db_config = SQLAlchemyAsyncConfig(
        engine_instance=engine,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        before_send_handler="autocommit",
    )
    object_storage = storage or storage_from_settings(settings)
    sessions = session_factory(engine)
    catalogue = load_catalogue(settings.bases)
    watch = EventWatch(sessions)

    @asynccontextmanager
    async def watching(_: Litestar) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch.run)
            yield
            tasks.cancel_scope.cancel()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            AuthController,
            MeController,
            ApiKeyController,
            UploadController,
            AssetController,
            DatasetController,
            WebhookController,
            list_bases,
            FineTuneController,
            ModelController,
            GenerationController,
            UsageController,
            QuotaController,
            AdminController,
            AuditController,
            AdminAuditController,
            TenantExportController,
            PlanController,
            BillingController,
            AdminBillingController,
            pages_router(),
            create_static_files_router(path="/static", directories=[STATIC], opt=access(Access.PUBLIC)),
        ],
        plugins=[
            ClosedBodySchemaPlugin(),
            SQLAlchemyPlugin(config=db_config),
            ProblemDetailsPlugin(problem_details_config()),
            MetricsPlugin(settings.metrics, sessions),
        ],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        template_config=template_config(),
        before_send=[add_response_headers],
        middleware=[
            request_id_middleware,
            refuse_unreadable_urls,
            CrossSiteRequestGuard,
            DefineMiddleware(
                AuthenticationMiddleware, db_config=db_config, session_cookie=settings.auth.session_cookie
            ),
            IdempotencyMiddleware(db_config, settings.server.max_json_body),
        ],
        guards=[enforce_access],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "storage": Provide(lambda: object_storage, sync_to_thread=False),
            "sessions": Provide(lambda: sessions, sync_to_thread=False),
            "catalogue": Provide(lambda: catalogue, sync_to_thread=False),
            "watch": Provide(lambda: watch, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "page": Provide(provide_page, sync_to_thread=False),
        },
        openapi_config=OpenAPIConfig(
            title="Rushes API",
            version=API_VERSION,
            path="/schema",
            render_plugins=[API_REFERENCE],
            openapi_router=Router(path="/schema", route_handlers=[], opt=access(Access.PUBLIC)),
        ),
        # Logging is configured once, as JSON, by configure_logging; Litestar's own would replace it.
        logging_config=None,
        request_max_body_size=settings.server.max_json_body,
        cors_config=cors_config(settings.server.cors_origins),
        lifespan=[watching],
        debug=settings.server.debug,
    )
    if missing := undeclared_routes(app):
        raise RuntimeError(f"routes without an access level: {missing}")
    document_api(app)
    return app
