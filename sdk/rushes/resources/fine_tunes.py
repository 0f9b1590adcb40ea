"""Fine-tunes: train a LoRA on a dataset version, follow it live, cancel or resume it; and the
bases a deployment can fine-tune."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, overload

from rushes import types
from rushes._base import IDEMPOTENCY_HEADER, Op
from rushes._events import EventCallback, ProgressBar, follow_async, follow_sync
from rushes._resource import R, Resource, dual, endpoint, list_op, paginated, path_segment

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

P = ParamSpec("P")
Preset = Literal["quick", "standard", "thorough"]


def _path(job_id: str) -> str:
    return f"/v1/fine-tunes/{path_segment(job_id)}"


class event_stream(Generic[P]):
    """A live stream of job events: an iterator on a ``Client``, an async iterator on an ``AsyncClient``."""

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


def _stream(self: FineTunes[SyncRequester], job_id: str, *, after: int = 0) -> Iterator[types.JobEvent]:
    """Events after sequence number ``after`` as they happen, until the job is final.

    A dropped connection is reopened with ``Last-Event-ID``: no event is missed or repeated.
    """
    return follow_sync(self._requester, job_id, after)


def _stream_async(
    self: FineTunes[AsyncRequester], job_id: str, *, after: int = 0
) -> AsyncIterator[types.JobEvent]:
    return follow_async(self._requester, job_id, after)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _wait(
    self: FineTunes[SyncRequester],
    job_id: str,
    *,
    progress: bool = True,
    timeout: float | None = None,
    on_event: EventCallback | None = None,
) -> types.FineTune:
    """Follow the job until it is final and return it; a tqdm bar shows steps and loss.

    ``on_event`` is called with every event; ``timeout`` (seconds) raises
    :class:`~rushes.FineTuneWaitTimeout` when it runs out first.
    """
    deadline = _deadline(timeout)
    job = self.get(job_id)
    if job.is_final:
        return job
    bar = ProgressBar(job, progress)
    try:
        for event in follow_sync(self._requester, job_id, 0, deadline):
            bar.update(event)
            if on_event is not None:
                on_event(event)
    finally:
        bar.close()
    return self.get(job_id)


async def _wait_async(
    self: FineTunes[AsyncRequester],
    job_id: str,
    *,
    progress: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 (the same call as on the blocking client)
    on_event: EventCallback | None = None,
) -> types.FineTune:
    deadline = _deadline(timeout)
    job = await self.get(job_id)
    if job.is_final:
        return job
    bar = ProgressBar(job, progress)
    try:
        async for event in follow_async(self._requester, job_id, 0, deadline):
            bar.update(event)
            if on_event is not None:
                on_event(event)
    finally:
        bar.close()
    return await self.get(job_id)


class FineTunes(Resource[R]):
    stream = event_stream(_stream, _stream_async)
    wait = dual(_wait, _wait_async)

    @endpoint
    def create(
        self,
        *,
        dataset_id: str,
        dataset_version: int,
        base: str,
        preset: Preset = "standard",
        hyperparameters: Mapping[str, Any] | None = None,
        model_id: str | None = None,
        model_name: str | None = None,
        idempotency_key: str | None = None,
    ) -> Op[types.FineTune]:
        """Queue a fine-tune of a dataset version on a base (see ``client.bases.list()``).

        ``hyperparameters`` (``steps``, ``learning_rate``, ``rank``, ``alpha``, ``height``,
        ``width``, ``frames``, ...) override the preset's. The job makes a new version of
        ``model_id``, or of a new model (named ``model_name``, by default after the dataset).
        """
        body: dict[str, Any] = {
            "dataset_id": dataset_id,
            "dataset_version": int(dataset_version),
            "base": base,
            "preset": preset,
            "hyperparameters": dict(hyperparameters or {}),
        }
        if model_id is not None:
            body["model_id"] = model_id
        if model_name is not None:
            body["model_name"] = model_name
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        return Op("POST", "/v1/fine-tunes", types.FineTune.from_json, json=body, headers=headers)

    @paginated
    def list(self, *, status: str | None = None, limit: int | None = None) -> Op[types.Page[types.FineTune]]:
        """Jobs, newest first; ``status`` keeps only jobs in that state."""
        return list_op("/v1/fine-tunes", types.FineTune.from_json, limit, status=status)

    @endpoint
    def get(self, job_id: str) -> Op[types.FineTune]:
        return Op("GET", _path(job_id), types.FineTune.from_json)

    @endpoint
    def cancel(self, job_id: str) -> Op[types.FineTune]:
        """A queued job ends now; a running one stops at its next step, keeping a checkpoint."""
        return Op("POST", f"{_path(job_id)}/cancel", types.FineTune.from_json)

    @endpoint
    def resume(self, job_id: str) -> Op[types.FineTune]:
        """Queue a failed or cancelled job again, from its last checkpoint."""
        return Op("POST", f"{_path(job_id)}/resume", types.FineTune.from_json)

    @paginated
    def events(
        self, job_id: str, *, after: int = 0, limit: int | None = None
    ) -> Op[types.Page[types.JobEvent]]:
        """The job's events so far, oldest first, after sequence number ``after``."""
        return list_op(f"{_path(job_id)}/events", types.JobEvent.from_json, limit, after=after)


class Bases(Resource[R]):
    @endpoint
    def list(self) -> Op[list[types.Base]]:
        """The bases this deployment can fine-tune."""
        return Op("GET", "/v1/bases", lambda data: [types.Base.from_json(b) for b in data])
