"""Following the Server-Sent Events stream of a fine-tune or a generation, reconnecting from
``Last-Event-ID``; and ``wait``, which follows one until it is final behind a progress bar.

Both kinds of source (a :class:`Followed`) have the same numbered events and the same
statuses, so everything here serves both. The line parser and the reconnection decisions
(:class:`EventFollower`) are shared; only the loops that read the HTTP stream and sleep
differ between the blocking and asyncio clients. A dropped connection, or a stream that
ends before the source's final event, is opened again with ``Last-Event-ID`` set to the
last ``seq`` seen, so no event is missed or seen twice. Retries back off with the client's
retry settings; the count starts afresh whenever a connection delivers an event.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

import httpx
from tqdm import tqdm

from rushes import types
from rushes._base import Op
from rushes._errors import APIError, WaitTimeout
from rushes._resource import Resource

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

LAST_EVENT_ID_HEADER = "Last-Event-ID"

P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Followed:
    """Something with a numbered event stream at ``{path}/events/stream``: a fine-tune or a generation."""

    #: What it is, as messages and the progress bar name it: ``"fine-tune"``, ``"generation"``.
    kind: str
    id: str
    #: Its API path, e.g. ``/v1/fine-tunes/{id}``.
    path: str
    #: What ``wait`` raises when its ``timeout`` runs out first.
    timeout_error: type[WaitTimeout]

    def timed_out(self) -> WaitTimeout:
        return self.timeout_error(f"{self.kind.capitalize()} {self.id} did not finish in time.")


@dataclass(slots=True)
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None


@dataclass(slots=True)
class SSEParser:
    """Turns the lines of a ``text/event-stream`` into events (the WHATWG rules that matter here)."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """One line, without its line break; returns an event when a blank line ends one."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._data and not self._event:
                return None
            event = ServerSentEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):  # a comment, e.g. ": keep-alive"
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def job_event(sse: ServerSentEvent) -> types.JobEvent:
    return types.JobEvent.from_json(json.loads(sse.data))


@dataclass(slots=True)
class EventFollower:
    """What to request next and whether to go on: everything but the I/O of one stream."""

    source: Followed
    last: int = 0
    retries: int = 0
    finished: bool = False
    _fresh: bool = False
    _parser: SSEParser = field(default_factory=SSEParser)

    def op(self) -> Op[None]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last:
            headers[LAST_EVENT_ID_HEADER] = str(self.last)
        return Op(
            "GET",
            f"{self.source.path}/events/stream",
            lambda _: None,
            params={"after": self.last},
            headers=headers,
        )

    def connected(self) -> None:
        self._parser = SSEParser()
        self._fresh = False

    def line(self, line: str) -> types.JobEvent | None:
        """The next event, once; events at or before the last one seen are dropped."""
        sse = self._parser.feed(line)
        if sse is None or not sse.data:
            return None
        event = job_event(sse)
        if event.seq <= self.last:
            return None
        self.last, self._fresh, self.retries = event.seq, True, 0
        if event.type in types.FINAL_STATUSES:
            self.finished = True
        return event

    def ended(self) -> bool:
        """The server closed the stream. True: done. False: open it again now.

        The server ends the stream only once the source is final and every event was sent, so
        an end after the final event, or an end that brought nothing new, means done.
        """
        return self.finished or not self._fresh

    def failed(self, requester: SyncRequester | AsyncRequester, error: APIError) -> float:
        """Seconds to wait before reconnecting; raises ``error`` once retries are spent."""
        delay = requester.retry_delay(error, self.retries)
        if delay is None:
            raise error
        self.retries += 1
        return delay


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _timeout(requester: SyncRequester | AsyncRequester, deadline: float | None) -> httpx.Timeout:
    configured = requester.options.timeout
    remaining = _remaining(deadline)
    if remaining is None:
        return configured
    read = max(0.01, min(remaining, configured.read if configured.read is not None else remaining))
    return httpx.Timeout(configured.connect, read=read, write=configured.write, pool=configured.pool)


def _expired(source: Followed, deadline: float | None) -> None:
    remaining = _remaining(deadline)
    if remaining is not None and remaining <= 0:
        raise source.timed_out()


def follow_sync(
    requester: SyncRequester, source: Followed, after: int = 0, deadline: float | None = None
) -> Iterator[types.JobEvent]:
    """Every event after ``after``, live, until the stream ends with the source final."""
    follower = EventFollower(source, last=after)
    http = requester.http
    while True:
        _expired(source, deadline)
        request = requester.build_request(http, follower.op(), None, follower.retries)
        request.extensions["timeout"] = _timeout(requester, deadline).as_dict()
        error: APIError
        try:
            response = http.send(request, stream=True)
            try:
                if not response.is_success:
                    response.read()
                    raise requester.error_for(response)
                follower.connected()
                for line in response.iter_lines():
                    if (event := follower.line(line)) is not None:
                        yield event
                    _expired(source, deadline)
            finally:
                response.close()
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                _expired(source, deadline)
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        else:
            if follower.ended():
                return
            continue
        time.sleep(follower.failed(requester, error))


async def follow_async(
    requester: AsyncRequester, source: Followed, after: int = 0, deadline: float | None = None
) -> AsyncIterator[types.JobEvent]:
    follower = EventFollower(source, last=after)
    http = requester.http
    while True:
        _expired(source, deadline)
        request = requester.build_request(http, follower.op(), None, follower.retries)
        request.extensions["timeout"] = _timeout(requester, deadline).as_dict()
        error: APIError
        try:
            response = await http.send(request, stream=True)
            try:
                if not response.is_success:
                    await response.aread()
                    raise requester.error_for(response)
                follower.connected()
                async for line in response.aiter_lines():
                    if (event := follower.line(line)) is not None:
                        yield event
                    _expired(source, deadline)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                _expired(source, deadline)
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        else:
            if follower.ended():
                return
            continue
        await asyncio.sleep(follower.failed(requester, error))


class Progressing(Protocol):
    """What ``wait`` reads of the source's state: a fine-tune or a generation."""

    @property
    def is_final(self) -> bool: ...
    @property
    def step(self) -> int: ...
    @property
    def total_steps(self) -> int: ...


S = TypeVar("S", bound=Progressing)
EventCallback = Callable[[types.JobEvent], Any]


class ProgressBar:
    """The tqdm bar ``wait`` shows: steps done of the total, the latest loss (fine-tunes) as postfix."""

    def __init__(self, source: Followed, state: Progressing, enabled: bool) -> None:
        self._bar = tqdm(
            total=state.total_steps or None,
            initial=state.step,
            unit="step",
            desc=f"{source.kind} {source.id[:8]}",
            disable=not enabled,
            leave=True,
        )

    def update(self, event: types.JobEvent) -> None:
        data: dict[str, Any] = event.data
        step = data.get("step")
        if event.type == "succeeded" and self._bar.total:
            step = self._bar.total  # a success did every step, whatever progress was last reported
        if isinstance(step, int) and step > self._bar.n:
            self._bar.update(step - self._bar.n)
        if event.type == "progress" and (loss := data.get("loss")) is not None:
            self._bar.set_postfix(loss=loss)

    def close(self) -> None:
        self._bar.close()


def deadline_after(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def wait_sync(
    requester: SyncRequester,
    source: Followed,
    get: Callable[[], S],
    *,
    progress: bool,
    timeout: float | None,
    on_event: EventCallback | None,
) -> S:
    """Follow ``source`` until it is final and return its state as ``get`` reads it then.

    A source already final is returned at once. Every event (from the first) goes to
    ``on_event``; ``timeout`` (seconds) raises the source's :class:`~rushes.WaitTimeout`.
    """
    deadline = deadline_after(timeout)
    state = get()
    if state.is_final:
        return state
    bar = ProgressBar(source, state, progress)
    try:
        for event in follow_sync(requester, source, 0, deadline):
            bar.update(event)
            if on_event is not None:
                on_event(event)
    finally:
        bar.close()
    return get()


async def wait_async(
    requester: AsyncRequester,
    source: Followed,
    get: Callable[[], Awaitable[S]],
    *,
    progress: bool,
    timeout: float | None,  # noqa: ASYNC109 (the same call as on the blocking client)
    on_event: EventCallback | None,
) -> S:
    deadline = deadline_after(timeout)
    state = await get()
    if state.is_final:
        return state
    bar = ProgressBar(source, state, progress)
    try:
        async for event in follow_async(requester, source, 0, deadline):
            bar.update(event)
            if on_event is not None:
                on_event(event)
    finally:
        bar.close()
    return await get()


class event_stream(Generic[P]):
    """A live stream of events: an iterator on a ``Client``, an async iterator on an ``AsyncClient``."""

    def __init__(
        self,
        sync: Callable[Concatenate[Any, P], Iterator[types.JobEvent]],
        async_: Callable[Concatenate[Any, P], AsyncIterator[types.JobEvent]],
    ) -> None:
        self._sync, self._async = sync, async_
        self.__doc__ = sync.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> event_stream[P]: ...
    @overload
    def __get__(
        self, obj: Resource[SyncRequester], owner: type[Any]
    ) -> Callable[P, Iterator[types.JobEvent]]: ...
    @overload
    def __get__(
        self, obj: Resource[AsyncRequester], owner: type[Any]
    ) -> Callable[P, AsyncIterator[types.JobEvent]]: ...
    def __get__(self, obj: Resource[Any] | None, owner: type[Any]) -> Any:
        if obj is None:
            return self
        implementation = self._async if obj._requester.is_async else self._sync
        return functools.partial(implementation, obj)
