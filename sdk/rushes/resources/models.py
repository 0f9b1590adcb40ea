"""Fine-tuned models, their numbered versions, and downloading a version's LoRA adapter."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from rushes import types
from rushes._base import Op, nothing
from rushes._errors import AdapterDigestError, APIError, RushesError
from rushes._resource import R, Resource, dual, endpoint, list_op, paginated, path_segment

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester

_DIGEST = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):")


def _path(model_id: str) -> str:
    return f"/v1/models/{path_segment(model_id)}"


def _version_path(model_id: str, number: int) -> str:
    return f"{_path(model_id)}/versions/{int(number)}"


def expected_sha256(headers: httpx.Headers) -> str | None:
    """The hex SHA-256 in a ``Repr-Digest: sha-256=:<base64>:`` header, if there is one."""
    match = _DIGEST.search(headers.get("repr-digest", ""))
    if match is None:
        return None
    try:
        return base64.b64decode(match.group(1), validate=True).hex()
    except (binascii.Error, ValueError):
        return None


class _Download:
    """A temporary file next to the target, renamed into place only once its digest checks out."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        self._file = os.fdopen(fd, "wb")
        self._temp = Path(name)
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hash.update(chunk)

    def finish(self, response: httpx.Response) -> Path:
        self._file.close()
        actual = self._hash.hexdigest()
        expected = expected_sha256(response.headers)
        if expected is None:
            self.discard()
            raise RushesError(f"The adapter download from {response.url} carried no Repr-Digest to verify.")
        if actual != expected:
            self.discard()
            raise AdapterDigestError(
                f"The downloaded adapter is corrupt: its SHA-256 is {actual}, the server announced "
                f"{expected}. Nothing was written to {self.target}.",
                expected=expected,
                actual=actual,
            )
        os.replace(self._temp, self.target)
        return self.target

    def discard(self) -> None:
        self._file.close()
        self._temp.unlink(missing_ok=True)


def _adapter_op(model_id: str, number: int) -> Op[None]:
    return Op(
        "GET",
        f"{_version_path(model_id, number)}/adapter",
        nothing,
        headers={"Accept": "application/octet-stream"},
    )


def _download_adapter(
    self: Models[SyncRequester], model_id: str, number: int, path: str | os.PathLike[str]
) -> Path:
    """Save a version's LoRA (one ``.safetensors`` file) to ``path`` and return it.

    The file is written under a temporary name and renamed into place once its SHA-256
    matches the server's ``Repr-Digest``; otherwise :class:`AdapterDigestError` is raised.
    """
    requester, op, retries = self._requester, _adapter_op(model_id, number), 0
    while True:
        request = requester.build_request(requester.http, op, None, retries)
        error: APIError
        download: _Download | None = None
        try:
            response = requester.http.send(request, stream=True)
            try:
                if not response.is_success:
                    response.read()
                    raise requester.error_for(response)
                download = _Download(Path(path))
                for chunk in response.iter_bytes():
                    download.write(chunk)
                return download.finish(response)
            finally:
                response.close()
        except httpx.TransportError as exc:
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        finally:
            if download is not None:
                download.discard()
        delay = requester.retry_delay(error, retries)
        if delay is None:
            raise error
        time.sleep(delay)
        retries += 1


async def _download_adapter_async(
    self: Models[AsyncRequester], model_id: str, number: int, path: str | os.PathLike[str]
) -> Path:
    requester, op, retries = self._requester, _adapter_op(model_id, number), 0
    while True:
        request = requester.build_request(requester.http, op, None, retries)
        error: APIError
        download: _Download | None = None
        try:
            response = await requester.http.send(request, stream=True)
            try:
                if not response.is_success:
                    await response.aread()
                    raise requester.error_for(response)
                download = _Download(Path(path))
                async for chunk in response.aiter_bytes():
                    download.write(chunk)
                return download.finish(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            error = requester.transport_error(exc, request)
            error.__cause__ = exc
        except APIError as exc:
            error = exc
        finally:
            if download is not None:
                download.discard()
        delay = requester.retry_delay(error, retries)
        if delay is None:
            raise error
        await asyncio.sleep(delay)
        retries += 1


def _record(data: Any) -> dict[str, Any]:
    return dict(data or {})


class Models(Resource[R]):
    download_adapter = dual(_download_adapter, _download_adapter_async)

    @property
    def versions(self) -> ModelVersions[R]:
        return ModelVersions(self._requester)

    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.Model]]:
        return list_op("/v1/models", types.Model.from_json, limit)

    @endpoint
    def get(self, model_id: str) -> Op[types.Model]:
        return Op("GET", _path(model_id), types.Model.from_json)

    @endpoint
    def update(
        self, model_id: str, *, name: str | None = None, description: str | None = None
    ) -> Op[types.Model]:
        body = {k: v for k, v in {"name": name, "description": description}.items() if v is not None}
        return Op("PATCH", _path(model_id), types.Model.from_json, json=body)

    @endpoint
    def delete(self, model_id: str) -> Op[None]:
        """Delete a model, its versions and their files (owners only)."""
        return Op("DELETE", _path(model_id), nothing)


class ModelVersions(Resource[R]):
    @paginated
    def list(self, model_id: str, *, limit: int | None = None) -> Op[types.Page[types.ModelVersion]]:
        return list_op(f"{_path(model_id)}/versions", types.ModelVersion.from_json, limit)

    @endpoint
    def get(self, model_id: str, number: int) -> Op[types.ModelVersion]:
        return Op("GET", _version_path(model_id, number), types.ModelVersion.from_json)

    @endpoint
    def record(self, model_id: str, number: int) -> Op[dict[str, Any]]:
        """The training record: each asset's sha256 and rights, the base, the settings."""
        return Op("GET", f"{_version_path(model_id, number)}/record", _record)
