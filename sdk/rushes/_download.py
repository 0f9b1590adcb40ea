"""Saving a download to disk: one loop for adapters and generation outputs, blocking or asyncio.

The file is written under a temporary name in the target's folder and renamed into place
only when the download is complete and checked, so a reader never sees half a file and a
failed download leaves nothing behind. The API may answer with a redirect to a signed
storage URL (S3): that URL is its own credential, so it is fetched without the API key,
the client's default headers or cookies. Connection errors and retryable statuses start
the whole download again (asking the API afresh, so a signed URL never goes stale), with
the client's retry settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from rushes._base import Op, base_headers
from rushes._errors import APIConnectionError, APIError

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

#: Redirects followed from the API's answer (the API sends one; storage may add its own).
MAX_REDIRECTS = 5


class PartialFile:
    """A temporary file next to ``target``: :meth:`commit` renames it into place, :meth:`discard` drops it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not mkstemp: its file is private (0600), and the download should get the mode any new
        # file gets (0666 less the umask). O_EXCL still refuses to reuse an existing name.
        self._temp = target.parent / f".{target.name}.{secrets.token_hex(8)}.part"
        fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._done = False
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of what was written so far."""
        return self._hash.hexdigest()

    def commit(self) -> Path:
        self._file.close()
        os.replace(self._temp, self.target)
        self._done = True
        return self.target

    def discard(self) -> None:
        """Remove the temporary file; nothing once it was committed."""
        self._file.close()
        if not self._done:
            self._temp.unlink(missing_ok=True)
            self._done = True


#: Checks a complete download (the final response, the file) and commits it, or raises.
Finish = Callable[[httpx.Response, PartialFile], Path]


def commit_complete(response: httpx.Response, partial: PartialFile) -> Path:
    """A :data:`Finish` that commits the file once it holds as many bytes as ``Content-Length`` said.

    A short body raises :class:`~rushes.APIConnectionError`, so the download is tried again.
    """
    expected = response.headers.get("content-length")
    if expected is not None and expected.isdigit() and response.num_bytes_downloaded != int(expected):
        raise APIConnectionError(
            f"The download from {response.url.host} ended after {response.num_bytes_downloaded} "
            f"of {expected} bytes.",
            request=response.request,
        )
    return partial.commit()


def _redirected(requester: SyncRequester | AsyncRequester, response: httpx.Response) -> httpx.Request | None:
    """The request for a redirect's target: no API key, no default headers; None if not a redirect."""
    if not response.is_redirect:
        return None
    url = response.url.join(response.headers["location"])
    return httpx.Request(
        "GET",
        url,
        headers=base_headers(accept="*/*"),
        extensions={"timeout": requester.options.timeout.as_dict()},
    )


def _open_sync(requester: SyncRequester, request: httpx.Request) -> httpx.Response:
    """The streaming answer to ``request``, redirects followed without the key; raises on an error."""
    http = requester.http
    response = http.send(request, stream=True, follow_redirects=False)
    for _ in range(MAX_REDIRECTS):
        target = _redirected(requester, response)
        if target is None:
            break
        response.close()
        # auth=None: not even an auth the caller configured on their own httpx client.
        response = http.send(target, stream=True, follow_redirects=False, auth=None)
    if not response.is_success:
        try:
            response.read()
        finally:
            response.close()
        raise requester.error_for(response)
    return response


async def _open_async(requester: AsyncRequester, request: httpx.Request) -> httpx.Response:
    http = requester.http
    response = await http.send(request, stream=True, follow_redirects=False)
    for _ in range(MAX_REDIRECTS):
        target = _redirected(requester, response)
        if target is None:
            break
        await response.aclose()
        response = await http.send(target, stream=True, follow_redirects=False, auth=None)
    if not response.is_success:
        try:
            await response.aread()
        finally:
            await response.aclose()
        raise requester.error_for(response)
    return response


def download_sync(requester: SyncRequester, op: Op[None], target: Path, finish: Finish) -> Path:
    """Save what ``op`` answers to ``target`` once ``finish`` accepts it; returns ``target``."""
    retries = 0
    while True:
        request = requester.build_request(requester.http, op, None, retries)
        error: APIError
        partial: PartialFile | None = None
        try:
            response = _open_sync(requester, request)
            try:
                partial = PartialFile(target)
                for chunk in response.iter_bytes():
                    partial.write(chunk)
                return finish(response, partial)
            finally:
                response.close()
        except httpx.TransportError as exc:
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        finally:
            if partial is not None:
                partial.discard()
        delay = requester.retry_delay(error, retries)
        if delay is None:
            raise error
        time.sleep(delay)
        retries += 1


async def download_async(requester: AsyncRequester, op: Op[None], target: Path, finish: Finish) -> Path:
    retries = 0
    while True:
        request = requester.build_request(requester.http, op, None, retries)
        error: APIError
        partial: PartialFile | None = None
        try:
            response = await _open_async(requester, request)
            try:
                partial = PartialFile(target)
                async for chunk in response.aiter_bytes():
                    partial.write(chunk)
                return finish(response, partial)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        finally:
            if partial is not None:
                partial.discard()
        delay = requester.retry_delay(error, retries)
        if delay is None:
            raise error
        await asyncio.sleep(delay)
        retries += 1
