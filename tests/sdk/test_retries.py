"""Retries, idempotency keys and timeouts, with faults injected around the real transport."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import rushes
from rushes._retry import RetryPolicy, parse_retry_after

from tests.sdk.conftest import LiveServer
from tests.sdk.faults import AsyncFaultTransport, Faults, FaultTransport


def _is_dataset_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/v1/datasets"


def test_503_twice_then_success_creates_one_object_with_one_idempotency_key(
    live_server: LiveServer, api_key: str
) -> None:
    faults = Faults(match=_is_dataset_create, status=503, fail_times=2)
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        dataset = client.datasets.create(name="retried")
        tries = faults.matching()
        assert len(tries) == 3
        keys = {t.headers["idempotency-key"] for t in tries}
        assert len(keys) == 1 and keys.pop().startswith("rushes-")
        assert [t.headers.get("x-rushes-retry-count") for t in tries] == [None, "1", "2"]
        assert [d.id for d in client.datasets.list()] == [dataset.id]
        # A second create is a new operation with a new key; reads carry none.
        client.datasets.create(name="second")
        assert faults.matching()[-1].headers["idempotency-key"] not in {
            t.headers["idempotency-key"] for t in tries
        }
        client.me.get()
        assert "idempotency-key" not in faults.sent[-1].headers


def test_a_create_whose_answer_was_lost_is_not_made_twice(live_server: LiveServer, api_key: str) -> None:
    # The server handles the first try; only its answer is lost. The retry carries the same
    # key, so the server replays the first answer instead of creating a second object.
    faults = Faults(match=_is_dataset_create, lose_answers=1)
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        dataset = client.datasets.create(name="once")
        assert len(faults.matching()) == 2
        assert [d.id for d in client.datasets.list()] == [dataset.id]


async def test_async_client_retries_the_same_way(live_server: LiveServer, api_key: str) -> None:
    faults = Faults(match=_is_dataset_create, status=502, fail_times=2)
    async with rushes.AsyncClient(
        api_key=api_key, base_url=live_server.url, transport=AsyncFaultTransport(faults)
    ) as client:
        await client.datasets.create(name="retried")
        assert len({t.headers["idempotency-key"] for t in faults.matching()}) == 1
        assert len(faults.matching()) == 3
        assert (await client.datasets.list().first_page()).total == 1


def test_gives_up_after_max_retries(live_server: LiveServer, api_key: str) -> None:
    faults = Faults(status=503, fail_times=10)
    client = rushes.Client(
        api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults), max_retries=3
    )
    with pytest.raises(rushes.InternalServerError):
        client.me.get()
    assert len(faults.sent) == 4


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(live_server: LiveServer, api_key: str, status: int) -> None:
    faults = Faults(status=status, fail_times=1)
    client = rushes.Client(
        api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults), max_retries=1
    )
    assert client.me.get().email  # the retry reached the real server
    assert len(faults.sent) == 2


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 413, 422])
def test_other_statuses_are_not_retried(live_server: LiveServer, api_key: str, status: int) -> None:
    faults = Faults(status=status, fail_times=1)
    client = rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults))
    with pytest.raises(rushes.APIStatusError) as raised:
        client.me.get()
    assert raised.value.status_code == status and len(faults.sent) == 1


def test_server_hint_and_quota_are_not_retried(live_server: LiveServer, api_key: str) -> None:
    faults = Faults(status=503, fail_times=5, headers={"x-should-retry": "false"})
    client = rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults))
    with pytest.raises(rushes.InternalServerError):
        client.me.get()
    assert len(faults.sent) == 1
    # A quota refusal is final whatever the hints: waiting cannot grow the plan.
    faults = Faults(status=402, fail_times=5, headers={"x-should-retry": "true", "Retry-After": "0"})
    client = rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults))
    with pytest.raises(rushes.QuotaExceededError):
        client.me.get()
    assert len(faults.sent) == 1


def test_retry_after_is_honoured(live_server: LiveServer, api_key: str) -> None:
    faults = Faults(status=429, fail_times=1, headers={"Retry-After": "0.6"})
    client = rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults))
    started = time.monotonic()
    assert client.me.get().email
    assert time.monotonic() - started >= 0.6


def test_backoff_grows_with_jitter_and_parses_hints() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0, jitter=0.25)
    for retries, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 8.0)]:
        delays = [policy.delay(retries) for _ in range(50)]
        assert all(0.75 * ceiling <= d <= ceiling for d in delays)
    assert policy.delay(0, {"retry-after": "3"}) == 3.0
    assert policy.delay(0, {"retry-after": "3600"}) <= 0.5  # absurd hints fall back to backoff
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < (parse_retry_after({"retry-after": later}) or 0) <= 30
    assert parse_retry_after({"retry-after": "soon"}) is None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_timeouts_raise_api_timeout_error(silent_port: int) -> None:
    client = rushes.Client(
        api_key="rsh_x", base_url=f"http://127.0.0.1:{silent_port}", timeout=0.2, max_retries=1
    )
    started = time.monotonic()
    with pytest.raises(rushes.APITimeoutError) as raised:
        client.me.get()
    assert isinstance(raised.value, rushes.APIConnectionError)
    assert time.monotonic() - started >= 0.4  # two tries of 0.2 s each


async def test_async_timeouts_raise_api_timeout_error(silent_port: int) -> None:
    async with rushes.AsyncClient(
        api_key="rsh_x", base_url=f"http://127.0.0.1:{silent_port}", timeout=0.2, max_retries=0
    ) as client:
        with pytest.raises(rushes.APITimeoutError):
            await client.me.get()


def test_connection_refused_raises_api_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = rushes.Client(api_key="rsh_x", base_url=f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(rushes.APIConnectionError) as raised:
        client.me.get()
    assert not isinstance(raised.value, rushes.APITimeoutError)
    # Which host and port, what happened, and what to check.
    assert raised.value.message.startswith(
        f"Could not connect to the Rushes API at 127.0.0.1:{port}: the connection was refused."
    )
    assert "RUSHES_BASE_URL" in raised.value.message
