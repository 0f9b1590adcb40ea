"""Resumable footage uploads: sessions, parts in any order, completion into an asset."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

from anyio import to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, DomainError, Gone, Invalid, NotFound, PayloadTooLarge
from core.settings import UploadSettings
from core.storage import ObjectNotFoundError, ObjectStorage, PartWriter, SignedUploads, TenantKeys
from service.accounts.models import Tenant
from service.auth.principal import Principal
from service.datasets.models import DatasetItem
from service.db.pagination import PageRequest, fetch_page
from service.db.tenancy import session_tenant
from service.errors import domain_error, problem_document
from service.fingerprints import service as fingerprints
from service.media import MediaError, MediaInfo, poster, probe, probed_media_type
from service.media.fingerprints import SampledFrame, fingerprint
from service.metrics import counters
from service.quotas.admission import Ask, admit
from service.uploads.models import Asset, AssetKind, Transfer, UploadPart, UploadSession, UploadStatus
from service.uploads.schemas import (
    AssetOut,
    PartOut,
    PartUrlOut,
    PartUrlsOut,
    UploadCreate,
    UploadOut,
)

logger = logging.getLogger("rushes.uploads")


class Unverifiable(Invalid):
    """The ingest role's checks kept failing on our side (storage, disk), not on the file."""

    problem = "unverifiable"

    def __init__(self, attempts: int) -> None:
        super().__init__(
            f"Rushes could not check this file ({attempts} tries failed on our side, not because of "
            "the file); upload it again, and if that fails too, contact support quoting this upload's id."
        )


class DuplicateAsset(Conflict):
    """The tenant's library already holds a file with the same sha256."""

    problem = "duplicate-asset"

    def __init__(self, existing_asset_id: UUID) -> None:
        super().__init__(
            f"This file is already in your library as asset {existing_asset_id}; "
            "send allow_duplicate: true to store it again.",
            existing_asset_id=str(existing_asset_id),
        )


# Parts arrive in ~64 KiB ASGI chunks; writing them in larger batches keeps thread hops rare.
_WRITE_BATCH = 1 << 20
# Sessions whose parts storage lists, rather than the database: they may have gone straight there.
_PARTS_IN_STORAGE = (UploadStatus.OPEN, UploadStatus.COMPLETING)


@dataclass(frozen=True, slots=True)
class Received:
    """A part the upload holds, wherever it came from."""

    part_number: int
    size: int
    sha256: str | None
    etag: str


@dataclass(frozen=True, slots=True)
class Completion:
    """What completing answers: the asset (201 made now, 200 made before), or the upload that
    the ``ingest`` role will turn into one (202)."""

    body: AssetOut | UploadOut
    status: int


def part_length(upload: UploadSession, part_number: int) -> int:
    return min(upload.part_size, upload.size - (part_number - 1) * upload.part_size)


@dataclass(frozen=True, slots=True)
class Uploads:
    """Upload operations for one request: its database session, storage and limits."""

    session: AsyncSession
    storage: ObjectStorage
    limits: UploadSettings

    @property
    def keys(self) -> TenantKeys:
        tenant = session_tenant(self.session)
        if tenant is None:
            raise RuntimeError("uploads need a tenant-bound session")
        return TenantKeys(tenant)

    async def create(self, principal: Principal, body: UploadCreate) -> UploadOut:
        part_size = self._part_size(body)
        if body.size > self.limits.max_file_size:
            raise PayloadTooLarge(f"Files may be at most {self.limits.max_file_size} bytes.")
        if not body.allow_duplicate:
            # Told before any byte is sent; completion checks again, as the library may change meanwhile.
            await self._refuse_duplicate(body.sha256)
        # The declared size is reserved against the storage quota until the upload ends.
        await admit(self.session, principal.tenant_id, Ask(upload_bytes=body.size))
        asset_id = uuid4()
        key = self.keys.footage(asset_id)
        storage_upload_id = await to_thread.run_sync(self.storage.create_multipart, key)
        direct = body.direct and self.limits.direct and isinstance(self.storage, SignedUploads)
        upload = UploadSession(
            filename=body.filename,
            size=body.size,
            sha256=body.sha256,
            content_type=body.content_type,
            rights=body.rights.kind,
            licence_ref=body.rights.licence_ref,
            part_size=part_size,
            part_count=-(-body.size // part_size),
            asset_id=asset_id,
            storage_upload_id=storage_upload_id,
            created_by=principal.user_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=self.limits.session_ttl_seconds),
            transfer=Transfer.DIRECT if direct else Transfer.API,
        )
        self.session.add(upload)
        try:
            await self.session.commit()
        except BaseException:
            await to_thread.run_sync(self.storage.abort_multipart, key, storage_upload_id)
            raise
        return self._out(upload, [])

    def _part_size(self, body: UploadCreate) -> int:
        if body.part_size is None:
            return max(self.limits.default_part_size, -(-body.size // 10_000))
        if not self.limits.min_part_size <= body.part_size <= self.limits.max_part_size:
            low, high = self.limits.min_part_size, self.limits.max_part_size
            raise Invalid(f"part_size must be between {low} and {high} bytes.")
        if -(-body.size // body.part_size) > 10_000:
            raise Invalid("A file may have at most 10,000 parts; choose a larger part_size.")
        return body.part_size

    async def get(self, upload_id: UUID) -> UploadOut:
        upload = await self._load(upload_id)
        return self._out(upload, await self._received(upload))

    async def list_open(self, page: PageRequest, sha256: str | None) -> tuple[list[UploadOut], int]:
        stmt = select(UploadSession).where(UploadSession.status == UploadStatus.OPEN)
        if sha256:
            stmt = stmt.where(UploadSession.sha256 == sha256.lower())
        rows, total = await fetch_page(self.session, stmt.order_by(UploadSession.created_at.desc()), page)
        return [self._out(u, await self._received(u)) for u in rows], total

    async def part_urls(self, upload_id: UUID, part_numbers: list[int]) -> PartUrlsOut:
        """Signed URLs that take the parts' bytes straight into storage."""
        upload = await self._load_open(upload_id)
        signer = self._signer(upload)
        if max(part_numbers) > upload.part_count:
            raise Invalid(f"part_numbers must be between 1 and {upload.part_count}.")
        lifetime = timedelta(seconds=self.limits.part_url_ttl_seconds)
        key = self.keys.footage(upload.asset_id)
        # Each signature is a few HMACs, computed here rather than asked of storage.
        parts = [
            PartUrlOut(
                part_number=number,
                size=part_length(upload, number),
                url=signer.presigned_part(
                    key, upload.storage_upload_id, number, part_length(upload, number), lifetime
                ),
            )
            for number in part_numbers
        ]
        return PartUrlsOut(parts=parts, expires_at=datetime.now(UTC) + lifetime)

    def _signer(self, upload: UploadSession) -> SignedUploads:
        if upload.transfer is not Transfer.DIRECT or not isinstance(self.storage, SignedUploads):
            raise Conflict(
                "This upload takes its parts through the API (its transfer is `api`): "
                "PUT each one to /v1/uploads/{id}/parts/{part_number}."
            )
        return self.storage

    async def put_part(
        self,
        upload_id: UUID,
        part_number: int,
        body: AsyncIterator[bytes],
        content_length: int | None,
        digest: str | None,
    ) -> PartOut:
        upload = await self._load_open(upload_id)
        if not 1 <= part_number <= upload.part_count:
            raise Invalid(f"part_number must be between 1 and {upload.part_count}.")
        expected = part_length(upload, part_number)
        if content_length is not None and content_length != expected:
            raise Invalid(
                f"Part {part_number} must be exactly {expected} bytes; this one is {content_length}."
            )
        # End the read transaction before streaming, so a slow client holds no connection.
        await self.session.commit()
        writer = await to_thread.run_sync(
            self.storage.part_writer,
            self.keys.footage(upload.asset_id),
            upload.storage_upload_id,
            part_number,
            (part_number - 1) * upload.part_size,
        )
        wanted = _expected_digest(digest)
        if wanted is not None:
            # Checked only when asked: completion hashes the whole file, so otherwise each
            # byte is hashed once.
            writer.hash_as_written()
        etag = await _stream_into(writer, body, expected, part_number, wanted)
        sha256 = writer.sha256.hexdigest() if writer.sha256 is not None else None
        await self._record_part(upload, part_number, expected, sha256, etag)
        counters.uploaded(expected, Transfer.API.value)
        return PartOut(part_number=part_number, size=expected, sha256=sha256)

    async def _record_part(
        self, upload: UploadSession, part_number: int, size: int, sha256: str | None, etag: str
    ) -> None:
        for _ in range(2):
            existing = await self.session.scalar(
                select(UploadPart).where(
                    UploadPart.session_id == upload.id, UploadPart.part_number == part_number
                )
            )
            if existing is None:
                self.session.add(
                    UploadPart(
                        session_id=upload.id,
                        part_number=part_number,
                        size=size,
                        sha256=sha256,
                        etag=etag,
                    )
                )
            else:
                existing.sha256, existing.etag, existing.size = sha256, etag, size
            try:
                await self.session.commit()
                return
            except IntegrityError:
                # Two uploads of the same part raced; the second becomes an update.
                await self.session.rollback()
        raise Conflict(f"Part {part_number} is being uploaded concurrently; retry it.")

    async def complete(self, upload_id: UUID, allow_duplicate: bool = False) -> Completion:
        """Make the upload's asset, or hand a direct upload to the ``ingest`` role to check.

        A repeated call answers the same asset, or the upload while it is being checked.
        Unless ``allow_duplicate``, a file whose sha256 the library already holds is discarded
        (parts, assembled object and session) and refused with :class:`DuplicateAsset`.
        """
        upload = await self._load(upload_id)
        if upload.status is UploadStatus.COMPLETED:
            asset = await self.session.get_one(Asset, upload.asset_id)
            return Completion(AssetOut.model_validate(asset), 200)
        if upload.status is UploadStatus.FAILED and upload.failure is not None:
            raise domain_error(upload.failure)
        if upload.status is UploadStatus.VERIFYING:
            return Completion(self._out(upload, []), 202)
        await self._ensure_live(upload)
        received = await self._received(upload)
        sizes = {p.part_number: p.size for p in received}
        missing = [
            number
            for number in range(1, upload.part_count + 1)
            if sizes.get(number) != part_length(upload, number)
        ]
        if missing:
            raise Conflict(
                f"{len(missing)} part(s) have not been received whole; send them again.",
                missing_parts=missing[:1000],
            )
        claimed = await self.session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload.id, UploadSession.status == UploadStatus.OPEN)
            # A fresh expiry, so cleanup never takes an upload out from under its completion.
            .values(
                status=UploadStatus.COMPLETING,
                expires_at=datetime.now(UTC) + timedelta(seconds=self.limits.session_ttl_seconds),
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.commit()
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("This upload is already being completed.")
        if not allow_duplicate:
            # Before assembling and probing, which read the whole file for nothing if it is a duplicate.
            await self._discard_if_duplicate(upload)
        etags = [(p.part_number, p.etag) for p in received]
        if upload.transfer is Transfer.DIRECT:
            return await self._hand_to_ingest(upload, etags, allow_duplicate)
        try:
            await to_thread.run_sync(self._assemble, upload, etags)
            media, frames = await to_thread.run_sync(self._check, upload)
        except (Invalid, MediaError) as exc:
            await self.discard(upload)
            if isinstance(exc, MediaError):
                raise Invalid(str(exc)) from exc
            raise
        except BaseException:
            await self._reopen(upload)
            raise
        if not allow_duplicate:
            # Checked again under the lock, so that parallel completions of the same bytes make one asset.
            await _serialise_completions(self.session, upload.tenant_id)
            await self._discard_if_duplicate(upload)
        return Completion(await self._record(upload, media, frames), 201)

    async def _hand_to_ingest(
        self, upload: UploadSession, etags: list[tuple[int, str]], allow_duplicate: bool
    ) -> Completion:
        # Storage joins the parts; reading the file back (sha256, probe, poster, fingerprints)
        # is the ingest role's, so no footage byte passes through the API.
        try:
            await to_thread.run_sync(self._assemble, upload, etags)
        except BaseException:
            await self._reopen(upload)
            raise
        await self.session.execute(delete(UploadPart).where(UploadPart.session_id == upload.id))
        await self.session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload.id)
            .values(status=UploadStatus.VERIFYING, allow_duplicate=allow_duplicate)
        )
        await self.session.commit()
        counters.uploaded(upload.size, Transfer.DIRECT.value)
        await self.session.refresh(upload)
        return Completion(self._out(upload, []), 202)

    async def verify(self, upload: UploadSession) -> AssetOut | None:
        """The ingest role's checks of a direct upload that storage holds whole: its asset, or
        None when the file was refused (the session is then ``failed`` and says why)."""
        try:
            media, frames = await to_thread.run_sync(self._check, upload)
            if not upload.allow_duplicate:
                await _serialise_completions(self.session, upload.tenant_id)
                await self._refuse_duplicate(upload.sha256)
        except MediaError as exc:
            await self._fail(upload, Invalid(str(exc)))
            return None
        except (Invalid, DuplicateAsset) as exc:
            await self._fail(upload, exc)
            return None
        return await self._record(upload, media, frames)

    async def give_up(self, upload: UploadSession) -> None:
        """End a direct upload whose checks failed too often on our side: refused, with the reason."""
        await self._fail(upload, Unverifiable(upload.verify_attempts))

    async def _fail(self, upload: UploadSession, error: DomainError) -> None:
        # Read first: the rollback expires the row, and reloading it here cannot await.
        upload_id, keys = upload.id, TenantKeys(upload.tenant_id)
        asset_id, storage_upload_id = upload.asset_id, upload.storage_upload_id
        # Ends the transaction, and the lock it may hold, before storage is touched.
        await self.session.rollback()
        await to_thread.run_sync(self._discard_objects, keys, asset_id, storage_upload_id)
        await self.session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload_id)
            .values(
                status=UploadStatus.FAILED,
                failure=problem_document(error),
                verify_owner=None,
                verify_until=None,
            )
        )
        await self.session.commit()
        logger.info("upload refused by its checks: %s", error.detail, extra={"upload_id": str(upload_id)})

    async def _record(self, upload: UploadSession, media: MediaInfo, frames: list[SampledFrame]) -> AssetOut:
        asset = Asset(
            id=upload.asset_id,
            filename=upload.filename,
            size=upload.size,
            sha256=upload.sha256,
            content_type=probed_media_type(media.container, upload.content_type),
            kind=AssetKind(media.kind),
            media=media.to_dict(),
            rights=upload.rights,
            licence_ref=upload.licence_ref,
            attested_by=upload.created_by,
            attested_at=upload.created_at,
        )
        self.session.add(asset)
        await self.session.flush()  # the hashes refer to the asset
        # Indexed now, while the file is at hand, so a generation's memorisation check only reads rows.
        fingerprints.record(self.session, asset.id, frames)
        await self.session.execute(delete(UploadPart).where(UploadPart.session_id == upload.id))
        await self.session.execute(
            update(UploadSession)
            .where(UploadSession.id == upload.id)
            .values(status=UploadStatus.COMPLETED, verify_owner=None, verify_until=None)
        )
        await self.session.commit()
        return AssetOut.model_validate(asset)

    async def _refuse_duplicate(self, sha256: str) -> None:
        existing = await self.session.scalar(
            select(Asset.id).where(Asset.sha256 == sha256).order_by(Asset.created_at, Asset.id).limit(1)
        )
        if existing is not None:
            raise DuplicateAsset(existing)

    async def _discard_if_duplicate(self, upload: UploadSession) -> None:
        try:
            await self._refuse_duplicate(upload.sha256)
        except DuplicateAsset:
            # Ends the transaction, and the lock it may hold, before storage is touched.
            await self.session.commit()
            await self.discard(upload)
            raise

    def _assemble(self, upload: UploadSession, etags: list[tuple[int, str]]) -> None:
        key = self.keys.footage(upload.asset_id)
        try:
            self.storage.complete_multipart(key, upload.storage_upload_id, etags)
        except ObjectNotFoundError:
            # A retry after a failure past this point: the object is already whole.
            if self.storage.stat(key) is None:
                raise

    def _check(self, upload: UploadSession) -> tuple[MediaInfo, list[SampledFrame]]:
        """Read the whole file once: its sha256 and size against the announced ones, its media,
        poster and fingerprints."""
        keys = self.keys
        footage = keys.footage(upload.asset_id)
        with self.storage.local_path(footage) as path, ThreadPoolExecutor(max_workers=1) as pool:
            # Hashing and probing both read the whole file: overlap them.
            hashing = pool.submit(_sha256_file, path)
            try:
                media: MediaInfo | MediaError = probe(path)
                jpeg = poster(path)
                frames = fingerprint(path)
            except MediaError as exc:
                media = exc
            digest, size = hashing.result()
        # A damaged transfer is the likelier story than damaged footage, so it is told first.
        if size != upload.size:
            raise Invalid(f"The file is {size} bytes, not the {upload.size} announced.")
        if digest != upload.sha256:
            raise Invalid("The file's sha256 does not match the one announced; the upload was corrupted.")
        if isinstance(media, MediaError):
            raise media
        # Checked here so that a refusal discards the upload like any other bad file.
        probed_media_type(media.container, upload.content_type)
        self.storage.put_bytes(keys.poster(upload.asset_id), jpeg, "image/jpeg")
        return media, frames

    async def _reopen(self, upload: UploadSession) -> None:
        upload_id = upload.id  # read first: the rollback expires the row, and reloading it here cannot await
        await self.session.rollback()
        await self.session.execute(
            update(UploadSession).where(UploadSession.id == upload_id).values(status=UploadStatus.OPEN)
        )
        await self.session.commit()

    async def abort(self, upload_id: UUID) -> None:
        upload = await self._load(upload_id)
        if upload.status is UploadStatus.COMPLETED:
            raise Conflict("This upload is complete; delete the asset instead.")
        if upload.status in (UploadStatus.COMPLETING, UploadStatus.VERIFYING):
            # Its file is being read into an asset: taken away now, the asset would have no footage.
            raise Conflict("This upload is being checked; once it is an asset, delete the asset instead.")
        await self.discard(upload)

    async def discard(self, upload: UploadSession) -> None:
        """Remove an unfinished upload with everything it wrote, in storage and in the database."""
        keys = TenantKeys(upload.tenant_id)
        await to_thread.run_sync(self._discard_objects, keys, upload.asset_id, upload.storage_upload_id)
        await self.session.execute(delete(UploadPart).where(UploadPart.session_id == upload.id))
        await self.session.execute(delete(UploadSession).where(UploadSession.id == upload.id))
        await self.session.commit()

    def _discard_objects(self, keys: TenantKeys, asset_id: UUID, storage_upload_id: str) -> None:
        self.storage.abort_multipart(keys.footage(asset_id), storage_upload_id)
        for key in keys.asset_objects(asset_id):
            self.storage.delete(key)

    async def _load(self, upload_id: UUID) -> UploadSession:
        upload = await self.session.get(UploadSession, upload_id)
        if upload is None:
            raise NotFound("No such upload.")
        return upload

    async def _load_open(self, upload_id: UUID) -> UploadSession:
        upload = await self._load(upload_id)
        if upload.status is not UploadStatus.OPEN:
            raise Conflict(f"This upload is {upload.status.value}; it takes no more parts.")
        await self._ensure_live(upload)
        return upload

    async def _ensure_live(self, upload: UploadSession) -> None:
        if upload.expires_at <= datetime.now(UTC):
            await self.discard(upload)
            raise Gone("This upload session has expired and its parts were removed; start a new one.")

    async def _received(self, upload: UploadSession) -> list[Received]:
        rows = (
            await self.session.scalars(
                select(UploadPart).where(UploadPart.session_id == upload.id).order_by(UploadPart.part_number)
            )
        ).all()
        checked = [Received(r.part_number, r.size, r.sha256, r.etag) for r in rows]
        if upload.transfer is Transfer.API or upload.status not in _PARTS_IN_STORAGE:
            return checked
        # Parts sent straight to storage are known only to it; one sent through the API keeps
        # the sha256 checked on receipt while storage holds those very bytes.
        stored = await to_thread.run_sync(
            self._signer(upload).list_parts, self.keys.footage(upload.asset_id), upload.storage_upload_id
        )
        through_api = {(p.part_number, p.etag): p.sha256 for p in checked}
        return [
            Received(p.part_number, p.size, through_api.get((p.part_number, p.etag)), p.etag) for p in stored
        ]

    @staticmethod
    def _out(upload: UploadSession, parts: list[Received]) -> UploadOut:
        return UploadOut(
            id=upload.id,
            filename=upload.filename,
            size=upload.size,
            sha256=upload.sha256,
            content_type=upload.content_type,
            rights=upload.rights,
            licence_ref=upload.licence_ref,
            part_size=upload.part_size,
            part_count=upload.part_count,
            status=upload.status,
            transfer=upload.transfer,
            expires_at=upload.expires_at,
            asset_id=upload.asset_id if upload.status is UploadStatus.COMPLETED else None,
            failure=upload.failure,
            parts=[PartOut(part_number=p.part_number, size=p.size, sha256=p.sha256) for p in parts],
        )


async def _serialise_completions(session: AsyncSession, tenant_id: UUID) -> None:
    """Queue the tenant's other checked completions behind this transaction.

    A write to the tenant's row (as ``service.quotas.admission`` does): on PostgreSQL its row
    lock, on SQLite the database's write lock, holds until this transaction ends. So the
    duplicate check that follows sees every asset committed before, and no other completion
    can commit an asset between that check and this one's insert.
    """
    await session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(admissions=Tenant.admissions)
        .execution_options(synchronize_session=False)
    )


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(4 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _expected_digest(header: str | None) -> bytes | None:
    """The sha-256 from an RFC 9530 ``Content-Digest`` header, if the client sent one."""
    if not header:
        return None
    for member in header.split(","):
        algorithm, _, value = member.strip().partition("=")
        if algorithm.strip().lower() == "sha-256":
            try:
                return base64.b64decode(value.strip().strip(":"), validate=True)
            except binascii.Error as exc:
                raise Invalid("Content-Digest sha-256 is not valid base64.") from exc
    return None


async def _stream_into(
    writer: PartWriter, body: AsyncIterator[bytes], expected: int, part_number: int, digest: bytes | None
) -> str:
    batch = bytearray()
    try:
        async for chunk in body:
            if writer.size + len(batch) + len(chunk) > expected:
                raise PayloadTooLarge(f"Part {part_number} is larger than its {expected} bytes.")
            batch += chunk
            if len(batch) >= _WRITE_BATCH:
                await to_thread.run_sync(writer.write, bytes(batch))
                batch.clear()
        if batch:
            await to_thread.run_sync(writer.write, bytes(batch))
        if writer.size != expected:
            raise Invalid(f"Part {part_number} must be exactly {expected} bytes; {writer.size} arrived.")
        if digest is not None and writer.sha256 is not None and writer.sha256.digest() != digest:
            raise Invalid(f"Part {part_number} does not match its Content-Digest; send it again.")
        etag: str = await to_thread.run_sync(writer.finish)
        return etag
    except BaseException:
        await to_thread.run_sync(writer.discard)
        raise


async def delete_asset(session: AsyncSession, storage: ObjectStorage, asset_id: UUID) -> None:
    asset = await session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("No such asset.")
    if await session.scalar(select(DatasetItem.id).where(DatasetItem.asset_id == asset_id).limit(1)):
        raise Conflict("This asset is part of a dataset version; remove it from the version first.")
    keys = TenantKeys(asset.tenant_id)
    # Objects first: deleting them is idempotent, so a failure before the row goes can be retried.
    for key in keys.asset_objects(asset_id):
        await to_thread.run_sync(storage.delete, key)
    await session.delete(asset)
    await session.execute(delete(UploadSession).where(UploadSession.asset_id == asset_id))
    await session.commit()


async def get_asset(session: AsyncSession, asset_id: UUID) -> Asset:
    asset = await session.get(Asset, asset_id)
    if asset is None:
        raise NotFound("No such asset.")
    return asset


async def list_assets(
    session: AsyncSession, page: PageRequest, sha256: str | None = None
) -> tuple[list[AssetOut], int]:
    stmt = select(Asset)
    if sha256 is not None:
        stmt = stmt.where(Asset.sha256 == sha256.lower())
    rows, total = await fetch_page(session, stmt.order_by(Asset.created_at.desc()), page)
    return [AssetOut.model_validate(a) for a in rows], total
