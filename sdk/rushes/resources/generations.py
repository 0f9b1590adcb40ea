"""Generations: render a video with a fine-tuned model, follow it live, cancel it, and download
its outputs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rushes import types
from rushes._base import IDEMPOTENCY_HEADER, Op, nothing
from rushes._download import commit_complete, download_async, download_sync
from rushes._errors import GenerationNotSucceededError, GenerationWaitTimeout, NotFoundError
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

#: A generation, or its id.
GenerationRef = str | types.Generation


def _id(generation: GenerationRef) -> str:
    return generation.id if isinstance(generation, types.Generation) else str(generation)


def _path(generation_id: str) -> str:
    return f"/v1/generations/{path_segment(generation_id)}"


def _followed(generation_id: str) -> Followed:
    return Followed("generation", generation_id, _path(generation_id), GenerationWaitTimeout)


def _stream(
    self: Generations[SyncRequester], generation: GenerationRef, *, after: int = 0
) -> Iterator[types.GenerationEvent]:
    """Events after sequence number ``after`` as they happen, until the generation is final.

    A dropped connection is reopened with ``Last-Event-ID``: no event is missed or repeated.
    """
    return follow_sync(self._requester, _followed(_id(generation)), after)


def _stream_async(
    self: Generations[AsyncRequester], generation: GenerationRef, *, after: int = 0
) -> AsyncIterator[types.GenerationEvent]:
    return follow_async(self._requester, _followed(_id(generation)), after)


def _wait(
    self: Generations[SyncRequester],
    generation: GenerationRef,
    *,
    progress: bool = True,
    timeout: float | None = None,
    on_event: EventCallback | None = None,
) -> types.Generation:
    """Follow the generation until it is final and return it; a tqdm bar shows the denoising steps.

    ``on_event`` is called with every event; ``timeout`` (seconds) raises
    :class:`~rushes.GenerationWaitTimeout` when it runs out first.
    """
    generation_id = _id(generation)
    return wait_sync(
        self._requester,
        _followed(generation_id),
        lambda: self.get(generation_id),
        progress=progress,
        timeout=timeout,
        on_event=on_event,
    )


async def _wait_async(
    self: Generations[AsyncRequester],
    generation: GenerationRef,
    *,
    progress: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 (the same call as on the blocking client)
    on_event: EventCallback | None = None,
) -> types.Generation:
    generation_id = _id(generation)
    return await wait_async(
        self._requester,
        _followed(generation_id),
        lambda: self.get(generation_id),
        progress=progress,
        timeout=timeout,
        on_event=on_event,
    )


def _output_op(generation_id: str, name: str) -> Op[None]:
    path = f"{_path(generation_id)}/outputs/{path_segment(name)}"
    return Op("GET", path, nothing, headers={"Accept": "*/*"})


def _target(generation_id: str, path: str | os.PathLike[str], name: str) -> Path:
    """``path``, or a file in it named as the server names the output when it is a folder."""
    target = Path(path)
    return target / f"generation-{generation_id}-{name}" if target.is_dir() else target


def _download(
    self: Generations[SyncRequester],
    generation: GenerationRef,
    path: str | os.PathLike[str],
    name: str = "video.mp4",
) -> Path:
    """Save one output of a succeeded generation (``video.mp4``, ``poster.jpg`` or
    ``preview.webp``) to ``path`` (a file, or an existing folder) and return where it went.

    A redirect to signed storage is followed without the API key. The file is written under
    a temporary name in the target's folder and renamed into place only once complete.
    Raises :class:`~rushes.GenerationNotSucceededError` if the generation has not succeeded.
    """
    generation_id = _id(generation)
    target = _target(generation_id, path, name)
    try:
        return download_sync(self._requester, _output_op(generation_id, name), target, commit_complete)
    except NotFoundError as missing:
        current = self.get(generation_id)
        if current.status != "succeeded":
            raise GenerationNotSucceededError(current) from missing
        raise  # it succeeded: ``name`` is no output of it


async def _download_async(
    self: Generations[AsyncRequester],
    generation: GenerationRef,
    path: str | os.PathLike[str],
    name: str = "video.mp4",
) -> Path:
    generation_id = _id(generation)
    target = _target(generation_id, path, name)
    try:
        return await download_async(self._requester, _output_op(generation_id, name), target, commit_complete)
    except NotFoundError as missing:
        current = await self.get(generation_id)
        if current.status != "succeeded":
            raise GenerationNotSucceededError(current) from missing
        raise


class Generations(Resource[R]):
    stream = event_stream(_stream, _stream_async)
    wait = dual(_wait, _wait_async)
    download = dual(_download, _download_async)

    @endpoint
    def create(
        self,
        model_id: str,
        prompt: str,
        *,
        version: int | None = None,
        negative_prompt: str | None = None,
        width: int | None = None,
        height: int | None = None,
        frames: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        adapter_strength: float | None = None,
        idempotency_key: str | None = None,
    ) -> Op[types.Generation]:
        """Queue a video from a model (its latest version unless ``version`` names one).

        Settings left out take the base's defaults, and a seed left out is drawn at random;
        the generation shows every setting as resolved. A request over the platform's limits
        or the model's guardrails is refused with :class:`~rushes.UnprocessableEntityError`
        saying why.
        """
        settings: dict[str, Any] = {
            "version": version,
            "negative_prompt": negative_prompt,
            "width": width,
            "height": height,
            "frames": frames,
            "steps": steps,
            "guidance": guidance,
            "seed": seed,
            "adapter_strength": adapter_strength,
        }
        body = {
            "model_id": model_id,
            "prompt": prompt,
            **{k: v for k, v in settings.items() if v is not None},
        }
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        return Op("POST", "/v1/generations", types.Generation.from_json, json=body, headers=headers)

    @paginated
    def list(
        self, *, status: str | None = None, model_id: str | None = None, limit: int | None = None
    ) -> Op[types.Page[types.Generation]]:
        """Generations, newest first; ``status`` and ``model_id`` keep those in that state, of that model."""
        return list_op("/v1/generations", types.Generation.from_json, limit, status=status, model_id=model_id)

    @endpoint
    def get(self, generation_id: str) -> Op[types.Generation]:
        return Op("GET", _path(generation_id), types.Generation.from_json)

    @endpoint
    def cancel(self, generation_id: str) -> Op[types.Generation]:
        """A queued generation ends now; a running one is dropped by its worker within a heartbeat."""
        return Op("POST", f"{_path(generation_id)}/cancel", types.Generation.from_json)

    @paginated
    def events(
        self, generation_id: str, *, after: int = 0, limit: int | None = None
    ) -> Op[types.Page[types.GenerationEvent]]:
        """The generation's events so far, oldest first, after sequence number ``after``."""
        return list_op(f"{_path(generation_id)}/events", types.GenerationEvent.from_json, limit, after=after)
