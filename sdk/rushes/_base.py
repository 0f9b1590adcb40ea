"""What the sync and async clients share: options, request building, the retry decision, parsing.

Everything here is written once. The two requesters in ``_client.py`` differ only in how
they send a request and how they sleep.
"""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import httpx

from rushes._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RushesError,
    host_and_port,
    is_quota_problem,
    status_error,
)
from rushes._retry import RetryPolicy
from rushes._version import __version__

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_COUNT_HEADER = "X-Rushes-Retry-Count"


class _Unset:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


#: "Keep the current value" for ``with_options``, where ``None`` can be a real value.
NOT_GIVEN: Any = _Unset()


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """One API call, described without doing any I/O: what to send and how to read the answer."""

    method: str
    path: str
    cast: Callable[[Any], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None

    @property
    def creates(self) -> bool:
        """Creates carry an Idempotency-Key, reused across their retries."""
        return self.method == "POST"

    def with_params(self, **params: Any) -> Op[T]:
        return replace(self, params={**(self.params or {}), **params})


def transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    """No answer: the error names the host and port tried, and what went wrong."""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(request=request)
    where = host_and_port(request.url)
    if isinstance(exc, httpx.ConnectError) and "refused" in str(exc).lower():
        return APIConnectionError(
            f"Could not connect to the Rushes API at {where}: the connection was refused. Is the server"
            " running there (`make serve` starts one), or is RUSHES_BASE_URL or --base-url wrong?",
            request=request,
        )
    return APIConnectionError(f"Could not reach the Rushes API at {where}: {exc}", request=request)


def nothing(_: Any) -> None:
    """The cast of calls that answer 204 No Content."""
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    #: The credential: an API key, else the cookies of a signed-in session (``rushes.log_in``).
    api_key: str | None = None
    session: Mapping[str, str] = field(default_factory=dict)
    base_url: str = DEFAULT_BASE_URL
    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    max_retries: int = DEFAULT_MAX_RETRIES
    default_headers: Mapping[str, str] = field(default_factory=dict)
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None,
        session: Mapping[str, str] | None = None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
    ) -> ClientOptions:
        """Arguments first, then ``RUSHES_API_KEY`` / ``RUSHES_BASE_URL``, then defaults.

        A session given explicitly is used as given: ``RUSHES_API_KEY`` does not replace it.
        """
        key = api_key or (None if session else os.environ.get("RUSHES_API_KEY"))
        if not key and not session:
            raise RushesError(
                "No API key: pass api_key=... or set RUSHES_API_KEY (the CLI's `rushes login` stores one;"
                " `rushes keys create` makes one)."
            )
        return cls(
            api_key=key,
            session=dict(session or {}) if not key else {},
            base_url=resolve_base_url(base_url),
            timeout=as_timeout(timeout),
            max_retries=max_retries,
            default_headers=dict(default_headers or {}),
        )

    def with_changes(
        self,
        *,
        api_key: str | None = NOT_GIVEN,
        base_url: str | None = NOT_GIVEN,
        timeout: float | httpx.Timeout | None = NOT_GIVEN,
        max_retries: int = NOT_GIVEN,
        default_headers: Mapping[str, str] | None = NOT_GIVEN,
    ) -> ClientOptions:
        changes: dict[str, Any] = {}
        if api_key is not NOT_GIVEN and api_key:
            changes["api_key"] = api_key
            changes["session"] = {}
        if base_url is not NOT_GIVEN and base_url:
            changes["base_url"] = base_url.rstrip("/")
        if timeout is not NOT_GIVEN:
            changes["timeout"] = as_timeout(timeout)
        if max_retries is not NOT_GIVEN:
            changes["max_retries"] = max_retries
        if default_headers is not NOT_GIVEN:
            changes["default_headers"] = {**self.default_headers, **(default_headers or {})}
        return replace(self, **changes)


def resolve_base_url(base_url: str | None) -> str:
    """The argument, else ``RUSHES_BASE_URL``, else the local server; without a trailing slash."""
    return (base_url or os.environ.get("RUSHES_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if timeout is None:
        return DEFAULT_TIMEOUT
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


def credential_headers(options: ClientOptions) -> dict[str, str]:
    """The API key as a bearer token, else the session's cookies."""
    if options.api_key:
        return {"Authorization": f"Bearer {options.api_key}"}
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in options.session.items())}


_USER_AGENT = f"rushes-python/{__version__} python/{platform.python_version()}"


def base_headers(accept: str = "application/json") -> dict[str, str]:
    """What every request the SDK sends carries, to the API or elsewhere (a storage redirect's
    target): who is asking, and what answer it takes."""
    return {"Accept": accept, "User-Agent": _USER_AGENT}


class BaseRequester:
    """Builds requests, decides on retries and reads answers; subclasses send and sleep."""

    is_async = False

    def __init__(self, options: ClientOptions) -> None:
        self.options = options

    def build_request(
        self,
        http: httpx.Client | httpx.AsyncClient,
        op: Op[Any],
        idempotency_key: str | None,
        retries_done: int,
    ) -> httpx.Request:
        headers = {
            **credential_headers(self.options),
            **base_headers(),
            **self.options.default_headers,
        }
        if idempotency_key:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        if retries_done:
            headers[RETRY_COUNT_HEADER] = str(retries_done)
        headers.update(op.headers or {})
        params = {k: v for k, v in (op.params or {}).items() if v is not None}
        return http.build_request(
            op.method,
            self.options.base_url + op.path,
            params=params or None,
            json=op.json,
            content=op.content,
            headers=headers,
            timeout=self.options.timeout,
        )

    @staticmethod
    def new_idempotency_key(op: Op[Any]) -> str | None:
        if not op.creates:
            return None
        given = {k.lower(): v for k, v in (op.headers or {}).items()}.get(IDEMPOTENCY_HEADER.lower())
        return given or f"rushes-{uuid.uuid4()}"

    @staticmethod
    def transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
        return transport_error(exc, request)

    def retry_delay(self, error: APIError, retries_done: int) -> float | None:
        """Seconds to wait before trying again, or None to give up and raise ``error``."""
        if retries_done >= self.options.max_retries:
            return None
        policy = self.options.retry_policy
        if isinstance(error, APIStatusError):
            headers = error.response.headers
            if not policy.should_retry_status(error.status_code, headers, quota=is_quota_problem(error.body)):
                return None
            return policy.delay(retries_done, headers)
        if isinstance(error, APIConnectionError):
            return policy.delay(retries_done)
        return None

    @staticmethod
    def parse(op: Op[T], response: httpx.Response) -> T:
        if response.status_code == 204 or not response.content:
            return op.cast(None)
        if response.headers.get("content-type", "").startswith("text/"):
            return op.cast(response.text)  # a document, such as a model card
        return op.cast(response.json())

    def error_for(self, response: httpx.Response) -> APIStatusError:
        return status_error(response, api_key=self.options.api_key)
