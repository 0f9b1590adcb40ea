"""Forged API calls: a body a cross-site form can send (text/plain, urlencoded, multipart) is
refused on /v1 unless an API key authorises the request, whatever Origin says or omits."""

from __future__ import annotations

import json

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.helpers import PASSWORD, sign_up

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "Multipart/Form-Data"],
)
async def test_cookie_calls_with_a_form_body_are_refused(client: Client, content_type: str) -> None:
    signed = await client.post(
        "/v1/auth/signup", json={"email": "forms@example.com", "password": PASSWORD, "tenant_name": "F"}
    )
    assert signed.status_code == 201
    body = json.dumps({"name": "forged"})

    forged = await client.post("/v1/api-keys", content=body, headers={"Content-Type": content_type})

    assert forged.status_code == 415, forged.text
    assert forged.headers["content-type"].startswith("application/problem+json")
    assert "must send JSON" in forged.json()["detail"]
    keys = (await client.get("/v1/api-keys")).json()["items"]
    assert [k["name"] for k in keys] == []
    # Signing in is refused the same way, so another site cannot sign a browser in either.
    login = await client.post(
        "/v1/auth/login",
        content=json.dumps({"email": "forms@example.com", "password": PASSWORD}),
        headers={"Content-Type": content_type},
    )
    assert login.status_code == 415


async def test_json_cookie_calls_and_key_calls_with_any_body_pass(client: Client) -> None:
    caller = await sign_up(client, "Keys")
    signed = await client.post(
        "/v1/auth/signup", json={"email": "json@example.com", "password": PASSWORD, "tenant_name": "J"}
    )
    assert signed.status_code == 201
    assert (await client.post("/v1/api-keys", json={"name": "by cookie"})).status_code == 201
    client.cookies.clear()
    # An API key carries no ambient credential: its caller chose to send it.
    by_key = await client.post(
        "/v1/api-keys",
        content=json.dumps({"name": "by key"}),
        headers={**caller.headers, "Content-Type": "text/plain"},
    )
    assert by_key.status_code == 201, by_key.text
