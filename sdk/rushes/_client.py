"""``Client`` and ``AsyncClient``: the same resources over a blocking or an asyncio requester."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from rushes._base import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    BaseRequester,
    ClientOptions,
    Op,
)
from rushes._errors import APIError
from rushes._pagination import AsyncPager, SyncPager
from rushes._resource import R
from rushes.resources import (
    Admin,
    ApiKeys,
    Assets,
    Auth,
    Bases,
    BillingResource,
    Datasets,
    FineTunes,
    Generations,
    Invitations,
    MeResource,
    Models,
    QuotasResource,
    Tenant,
    Uploads,
    UsageResource,
    Webhooks,
)
from rushes.types import Page

T = TypeVar("T")


class SyncRequester(BaseRequester):
    def __init__(self, options: ClientOptions, http: httpx.Client) -> None:
        super().__init__(options)
        self.http = http

    def execute(self, op: Op[T]) -> T:
        key = self.new_idempotency_key(op)
        retries = 0
        while True:
            request = self.build_request(self.http, op, key, retries)
            error: APIError
            try:
                response = self.http.send(request)
            except httpx.TransportError as exc:
                error = self.transport_error(exc, request)
                error.__cause__ = exc
            else:
                if response.is_success:
                    return self.parse(op, response)
                error = self.error_for(response)
            delay = self.retry_delay(error, retries)
            if delay is None:
                raise error
            time.sleep(delay)
            retries += 1

    def paginate(self, op: Op[Page[T]]) -> SyncPager[T]:
        return SyncPager(self, op)


class AsyncRequester(BaseRequester):
    is_async = True

    def __init__(self, options: ClientOptions, http: httpx.AsyncClient) -> None:
        super().__init__(options)
        self.http = http

    async def execute(self, op: Op[T]) -> T:
        key = self.new_idempotency_key(op)
        retries = 0
        while True:
            request = self.build_request(self.http, op, key, retries)
            error: APIError
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                error = self.transport_error(exc, request)
                error.__cause__ = exc
            else:
                if response.is_success:
                    return self.parse(op, response)
                error = self.error_for(response)
            delay = self.retry_delay(error, retries)
            if delay is None:
                raise error
            await asyncio.sleep(delay)
            retries += 1

    def paginate(self, op: Op[Page[T]]) -> AsyncPager[T]:
        return AsyncPager(self, op)


class _ClientBase(Generic[R]):
    """Attaches every resource to a requester. New resource: one module and one line here."""

    _owns_http: bool

    def __init__(self, requester: R) -> None:
        self._requester = requester
        self.me = MeResource(requester)
        self.auth = Auth(requester)
        self.tenant = Tenant(requester)
        self.invitations = Invitations(requester)
        self.api_keys = ApiKeys(requester)
        self.uploads = Uploads(requester)
        self.assets = Assets(requester)
        self.datasets = Datasets(requester)
        self.bases = Bases(requester)
        self.fine_tunes = FineTunes(requester)
        self.models = Models(requester)
        self.generations = Generations(requester)
        self.webhooks = Webhooks(requester)
        self.usage = UsageResource(requester)
        self.quotas = QuotasResource(requester)
        self.billing = BillingResource(requester)
        self.admin = Admin(requester)

    @property
    def api_key(self) -> str | None:
        """The API key; None for a client acting with a signed-in session."""
        return self._requester.options.api_key

    @property
    def base_url(self) -> str:
        return self._requester.options.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        return self._requester.options.timeout

    @property
    def max_retries(self) -> int:
        return self._requester.options.max_retries

    def with_options(
        self,
        *,
        api_key: str | None = NOT_GIVEN,
        base_url: str | None = NOT_GIVEN,
        timeout: float | httpx.Timeout | None = NOT_GIVEN,
        max_retries: int = NOT_GIVEN,
        default_headers: Mapping[str, str] | None = NOT_GIVEN,
    ) -> Self:
        """A copy with some options changed, sharing this client's connection pool."""
        options = self._requester.options.with_changes(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        # Both requesters take (options, http): the copy keeps this one's kind and pool.
        requester: Any = self._requester
        copy = type(self).__new__(type(self))
        copy._owns_http = False
        _ClientBase.__init__(copy, type(requester)(options, requester.http))
        return copy

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(_ClientBase[SyncRequester]):
    """The blocking client.

    ``api_key`` defaults to ``RUSHES_API_KEY`` and ``base_url`` to ``RUSHES_BASE_URL``
    (then ``http://127.0.0.1:8000``). Without a key, ``session`` (the cookies of a
    :func:`rushes.sign_up` or :func:`rushes.log_in` session) acts as the signed-in user.
    Pass ``transport`` (any ``httpx.BaseTransport``) or a ready ``http_client`` to control the
    HTTP layer, e.g. in tests.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        session: Mapping[str, str] | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        options = ClientOptions.resolve(
            api_key=api_key,
            session=session,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        super().__init__(SyncRequester(options, http_client or httpx.Client(transport=transport)))

    def close(self) -> None:
        if self._owns_http:
            self._requester.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncClient(_ClientBase[AsyncRequester]):
    """The asyncio client: the same resources as :class:`Client`, each call awaited.

    Pass ``transport`` (any ``httpx.AsyncBaseTransport``, e.g. ``httpx.ASGITransport(app)``)
    or a ready ``http_client`` to control the HTTP layer.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        session: Mapping[str, str] | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        options = ClientOptions.resolve(
            api_key=api_key,
            session=session,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        super().__init__(AsyncRequester(options, http_client or httpx.AsyncClient(transport=transport)))

    async def close(self) -> None:
        if self._owns_http:
            await self._requester.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
