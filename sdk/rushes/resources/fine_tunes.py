"""Fine-tunes: train a LoRA on a dataset version, follow it live, cancel or resume it; and the
bases a deployment can fine-tune."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from rushes import types
from rushes._base import IDEMPOTENCY_HEADER, Op
from rushes._errors import FineTuneWaitTimeout
from rushes._events import (
    EventCallback,
    Followed,
    event_stream,
    follow_async,
    follow_sync,
    wait_async,
    wait_sync,
)
from rushes._resource import R, Resource, dual, endpoint, list_op, paginated, path_segment

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

Preset = Literal["quick", "standard", "thorough"]


def _path(job_id: str) -> str:
    return f"/v1/fine-tunes/{path_segment(job_id)}"


def _followed(job_id: str) -> Followed:
    return Followed("fine-tune", job_id, _path(job_id), FineTuneWaitTimeout)


def _stream(self: FineTunes[SyncRequester], job_id: str, *, after: int = 0) -> Iterator[types.JobEvent]:
    """Events after sequence number ``after`` as they happen, until the job is final.

    A dropped connection is reopened with ``Last-Event-ID``: no event is missed or repeated.
    """
    return follow_sync(self._requester, _followed(job_id), after)


def _stream_async(
    self: FineTunes[AsyncRequester], job_id: str, *, after: int = 0
) -> AsyncIterator[types.JobEvent]:
    return follow_async(self._requester, _followed(job_id), after)


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
    return wait_sync(
        self._requester,
        _followed(job_id),
        lambda: self.get(job_id),
        progress=progress,
        timeout=timeout,
        on_event=on_event,
    )


async def _wait_async(
    self: FineTunes[AsyncRequester],
    job_id: str,
    *,
    progress: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 (the same call as on the blocking client)
    on_event: EventCallback | None = None,
) -> types.FineTune:
    return await wait_async(
        self._requester,
        _followed(job_id),
        lambda: self.get(job_id),
        progress=progress,
        timeout=timeout,
        on_event=on_event,
    )


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
