from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import anyio.to_thread
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import Connection, text

from core.settings import Settings
from service.db.engine import create_engine, session_factory
from service.db.migrate import alembic_config, migrate
from service.db.models import metadata
from service.db.tenancy import set_tenant
from service.webhooks.models import WebhookEndpoint
from tests.helpers import sign_up

Client = AsyncTestClient[Litestar]


async def test_migrations_build_exactly_the_models(settings: Settings) -> None:
    engine = create_engine(settings.database_url)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as connection:
        diff = await connection.run_sync(differences)
    await engine.dispose()
    assert diff == []


async def test_webhook_event_types_are_renamed_both_ways(client: Client, settings: Settings) -> None:
    """0014 names every endpoint's types with their kind of work; going back restores the
    short names of the fine-tune events, the only ones older code delivers."""
    owner = await sign_up(client)
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session:
        set_tenant(session, UUID(owner.tenant_id))
        session.add(
            WebhookEndpoint(
                url="https://example.com/hook",
                event_types=["fine_tune.succeeded", "generation.failed"],
                enabled_at=datetime.now(UTC),
            )
        )
        await session.commit()

    async def types() -> list[str]:
        async with engine.connect() as connection:
            stored = await connection.scalar(text("SELECT event_types FROM webhook_endpoint"))
        return list(json.loads(stored) if isinstance(stored, str) else stored)  # SQLite keeps JSON as text

    try:
        await anyio.to_thread.run_sync(
            lambda: command.downgrade(alembic_config(settings.database_url), "0013")
        )
        assert await types() == ["succeeded"]
        await anyio.to_thread.run_sync(lambda: migrate(settings.database_url))
        assert await types() == ["fine_tune.succeeded"]
    finally:
        await engine.dispose()
