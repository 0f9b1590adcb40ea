from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import DatabaseSettings, Settings, StorageSettings
from service.app import create_app

Client = AsyncTestClient[Litestar]


async def test_health_and_readiness(client: Client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "storage": "ok"}


async def test_readiness_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url="postgresql+asyncpg://nobody@127.0.0.1:1/none"),
        storage=StorageSettings(path=tmp_path / "storage"),
    )
    async with AsyncTestClient(create_app(settings)) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"].startswith("error")
    assert ready.json()["storage"] == "ok"


async def test_openapi_and_web_app_are_served(client: Client) -> None:
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200
    assert "/v1/uploads/{upload_id}/parts/{part_number}" in schema.json()["paths"]
    page = await client.get("/")
    assert page.status_code == 200 and "Rushes" in page.text
