"""Sign-in defences: failed sign-ins slow down per (email, address), per address and per email
(in the database, so every replica agrees), without locking a real user out from elsewhere;
unknown and known emails get the same answer."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.settings import Settings
from service.accounts import throttle
from service.accounts.models import SignInThrottle
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from tests.helpers import PASSWORD, sign_up

Client = AsyncTestClient[Litestar]
WRONG = "not the password at all"


@pytest.fixture
def proxied(client: Client) -> Client:
    """The test client behind uvicorn's proxy-header handling, as ``rushes-server serve`` runs
    behind a trusted proxy: ``from_address`` then names the client's address."""
    client.app = cast(Litestar, ProxyHeadersMiddleware(cast(Any, client.app), trusted_hosts="*"))
    return client


def from_address(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def login(email: str, password: str) -> dict[str, Any]:
    return {"email": email, "password": password}


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    body = dict(response.json())
    body.pop("request_id")
    return body


async def test_wrong_passwords_slow_down_and_the_right_one_works_after_the_delay(client: Client) -> None:
    caller = await sign_up(client)
    for _ in range(throttle.PAIR.free + 1):
        assert (await client.post("/v1/auth/login", json=login(caller.email, WRONG))).status_code == 401
    waits = []
    for _ in range(2):
        refused = await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))
        # While the delay lasts even the right password is refused, so guessing learns nothing.
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("rate-limited")
        waits.append(int(refused.headers["retry-after"]))
        await asyncio.sleep(waits[-1])
        assert (await client.post("/v1/auth/login", json=login(caller.email, WRONG))).status_code == 401
    assert waits == [1, 2]
    last = await client.post("/v1/auth/login", json=login(caller.email, WRONG))
    assert int(last.headers["retry-after"]) == 4
    await asyncio.sleep(4)
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 200
    # Success clears the pair: the next mistake costs nothing again.
    client.cookies.clear()
    assert (await client.post("/v1/auth/login", json=login(caller.email, WRONG))).status_code == 401
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 200


async def test_another_address_is_not_locked_out_by_these_failures(proxied: Client) -> None:
    client = proxied
    caller = await sign_up(client)
    for _ in range(throttle.PAIR.free + 1):
        await client.post("/v1/auth/login", json=login(caller.email, WRONG))
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 429
    elsewhere = from_address("198.51.100.7")
    wrong = await client.post("/v1/auth/login", json=login(caller.email, WRONG), headers=elsewhere)
    assert wrong.status_code == 401
    right = await client.post("/v1/auth/login", json=login(caller.email, PASSWORD), headers=elsewhere)
    assert right.status_code == 200


async def test_the_email_wide_cap_spares_an_address_that_signed_in_before(
    proxied: Client, settings: Settings
) -> None:
    client = proxied
    caller = await sign_up(client)
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 200
    client.cookies.clear()
    # Failures spread over many addresses, as a botnet would: set straight in the table.
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        key = throttle.sign_in_keys(caller.email, "any")[throttle.EMAIL]
        await conn.execute(
            update(SignInThrottle).where(SignInThrottle.key == key).values(failures=throttle.EMAIL.free)
        )
    await engine.dispose()
    stranger = from_address("203.0.113.50")
    wrong = await client.post("/v1/auth/login", json=login(caller.email, WRONG), headers=stranger)
    assert wrong.status_code == 401
    throttled = await client.post("/v1/auth/login", json=login(caller.email, PASSWORD), headers=stranger)
    assert throttled.status_code == 429
    # The owner's usual address still signs in, and their success clears the email's count.
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 200
    client.cookies.clear()
    newcomer = from_address("203.0.113.51")
    assert (
        await client.post("/v1/auth/login", json=login(caller.email, PASSWORD), headers=newcomer)
    ).status_code == 200


async def test_unknown_and_known_emails_answer_alike(client: Client) -> None:
    caller = await sign_up(client)
    unknown = "nobody-here@example.com"

    async def timed(email: str) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        response = await client.post("/v1/auth/login", json=login(email, WRONG))
        return response, time.perf_counter() - started

    known_answers = [await timed(caller.email) for _ in range(3)]
    unknown_answers = [await timed(unknown) for _ in range(3)]
    for (known, _), (stranger, _) in zip(known_answers, unknown_answers, strict=True):
        assert known.status_code == stranger.status_code == 401
        assert without_request_id(known) == without_request_id(stranger)
    # Both check a password hash (a dummy one for the unknown email), which dominates the time.
    known_time = statistics.median(t for _, t in known_answers)
    unknown_time = statistics.median(t for _, t in unknown_answers)
    assert unknown_time > known_time / 3, (known_time, unknown_time)
    # And both are throttled at the same attempt.
    for email in (caller.email, unknown):
        for _ in range(throttle.PAIR.free - 3 + 1):
            assert (await client.post("/v1/auth/login", json=login(email, WRONG))).status_code == 401
        assert (await client.post("/v1/auth/login", json=login(email, WRONG))).status_code == 429


async def test_one_address_guessing_many_emails_is_slowed(client: Client) -> None:
    for number in range(throttle.ADDRESS.free + 1):
        response = await client.post("/v1/auth/login", json=login(f"guess-{number}@example.com", WRONG))
        assert response.status_code == 401
    refused = await client.post("/v1/auth/login", json=login("one-more@example.com", WRONG))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


async def test_refused_sign_ups_count_against_the_address(client: Client) -> None:
    taken = await sign_up(client)
    body = {"email": taken.email, "password": PASSWORD, "tenant_name": "Again"}
    for _ in range(throttle.ADDRESS.free + 1):
        assert (await client.post("/v1/auth/signup", json=body)).status_code == 409
    throttled = await client.post("/v1/auth/signup", json=body)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    fresh = {**body, "email": "fresh-signup@example.com"}
    assert (await client.post("/v1/auth/signup", json=fresh)).status_code == 429


async def test_the_sign_in_page_is_throttled_by_the_same_rule(client: Client) -> None:
    caller = await sign_up(client)
    for _ in range(throttle.PAIR.free + 1):
        assert (await client.post("/v1/auth/login", json=login(caller.email, WRONG))).status_code == 401
    form = {"email": caller.email, "password": PASSWORD}
    page = await client.post("/signin", data=form, follow_redirects=False)
    assert page.status_code == 429 and page.headers["retry-after"] == "1"
    assert "text/html" in page.headers["content-type"]
    assert "Too many failed attempts; try again in 1 s." in page.text


async def test_the_cleanup_forgets_counts_that_hold_nothing_any_more(
    client: Client, settings: Settings
) -> None:
    caller = await sign_up(client)
    await client.post("/v1/auth/login", json=login("nobody@example.com", WRONG))
    assert (await client.post("/v1/auth/login", json=login(caller.email, PASSWORD))).status_code == 200
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            mark_unscoped(session)
            before = len((await session.scalars(select(SignInThrottle))).all())
            assert before > 0
            # Within the hour every count is kept.
            assert await throttle.forget_stale(session, datetime.now(UTC)) == 0
            # Past it, only the sign-in that vouches for its address (30 days) stays.
            gone = await throttle.forget_stale(
                session, datetime.now(UTC) + throttle.FORGET_AFTER + timedelta(1)
            )
            await session.commit()
            kept = (await session.scalars(select(SignInThrottle))).all()
        assert gone == before - len(kept) and gone > 0
        assert [row.last_success_at is not None for row in kept] == [True] * len(kept) and kept
    finally:
        await engine.dispose()
