"""Footage the tenant owns: upload, list, inspect, delete."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rushes import types
from rushes._base import Op, nothing
from rushes._direct_upload import DEFAULT_CHECK_TIMEOUT
from rushes._resource import R, Resource, dual, endpoint, list_op, paginated, path_segment
from rushes._upload import DEFAULT_CONCURRENCY, upload_async, upload_sync
from rushes.resources.uploads import Uploads

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester


def _upload(
    self: Assets[SyncRequester],
    path: str | os.PathLike[str],
    *,
    rights: types.Rights,
    content_type: str | None = None,
    progress: bool = True,
    part_size: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    allow_duplicate: bool = False,
    direct: bool = True,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
) -> types.Asset:
    """Upload a file and return its asset, resuming an interrupted upload of the same file.

    ``rights`` is your attestation that you may train on it: ``"owned"``, or
    ``{"kind": "licensed", "licence_ref": "..."}``. Parts already on the server are not sent
    again; missing ones go ``concurrency`` at a time, each with its Content-Digest.

    Where the server's storage takes parts directly (S3), they go straight there through
    signed URLs, never through the API; the server then checks the file (sha256, media) and
    this waits for those checks, up to ``check_timeout`` seconds
    (:class:`~rushes.UploadCheckTimeout`). A file they refuse raises the error the API
    answers for it (e.g. :class:`~rushes.UnprocessableEntityError`). ``direct=False`` sends
    every part through the API.

    A file your library already holds (same sha256) is not stored twice: this raises
    :class:`~rushes.DuplicateAssetError`, whose ``existing_asset_id`` names the asset, unless
    ``allow_duplicate`` is true.
    """
    return upload_sync(
        Uploads(self._requester),
        self.get,
        path,
        rights,
        content_type,
        progress,
        part_size,
        concurrency,
        allow_duplicate,
        direct,
        check_timeout,
    )


async def _upload_async(
    self: Assets[AsyncRequester],
    path: str | os.PathLike[str],
    *,
    rights: types.Rights,
    content_type: str | None = None,
    progress: bool = True,
    part_size: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    allow_duplicate: bool = False,
    direct: bool = True,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
) -> types.Asset:
    return await upload_async(
        Uploads(self._requester),
        self.get,
        path,
        rights,
        content_type,
        progress,
        part_size,
        concurrency,
        allow_duplicate,
        direct,
        check_timeout,
    )


class Assets(Resource[R]):
    upload = dual(_upload, _upload_async)

    @paginated
    def list(self, *, sha256: str | None = None, limit: int | None = None) -> Op[types.Page[types.Asset]]:
        """Every asset, newest first; ``sha256`` finds the ones holding a given file."""
        return list_op("/v1/assets", types.Asset.from_json, limit, sha256=sha256)

    @endpoint
    def get(self, asset_id: str) -> Op[types.Asset]:
        return Op("GET", f"/v1/assets/{path_segment(asset_id)}", types.Asset.from_json)

    @endpoint
    def delete(self, asset_id: str) -> Op[None]:
        """Delete an asset and its files (refused while a dataset version uses it)."""
        return Op("DELETE", f"/v1/assets/{path_segment(asset_id)}", nothing)
