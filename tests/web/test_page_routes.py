"""Page routes stay out of the OpenAPI document (and so out of the authorization matrix):
here every one of them declares its access level, anonymous callers are sent to sign in,
members are refused owners' pages, and cookie requests from another site are refused."""

from __future__ import annotations

import re
import uuid

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings, StorageSettings, UploadSettings
from service.auth.policy import ACCESS, Access
from service.pages.templates import direct_upload_origin
from tests.helpers import PASSWORD, add_member, sign_up

Client = AsyncTestClient[Litestar]


def page_routes(app: Litestar) -> list[tuple[str, str, Access]]:
    found = []
    for route in app.routes:
        for method, (handler, _) in getattr(route, "route_handler_map", {}).items():
            if method != "OPTIONS" and handler.fn.__module__.startswith("service.pages."):
                path = re.sub(r"\{(\w+):uuid\}", lambda _: str(uuid.uuid4()), route.path)
                path = re.sub(r"\{\w+:int\}", "1", path)
                path = re.sub(r"\{\w+:str\}", "some-token", path)
                found.append((method, re.sub(r"\{\w+:path\}", "somewhere", path), handler.opt.get(ACCESS)))
    return found


def test_every_page_route_declares_its_access(app: Litestar) -> None:
    routes = page_routes(app)
    assert len(routes) >= 15
    assert [r for r in routes if not isinstance(r[2], Access)] == []
    public = {(method, path) for method, path, level in routes if level is Access.PUBLIC}
    assert public == {
        ("GET", "/"),
        ("GET", "/signin"),
        ("POST", "/signin"),
        ("GET", "/signup"),
        ("POST", "/signup"),
    }
    schema_paths = app.openapi_schema.to_schema()["paths"]
    assert not [p for p in schema_paths if p == "/" or p.startswith(("/app", "/sign"))]


async def test_anonymous_callers_are_sent_to_sign_in(app: Litestar, client: Client) -> None:
    for method, path, level in page_routes(app):
        if level is Access.PUBLIC:
            continue
        response = await client.request(method, path, follow_redirects=False)
        assert response.status_code == 303, (method, path, response.text[:200])
        want = f"/signin?next={path.replace('/', '%2F')}" if method == "GET" else "/signin?next=%2Fapp"
        assert response.headers["location"] == want


async def test_members_are_refused_owner_pages_in_words(app: Litestar, client: Client) -> None:
    owner = await sign_up(client, "Owners")
    member = await add_member(client, owner)
    client.cookies.clear()
    signed_in = await client.post(
        "/signin", data={"email": member.email, "password": PASSWORD}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    # The member's session is in their own tenant; switch to the owner's.
    switched = await client.post(
        "/app/switch-tenant", data={"tenant_id": owner.tenant_id}, follow_redirects=False
    )
    assert switched.status_code == 303
    assert "Owners" in (await client.get("/app")).text
    for method, path, level in page_routes(app):
        if level is Access.OWNER:
            response = await client.request(method, path, data={"email": owner.email, "role": "owner"})
            assert response.status_code == 403, (method, path)
            assert "text/html" in response.headers["content-type"]
            assert "Only the tenant&#39;s owners may do this." in response.text


async def test_cookie_requests_from_another_site_are_refused(client: Client) -> None:
    signed = await client.post(
        "/v1/auth/signup", json={"email": "csrf@example.com", "password": PASSWORD, "tenant_name": "C"}
    )
    assert signed.status_code == 201
    key = (await client.post("/v1/api-keys", json={"name": "k"})).json()["key"]
    host = "testserver.local"
    for headers, status in [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site", "Origin": f"http://{host}"}, 403),
        ({"Sec-Fetch-Site": "same-origin"}, 201),
        ({"Origin": f"http://{host}"}, 201),
        ({}, 201),  # not a browser: an SDK or curl with the cookie
        ({"Origin": "https://evil.example", "Authorization": f"Bearer {key}"}, 201),
    ]:
        response = await client.post("/v1/api-keys", json={"name": "k"}, headers=headers)
        assert response.status_code == status, (headers, response.text)
        if status == 403:
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "another site" in response.json()["detail"]
    page = await client.post("/app/api-keys", data={"name": "x"}, headers={"Origin": "https://evil.example"})
    assert page.status_code == 403 and "another site" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_pages_send_a_strict_content_security_policy(client: Client) -> None:
    for path in ("/", "/signin", "/signup"):
        response = await client.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert "<script>" not in response.text and " style=" not in response.text


S3 = {"backend": "s3", "s3_endpoint": "minio.internal:9000"}


@pytest.mark.parametrize(
    ("storage", "direct", "origin"),
    [
        ({"backend": "local"}, True, None),
        ({**S3, "s3_secure": False}, False, None),  # the server hands out no part URLs
        ({**S3, "s3_secure": False}, True, "http://minio.internal:9000"),
        (S3, True, "https://minio.internal:9000"),
        # The name URLs are signed for, whatever path it is given with.
        ({**S3, "s3_public_url": "https://media.example.com/rushes/"}, True, "https://media.example.com"),
    ],
)
def test_the_footage_page_may_call_the_storage_it_uploads_to(
    storage: dict[str, object], direct: bool, origin: str | None
) -> None:
    settings = Settings(
        storage=StorageSettings.model_validate(storage), uploads=UploadSettings(direct=direct)
    )
    assert direct_upload_origin(settings) == origin
