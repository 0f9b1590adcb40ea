"""The low-level resumable upload API. Most callers want :meth:`rushes.resources.Assets.upload`."""

from __future__ import annotations

import base64
import builtins
import hashlib
from collections.abc import Iterable
from typing import Any

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment


def rights_body(rights: types.Rights) -> dict[str, str]:
    """``"owned"`` / ``"licensed"`` + ref / a ready mapping, as the API's ``rights`` object."""
    if isinstance(rights, str):
        return {"kind": rights}
    return {k: v for k, v in rights.items() if v is not None}


def content_digest(data: bytes) -> str:
    """An RFC 9530 ``Content-Digest`` value for ``data``."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def _completion(data: Any) -> types.Asset | types.Upload:
    """An asset (made now or before), or the direct upload being checked (202): only an upload
    says how its parts travel."""
    if isinstance(data, dict) and "transfer" in data:
        return types.Upload.from_json(data)
    return types.Asset.from_json(data)


class Uploads(Resource[R]):
    @endpoint
    def create(
        self,
        *,
        filename: str,
        size: int,
        sha256: str,
        content_type: str,
        rights: types.Rights,
        part_size: int | None = None,
        allow_duplicate: bool = False,
        direct: bool = False,
    ) -> Op[types.Upload]:
        """Open a session; a file the library already holds raises
        :class:`~rushes.DuplicateAssetError` unless ``allow_duplicate``.

        ``direct``: this client can PUT parts straight to storage (:meth:`part_urls`). The
        session's ``transfer`` says whether the server took it up (``"direct"``, where its
        storage signs URLs) or parts go through :meth:`put_part` (``"api"``).
        """
        body: dict[str, Any] = {
            "filename": filename,
            "size": size,
            "sha256": sha256,
            "content_type": content_type,
            "rights": rights_body(rights),
        }
        if part_size is not None:
            body["part_size"] = part_size
        if allow_duplicate:
            body["allow_duplicate"] = True
        if direct:
            body["direct"] = True
        return Op("POST", "/v1/uploads", types.Upload.from_json, json=body)

    @paginated
    def list(self, *, sha256: str | None = None, limit: int | None = None) -> Op[types.Page[types.Upload]]:
        """Open upload sessions, newest first; ``sha256`` finds the ones for a given file."""
        return list_op("/v1/uploads", types.Upload.from_json, limit, sha256=sha256)

    @endpoint
    def get(self, upload_id: str) -> Op[types.Upload]:
        return Op("GET", f"/v1/uploads/{path_segment(upload_id)}", types.Upload.from_json)

    @endpoint
    def parts(self, upload_id: str) -> Op[builtins.list[types.UploadPart]]:
        return Op(
            "GET",
            f"/v1/uploads/{path_segment(upload_id)}/parts",
            lambda data: [types.UploadPart.from_json(p) for p in data],
        )

    @endpoint
    def put_part(
        self, upload_id: str, part_number: int, data: bytes, *, digest: bool = True
    ) -> Op[types.UploadPart]:
        """Send one part (idempotent: sending it again replaces it). With ``digest`` it carries
        its Content-Digest, which the server checks it against and answers a 422 on mismatch;
        without, the server hashes it only with the whole file, at completion."""
        headers = {"Content-Type": "application/octet-stream"}
        if digest:
            headers["Content-Digest"] = content_digest(data)
        return Op(
            "PUT",
            f"/v1/uploads/{path_segment(upload_id)}/parts/{int(part_number)}",
            types.UploadPart.from_json,
            content=data,
            headers=headers,
        )

    @endpoint
    def part_urls(self, upload_id: str, part_numbers: Iterable[int]) -> Op[types.PartUrls]:
        """Signed URLs for up to 100 parts of a ``direct`` upload: PUT each part's exact bytes
        to its URL, with no credentials, before ``expires_at``."""
        return Op(
            "POST",
            f"/v1/uploads/{path_segment(upload_id)}/part-urls",
            types.PartUrls.from_json,
            json={"part_numbers": [int(n) for n in part_numbers]},
        )

    @endpoint
    def complete(self, upload_id: str, *, allow_duplicate: bool = False) -> Op[types.Asset | types.Upload]:
        """Assemble and verify the parts into an asset; calling it again returns the same asset.

        A ``direct`` upload answers the :class:`~rushes.types.Upload` instead, ``verifying``:
        the server checks the file in the background; :meth:`get` follows it to ``completed``
        (``asset_id``) or ``failed`` (``failure``), and completing it again answers the asset
        or raises that failure. If the library meanwhile holds the same file, the upload is
        discarded and :class:`~rushes.DuplicateAssetError` names that asset, unless
        ``allow_duplicate``.
        """
        return Op(
            "POST",
            f"/v1/uploads/{path_segment(upload_id)}/complete",
            _completion,
            json={"allow_duplicate": True} if allow_duplicate else None,
        )

    @endpoint
    def abort(self, upload_id: str) -> Op[None]:
        return Op("DELETE", f"/v1/uploads/{path_segment(upload_id)}", nothing)
