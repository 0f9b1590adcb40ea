from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation, RequestBody
from litestar.params import FromPath, JSONBody, Parameter
from litestar.response import Stream
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys, content_disposition
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest, page_body
from service.downloads import RANGE_RESPONSES, RangeHeader, object_response
from service.openapi import QUOTA_REFUSED, problem
from service.params import Number
from service.schemas import Page
from service.uploads import service
from service.uploads.schemas import (
    SHA256_PATTERN,
    AssetOut,
    PartOut,
    PartUrlsOut,
    PartUrlsRequest,
    UploadComplete,
    UploadCreate,
    UploadOut,
)


def provide_uploads(
    db_session: NamedDependency[AsyncSession],
    storage: NamedDependency[ObjectStorage],
    settings: NamedDependency[Settings],
) -> service.Uploads:
    return service.Uploads(db_session, storage, settings.uploads)


EXPIRED = problem("The upload session expired; its parts were removed.")
DUPLICATE = (
    "or the library already holds a file with this sha256 (type `duplicate-asset`; "
    "`existing_asset_id` names that asset; `allow_duplicate: true` stores it again)"
)


@dataclass
class OptionalBody(Operation):
    """An operation whose JSON body may be left out (Litestar documents every body as required)."""

    def __post_init__(self) -> None:
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


class UploadController(Controller):
    path = "/v1/uploads"
    tags = ["uploads"]
    dependencies = {"uploads": Provide(provide_uploads, sync_to_thread=False)}

    @post(
        operation_id="createUpload",
        opt=access(Access.MEMBER),
        responses={
            402: QUOTA_REFUSED,
            409: problem(f"The request conflicts with the resource's current state, {DUPLICATE}."),
        },
    )
    async def create(
        self,
        data: JSONBody[UploadCreate],
        uploads: NamedDependency[service.Uploads],
        principal: NamedDependency[Principal],
    ) -> UploadOut:
        return await uploads.create(principal, data)

    @get(operation_id="listUploads", opt=access(Access.MEMBER))
    async def list_open(
        self,
        uploads: NamedDependency[service.Uploads],
        page: NamedDependency[PageRequest],
        sha256: Annotated[str | None, Parameter(description="Only sessions for this file.")] = None,
    ) -> Page[UploadOut]:
        items, total = await uploads.list_open(page, sha256)
        return Page[UploadOut].model_validate(page_body(items, total, page))

    @get("/{upload_id:uuid}", operation_id="getUpload", opt=access(Access.MEMBER))
    async def get_upload(
        self, upload_id: FromPath[UUID], uploads: NamedDependency[service.Uploads]
    ) -> UploadOut:
        return await uploads.get(upload_id)

    @get("/{upload_id:uuid}/parts", operation_id="listUploadParts", opt=access(Access.MEMBER))
    async def list_parts(
        self, upload_id: FromPath[UUID], uploads: NamedDependency[service.Uploads]
    ) -> list[PartOut]:
        return (await uploads.get(upload_id)).parts

    @put(
        "/{upload_id:uuid}/parts/{part_number:int}",
        operation_id="uploadPart",
        responses={410: EXPIRED},
        opt=access(Access.MEMBER),
        # Each part's exact size is enforced by the service, which knows it.
        request_max_body_size=None,
        description="Send one part's bytes as the raw body. Idempotent: sending a part again replaces it. "
        "An optional RFC 9530 `Content-Digest: sha-256=:<base64>:` header is checked.",
    )
    async def upload_part(
        self,
        upload_id: FromPath[UUID],
        part_number: Number,
        request: Request[Any, Any, Any],
        uploads: NamedDependency[service.Uploads],
    ) -> PartOut:
        length = request.headers.get("content-length")
        return await uploads.put_part(
            upload_id,
            part_number,
            request.stream(),
            int(length) if length and length.isdigit() else None,
            request.headers.get("content-digest"),
        )

    @post(
        "/{upload_id:uuid}/part-urls",
        operation_id="signUploadParts",
        opt=access(Access.MEMBER),
        status_code=200,
        responses={
            409: problem("The upload is not open, or its transfer is `api` (send parts through the API)."),
            410: EXPIRED,
        },
        description="Signed URLs for a `direct` upload's parts: `PUT` each part's exact bytes to its URL "
        "before `expires_at`, with no credentials. Ask again for parts whose URLs ran out.",
    )
    async def part_urls(
        self,
        upload_id: FromPath[UUID],
        data: JSONBody[PartUrlsRequest],
        uploads: NamedDependency[service.Uploads],
    ) -> PartUrlsOut:
        return await uploads.part_urls(upload_id, data.part_numbers)

    @post(
        "/{upload_id:uuid}/complete",
        operation_id="completeUpload",
        opt=access(Access.MEMBER),
        responses={
            202: ResponseSpec(
                UploadOut,
                description="A `direct` upload is whole in storage; the ingest role now checks it "
                "(sha256, media, poster). Poll the upload: it becomes `completed` with `asset_id`, or "
                "`failed` with `failure`.",
            ),
            409: problem(
                "Parts are missing or of the wrong size (`missing_parts` lists them), the upload is being "
                f"completed, {DUPLICATE}: the upload is then discarded."
            ),
            410: EXPIRED,
        },
        description="Assemble and check the parts into an asset (201; 200 when made before). "
        "The body is optional. A completion that failed its checks answers that failure again.",
        operation_class=OptionalBody,
    )
    async def complete(
        self,
        upload_id: FromPath[UUID],
        uploads: NamedDependency[service.Uploads],
        data: JSONBody[UploadComplete | None] = None,
    ) -> Response[AssetOut]:
        allow_duplicate = data.allow_duplicate if data is not None else False
        completion = await uploads.complete(upload_id, allow_duplicate)
        return Response(completion.body, status_code=completion.status)  # type: ignore[arg-type]

    @delete("/{upload_id:uuid}", operation_id="abortUpload", opt=access(Access.MEMBER))
    async def abort(self, upload_id: FromPath[UUID], uploads: NamedDependency[service.Uploads]) -> None:
        await uploads.abort(upload_id)


class AssetController(Controller):
    path = "/v1/assets"
    tags = ["assets"]

    @get(operation_id="listAssets", opt=access(Access.MEMBER))
    async def list_assets(
        self,
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        sha256: Annotated[
            str | None,
            Parameter(
                pattern=SHA256_PATTERN,
                description="Only assets of this file: finds a duplicate before uploading.",
            ),
        ] = None,
    ) -> Page[AssetOut]:
        items, total = await service.list_assets(db_session, page, sha256)
        return Page[AssetOut].model_validate(page_body(items, total, page))

    @get("/{asset_id:uuid}", operation_id="getAsset", opt=access(Access.MEMBER))
    async def get_asset(
        self, asset_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> AssetOut:
        return AssetOut.model_validate(await service.get_asset(db_session, asset_id))

    @get(
        "/{asset_id:uuid}/poster",
        operation_id="getAssetPoster",
        opt=access(Access.MEMBER),
        media_type="image/jpeg",
    )
    async def poster(
        self,
        asset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> Stream:
        asset = await service.get_asset(db_session, asset_id)
        return Stream(
            storage.iter_chunks(TenantKeys(asset.tenant_id).poster(asset.id)), media_type="image/jpeg"
        )

    @get(
        "/{asset_id:uuid}/content",
        operation_id="downloadAsset",
        opt=access(Access.MEMBER),
        responses=RANGE_RESPONSES,
    )
    async def content(
        self,
        asset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        range_header: RangeHeader = None,
    ) -> Stream:
        """The clip as uploaded; a broken download resumes with a ``Range`` header."""
        asset = await service.get_asset(db_session, asset_id)
        return object_response(
            storage,
            TenantKeys(asset.tenant_id).footage(asset.id),
            size=asset.size,
            media_type=asset.content_type,
            range_header=range_header,
            headers={"content-disposition": content_disposition(asset.filename)},
        )

    @delete("/{asset_id:uuid}", operation_id="deleteAsset", opt=access(Access.MEMBER))
    async def delete_asset(
        self,
        asset_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
    ) -> None:
        await service.delete_asset(db_session, storage, asset_id)
