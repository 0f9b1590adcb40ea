"""Fine-tuned models, their numbered versions and generation guardrails, and downloading a
version's LoRA adapter."""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from rushes import types
from rushes._base import Op, nothing
from rushes._download import PartialFile, download_async, download_sync
from rushes._errors import AdapterDigestError, RushesError
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


def _verified(response: httpx.Response, partial: PartialFile) -> Path:
    """Keep the adapter only if its SHA-256 is the one the server announced in ``Repr-Digest``."""
    expected = expected_sha256(response.headers)
    if expected is None:
        raise RushesError(f"The adapter download from {response.url} carried no Repr-Digest to verify.")
    actual = partial.sha256
    if actual != expected:
        raise AdapterDigestError(
            f"The downloaded adapter is corrupt: its SHA-256 is {actual}, the server announced "
            f"{expected}. Nothing was written to {partial.target}.",
            expected=expected,
            actual=actual,
        )
    return partial.commit()


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
    return download_sync(self._requester, _adapter_op(model_id, number), Path(path), _verified)


async def _download_adapter_async(
    self: Models[AsyncRequester], model_id: str, number: int, path: str | os.PathLike[str]
) -> Path:
    return await download_async(self._requester, _adapter_op(model_id, number), Path(path), _verified)


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

    @endpoint
    def get_guardrails(self, model_id: str) -> Op[types.Guardrails]:
        """What generation requests on the model may ask for."""
        return Op("GET", f"{_path(model_id)}/guardrails", types.Guardrails.from_json)

    @endpoint
    def set_guardrails(
        self,
        model_id: str,
        *,
        blocked_terms: Sequence[str] = (),
        max_width: int | None = None,
        max_height: int | None = None,
        max_frames: int | None = None,
        max_steps: int | None = None,
        memorisation_policy: Literal["record", "block"] = "record",
    ) -> Op[types.Guardrails]:
        """Replace the model's guardrails (owners only); they apply to generations requested from now on.

        Everything is replaced: a limit left out (None) is lifted, back to the platform's own.
        Prompts holding a blocked term (any case, as a whole word or phrase) are refused.
        ``memorisation_policy="block"`` withholds a video whose frames nearly copy the
        model's training footage; ``"record"`` keeps it and records the verdict.
        """
        if isinstance(blocked_terms, str):
            raise TypeError("blocked_terms is a list of terms, not one string")
        body = {
            "blocked_terms": list(blocked_terms),
            "max_width": max_width,
            "max_height": max_height,
            "max_frames": max_frames,
            "max_steps": max_steps,
            "memorisation_policy": memorisation_policy,
        }
        return Op("PUT", f"{_path(model_id)}/guardrails", types.Guardrails.from_json, json=body)


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

    @endpoint
    def card(self, model_id: str, number: int) -> Op[str]:
        """The model card: a ``README.md`` in the Hugging Face format (base, trigger word,
        settings, the look learned, every clip by hash and rights)."""
        return Op("GET", f"{_version_path(model_id, number)}/card", str)
