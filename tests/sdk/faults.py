"""Transports that wrap the real one, to record what was sent and to inject failures."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
from rushes._events import SSEParser

Match = Callable[[httpx.Request], bool]


def is_part(request: httpx.Request) -> bool:
    return request.method == "PUT" and "/parts/" in request.url.path


def part_number(request: httpx.Request) -> int:
    return int(request.url.path.rsplit("/", 1)[1])


@dataclass
class Faults:
    """Shared by the sync and async transports: which requests fail, and how."""

    match: Match = lambda request: True
    #: Answer this status (as a problem document) for the first ``fail_times`` matching requests.
    status: int | None = None
    fail_times: int = 0
    #: After this many matching requests went through, every further one fails to connect.
    break_after: int | None = None
    #: Forward the first ``lose_answers`` matching requests to the server, then drop the answer
    #: (a read timeout): the server acted, the client cannot know it.
    lose_answers: int = 0
    headers: dict[str, str] = field(default_factory=lambda: {"Retry-After": "0"})
    sent: list[httpx.Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _matched: int = 0
    _lost: int = 0

    def before(self, request: httpx.Request) -> httpx.Response | None:
        with self._lock:
            self.sent.append(request)
            if not self.match(request):
                return None
            self._matched += 1
            matched = self._matched
        if self.break_after is not None and matched > self.break_after:
            raise httpx.ConnectError("injected: connection lost", request=request)
        if self.status is not None and matched <= self.fail_times:
            body = {
                "status": self.status,
                "title": "Injected",
                "detail": "injected failure",
                "type": "about:blank",
            }
            return httpx.Response(self.status, json=body, headers=self.headers, request=request)
        return None

    def answer_lost(self, request: httpx.Request) -> bool:
        with self._lock:
            if self.match(request) and self._lost < self.lose_answers:
                self._lost += 1
                return True
        return False

    def matching(self) -> list[httpx.Request]:
        return [r for r in self.sent if self.match(r)]


class FaultTransport(httpx.BaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.faults.before(request) or self.inner.handle_request(request)
        if self.faults.answer_lost(request):
            response.read()
            raise httpx.ReadTimeout("injected: answer lost", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncFaultTransport(httpx.AsyncBaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = self.faults.before(request) or await self.inner.handle_async_request(request)
        if self.faults.answer_lost(request):
            await response.aread()
            raise httpx.ReadTimeout("injected: answer lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_stream(request: httpx.Request) -> bool:
    """A request for a live events stream (of a fine-tune or a generation)."""
    return request.url.path.endswith("/events/stream")


class _CutStream(httpx.SyncByteStream):
    """Passes the stream through up to the end of its first event, then drops or ends it."""

    def __init__(self, inner: httpx.Response, drop: bool) -> None:
        self.inner, self.drop = inner, drop

    def __iter__(self) -> Iterator[bytes]:
        parser, pending, passed = SSEParser(), b"", b""
        stream = self.inner.stream
        assert isinstance(stream, httpx.SyncByteStream)
        for chunk in stream:
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                passed += line + b"\n"
                if parser.feed(line.decode()) is not None:
                    yield passed
                    if self.drop:
                        raise httpx.RemoteProtocolError("injected: connection dropped")
                    return
        raise AssertionError("the stream ended before its first event")

    def close(self) -> None:
        self.inner.close()


class StreamCutter(httpx.BaseTransport):
    """Cuts the first events stream after its first event (``drop``: the connection breaks;
    otherwise the stream ends early); records every stream request in ``streams``."""

    def __init__(self, drop: bool) -> None:
        self.inner, self.drop = httpx.HTTPTransport(), drop
        self.streams: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not is_stream(request):
            return response
        self.streams.append(request)
        if len(self.streams) > 1:
            return response
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CutStream(response, self.drop),
            request=request,
        )

    def close(self) -> None:
        self.inner.close()
