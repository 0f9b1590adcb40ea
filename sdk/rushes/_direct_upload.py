"""Parts sent straight to storage through signed URLs, and the wait for the server's checks.

``assets.upload`` goes this way when the session's ``transfer`` is ``direct``. The rules are
written once: which parts to sign next, what to do after each answer from storage, how
long to wait between looks at the checks. Only the loops that send and sleep differ,
blocking for :class:`~rushes.Client` (a thread pool shares one :class:`DirectPartsSync`)
and awaited for :class:`~rushes.AsyncClient`.

Storage gets a plain HTTP client of its own: the Rushes client's credentials (its
Authorization header, a session's cookies) must never reach it, and a signed URL needs none.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import httpx
from tqdm import tqdm

from rushes import types
from rushes._base import BaseRequester, base_headers
from rushes._errors import (
    APIError,
    UploadCheckTimeout,
    recorded_problem_error,
    storage_error,
    storage_transport_error,
)
from rushes._resource import path_segment

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester
    from rushes.resources.uploads import Uploads

#: The most parts one request signs (the API's limit).
MAX_PART_URLS = 100
#: How long ``assets.upload`` waits for the checks of a direct upload, by default.
DEFAULT_CHECK_TIMEOUT = 30 * 60.0
# A small file is checked within a second or two, a large one in minutes: look soon, then
# less and less often.
_CHECK_POLL_FIRST = 0.5
_CHECK_POLL_MAX = 5.0
_CHECK_POLL_GROWTH = 1.5


def storage_client(timeout: httpx.Timeout) -> httpx.Client:
    """A plain client for storage: none of the Rushes client's headers or cookies."""
    return httpx.Client(timeout=timeout, headers=base_headers("*/*"))


def async_storage_client(timeout: httpx.Timeout) -> httpx.AsyncClient:
    """:func:`storage_client` for asyncio."""
    return httpx.AsyncClient(timeout=timeout, headers=base_headers("*/*"))


class SignedUrls:
    """The signed URL each part goes to, asked for in batches of the parts not yet sent.

    Safe to share between threads; asking the API for a batch is the caller's to serialise.
    """

    def __init__(self, numbers: Iterable[int]) -> None:
        self._unsent = dict.fromkeys(numbers)  # an ordered set: the order parts are sent in
        self._urls: dict[int, str] = {}
        self._lock = threading.Lock()

    def url(self, number: int) -> str | None:
        with self._lock:
            return self._urls.get(number)

    def to_sign(self, number: int) -> list[int]:
        """This part, then the next unsent parts that have no URL, up to a batch."""
        with self._lock:
            rest = (n for n in self._unsent if n != number and n not in self._urls)
            return [number, *itertools.islice(rest, MAX_PART_URLS - 1)]

    def signed(self, batch: types.PartUrls, number: int) -> str:
        """Keep a batch the API signed; the URL of ``number``, which it holds."""
        with self._lock:
            self._urls.update((p.part_number, p.url) for p in batch.parts)
            return self._urls[number]

    def sent(self, number: int) -> None:
        with self._lock:
            self._unsent.pop(number, None)
            self._urls.pop(number, None)

    def refused(self, url: str) -> None:
        """Storage refused ``url``: it ran out, and with it every URL signed in its batch or
        before. Unless a fresh batch replaced it meanwhile, forget them all."""
        with self._lock:
            if url in self._urls.values():
                self._urls.clear()


class PartPut:
    """One part on its way to storage: after each answer, whether to try again and when.

    Transient failures (no answer, 5xx) follow the client's retry policy and ``max_retries``;
    a 403 is a URL that ran out, so the part is tried at once with a fresh one, and a 403 to
    that fresh URL too is final.
    """

    def __init__(self, requester: BaseRequester, urls: SignedUrls) -> None:
        self.requester, self.urls = requester, urls
        self.retries = 0
        self.resigned = False

    def after(
        self, url: str, request: httpx.Request, outcome: httpx.Response | httpx.TransportError
    ) -> float | None:
        """None once storage holds the part; else seconds to wait before trying again.
        Raises the error when giving up."""
        error: APIError
        if isinstance(outcome, httpx.TransportError):
            error = storage_transport_error(outcome, request)
            error.__cause__ = outcome
        elif outcome.is_success:
            return None
        elif outcome.status_code == 403 and not self.resigned:
            self.resigned = True
            self.urls.refused(url)
            return 0.0
        else:
            error = storage_error(outcome)
        self.resigned = False
        delay = self.requester.retry_delay(error, self.retries)
        if delay is None:
            raise error
        self.retries += 1
        return delay


class DirectPartsSync:
    """Puts parts to storage for a thread pool: one signing request at a time."""

    def __init__(
        self, uploads: Uploads[SyncRequester], upload_id: str, http: httpx.Client, numbers: list[int]
    ) -> None:
        self.uploads, self.upload_id, self.http = uploads, upload_id, http
        self.urls = SignedUrls(numbers)
        self._signing = threading.Lock()

    def put(self, number: int, data: bytes) -> None:
        attempt = PartPut(self.uploads._requester, self.urls)
        while True:
            url = self._url(number)
            request = self.http.build_request("PUT", url, content=data)
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = self.http.send(request)
            except httpx.TransportError as exc:
                outcome = exc
            delay = attempt.after(url, request, outcome)
            if delay is None:
                self.urls.sent(number)
                return
            time.sleep(delay)

    def _url(self, number: int) -> str:
        with self._signing:
            if (url := self.urls.url(number)) is not None:
                return url
            return self.urls.signed(self.uploads.part_urls(self.upload_id, self.urls.to_sign(number)), number)


class DirectPartsAsync:
    """Puts parts to storage for asyncio tasks: one signing request at a time."""

    def __init__(
        self, uploads: Uploads[AsyncRequester], upload_id: str, http: httpx.AsyncClient, numbers: list[int]
    ) -> None:
        self.uploads, self.upload_id, self.http = uploads, upload_id, http
        self.urls = SignedUrls(numbers)
        self._signing = asyncio.Lock()

    async def put(self, number: int, data: bytes) -> None:
        attempt = PartPut(self.uploads._requester, self.urls)
        while True:
            url = await self._url(number)
            request = self.http.build_request("PUT", url, content=data)
            outcome: httpx.Response | httpx.TransportError
            try:
                outcome = await self.http.send(request)
            except httpx.TransportError as exc:
                outcome = exc
            delay = attempt.after(url, request, outcome)
            if delay is None:
                self.urls.sent(number)
                return
            await asyncio.sleep(delay)

    async def _url(self, number: int) -> str:
        async with self._signing:
            if (url := self.urls.url(number)) is not None:
                return url
            return self.urls.signed(
                await self.uploads.part_urls(self.upload_id, self.urls.to_sign(number)), number
            )


class Checks:
    """Following the server's checks of a direct upload it holds whole: what each look at the
    upload means, and how long to wait before the next one."""

    def __init__(
        self, requester: BaseRequester, upload: types.Upload, timeout: float, bar: tqdm[Any]
    ) -> None:
        self.upload_id, self.timeout = upload.id, timeout
        # What a failure read by polling is told as: the look that read it.
        self._look = httpx.Request(
            "GET", f"{requester.options.base_url}/v1/uploads/{path_segment(upload.id)}"
        )
        self._deadline = time.monotonic() + timeout
        self._delay = _CHECK_POLL_FIRST
        # Every byte is sent; the bar stays full while the server reads the file.
        bar.set_postfix_str("checking")

    def asset_id(self, upload: types.Upload) -> str | None:
        """The asset once the checks passed, None while they run; raises why they failed, as
        the same problem answered by a request would be raised."""
        if upload.status == "failed":
            raise recorded_problem_error(upload.failure or {}, self._look)
        return upload.asset_id if upload.status == "completed" else None

    def next_delay(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise UploadCheckTimeout(
                f"The server was still checking upload {self.upload_id} after {self.timeout:g} s;"
                f" uploads.get({self.upload_id!r}) tells how it ends.",
                upload_id=self.upload_id,
            )
        delay = min(self._delay, left)
        self._delay = min(self._delay * _CHECK_POLL_GROWTH, _CHECK_POLL_MAX)
        return delay
