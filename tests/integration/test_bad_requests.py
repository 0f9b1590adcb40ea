"""Classes of input that once answered 5xx: each is now a 4xx problem (or a proper answer),
and no server error tells the client more than its request id. The schemathesis run
(``tests/fuzz``) looks for new ones; these pin the ones found."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar, get
from litestar.exceptions import ImproperlyConfiguredException
from litestar.testing import AsyncTestClient

from core.settings import ServerSettings, Settings
from core.storage import ObjectStorage
from service.app import create_app
from service.auth.policy import Access, access
from tests.helpers import sign_up

Client = AsyncTestClient[Litestar]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.mark.parametrize("path", ["/v1/uploads", "/v1/me", "/v1/webhooks", "/healthz", "/v1/auth/login"])
async def test_options_and_preflights_answer_without_cors_by_default(client: Client, path: str) -> None:
    plain = await client.options(path)
    assert plain.status_code == 204, plain.text
    assert "OPTIONS" in plain.headers["allow"]
    preflight = await client.options(
        path, headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert "access-control-allow-origin" not in preflight.headers


async def test_preflights_from_the_configured_origin_are_allowed(
    settings: Settings, storage: ObjectStorage
) -> None:
    web_app = "https://app.rushes.example"
    configured = settings.model_copy(update={"server": ServerSettings(cors_origins=[web_app])})
    async with AsyncTestClient(create_app(configured, storage)) as client:
        request = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
        allowed = await client.options("/v1/uploads", headers={"Origin": web_app, **request})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == web_app
        assert "access-control-allow-credentials" not in allowed.headers
        other = await client.options("/v1/uploads", headers={"Origin": "https://evil.example", **request})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        caller = await sign_up(client)
        answer = await client.get("/v1/me", headers={"Origin": web_app, **caller.headers})
        assert answer.headers["access-control-allow-origin"] == web_app


async def test_server_errors_name_only_the_request(settings: Settings, storage: ObjectStorage) -> None:
    @get("/boom/http", opt=access(Access.PUBLIC))
    async def http_error() -> None:
        raise ImproperlyConfiguredException("secret internals: dsn=postgres://admin:hunter2@db")

    @get("/boom/other", opt=access(Access.PUBLIC))
    async def other_error() -> None:
        raise RuntimeError("secret internals: dsn=postgres://admin:hunter2@db")

    app = create_app(settings, storage)
    app.register(http_error)
    app.register(other_error)
    async with AsyncTestClient(app) as client:
        for path in ["/boom/http", "/boom/other"]:
            response = await client.get(path)
            body = assert_problem(response, 500)
            assert "secret" not in response.text
            assert body["detail"].startswith("An unexpected error occurred")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/uploads?offset=9223372036854775808",
        "/v1/models?offset=99999999999999999999999",
        "/v1/models?limit=2147483648",
        "/v1/models/{id}/versions/2147483648",
        "/v1/models/{id}/versions/2147483648/adapter",
        "/v1/datasets/{id}/versions/2147483648",
        "/v1/fine-tunes/{id}/events?after=2147483648",
        "/v1/generations/{id}/events?after=9223372036854775808",
        "/v1/fine-tunes/{id}/samples/2147483648/0",
    ],
)
async def test_integers_past_the_database_range_are_refused(client: Client, path: str) -> None:
    caller = await sign_up(client)
    response = await client.get(path.format(id=uuid4()), headers=caller.headers)
    assert_problem(response, 400)


async def test_the_largest_offset_is_an_empty_page(client: Client) -> None:
    caller = await sign_up(client)
    page = await client.get("/v1/uploads?offset=9223372036854775807", headers=caller.headers)
    assert page.status_code == 200 and page.json()["items"] == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/fine-tunes", {"dataset_id": "{id}", "dataset_version": 2**31, "base": "tiny"}),
        ("/v1/generations", {"model_id": "{id}", "version": 2**31, "prompt": "a cat"}),
        (
            "/v1/uploads",
            {"filename": "a.mp4", "size": 2**64, "sha256": "0" * 64, "content_type": "video/mp4"}
            | {"rights": {"kind": "owned"}},
        ),
        ("/v1/datasets", {"name": "nul\u0000name"}),
        ("/v1/webhooks", {"url": "https://example.com/\u0000"}),
    ],
)
async def test_bodies_the_database_cannot_store_are_refused(
    client: Client, path: str, body: dict[str, Any]
) -> None:
    caller = await sign_up(client)
    filled = {k: v.format(id=uuid4()) if v == "{id}" else v for k, v in body.items()}
    assert_problem(await client.post(path, json=filled, headers=caller.headers), 400)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/uploads?sha256=%00",
        "/v1/uploads?sha256=%ff%fe",
        "/v1/fine-tunes?status=%00",
        "/v1/generations/{id}/outputs/%00",
        "/v1/generations/{id}/outputs/%ff",
    ],
)
async def test_nul_and_invalid_utf8_in_the_address_are_refused(client: Client, path: str) -> None:
    caller = await sign_up(client)
    response = await client.get(path.format(id=uuid4()), headers=caller.headers)
    assert "NUL" in assert_problem(response, 400)["detail"]


async def test_every_response_says_nosniff(client: Client, tmp_path: Path) -> None:
    caller = await sign_up(client)
    for response in [
        await client.get("/healthz"),
        await client.get("/v1/me", headers=caller.headers),
        await client.get("/v1/me"),
        await client.get("/no/such/route"),
        await client.options("/v1/uploads"),
        await client.get("/static/vendor/swagger-ui-5.36.0/swagger-ui.css"),
        await client.get("/"),
    ]:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


async def test_the_document_states_closed_bodies_and_every_problem(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for body in ["FineTuneCreate", "Hyperparameters", "UploadCreate", "WebhookCreate", "Guardrails"]:
        assert schemas[body]["additionalProperties"] is False, body
    assert "additionalProperties" not in schemas["AssetOut"]
    part = document["paths"]["/v1/uploads/{upload_id}/parts/{part_number}"]["put"]["responses"]
    assert set(part) == {"200", "400", "401", "403", "404", "409", "410", "413", "415", "422"}
    # Routes that admit work name the quota refusals; only generations are rate-limited.
    generation = document["paths"]["/v1/generations"]["post"]["responses"]
    assert {"402", "429"} <= set(generation)
    assert "402" in document["paths"]["/v1/fine-tunes"]["post"]["responses"]
    assert "429" not in document["paths"]["/v1/uploads"]["post"]["responses"]
    assert part["404"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}
    }
    health = document["paths"]["/healthz"]["get"]["responses"]
    assert set(health) == {"200", "400", "422"}


async def test_the_document_names_sign_in_throttling_and_the_invitation_answers(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    paths = document["paths"]
    for path in ("/v1/auth/login", "/v1/auth/signup"):
        assert "429" in paths[path]["post"]["responses"], path
    gone = paths["/v1/tenant/members"]["post"]
    assert gone["deprecated"] is True and "410" in gone["responses"]
    for verb in ("accept", "decline"):
        answer = paths[f"/v1/invitations/{verb}"]["post"]
        assert {"401", "403", "404", "409", "422"} <= set(answer["responses"])
        assert answer["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/InvitationAnswer"
        }
    assert "200" in paths["/v1/invitations/accept"]["post"]["responses"]
    assert not any(path.startswith("/v1/me/invitations") for path in paths)
    revoke = paths["/v1/tenant/invitations/{invitation_id}"]["delete"]["responses"]
    assert {"401", "403", "404", "409"} <= set(revoke)
    for body in ("InvitationCreate", "InvitationAnswer"):
        assert document["components"]["schemas"][body]["additionalProperties"] is False
