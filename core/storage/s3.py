"""S3-compatible storage (MinIO, S3, R2) through the ``minio`` client.

Multipart uploads map one-to-one onto S3's: a part the API receives is one
UploadPart, so a footage file is never assembled on the API's disk or in its memory.
The client's multipart calls are underscored, but they are the documented S3
operations and the only way to drive a multipart upload across requests.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from core.storage.base import (
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStorage,
    PartsChanged,
    PartWriter,
    PendingMultipart,
    SignedUploads,
    StoredPart,
)
from core.storage.sigv4 import resign

_MISSING = {"NoSuchKey", "NoSuchUpload", "NoSuchObject"}


class _S3PartWriter(PartWriter):
    """Holds one part (bounded by the upload's part size) and sends it as one UploadPart."""

    def __init__(self, storage: S3Storage, key: str, upload_id: str, part_number: int) -> None:
        super().__init__()
        self._storage = storage
        self._key = key
        self._upload_id = upload_id
        self._part_number = part_number
        self._buffer = bytearray()

    def _write(self, chunk: bytes) -> None:
        self._buffer += chunk

    def finish(self) -> str:
        try:
            etag: str = self._storage.client._upload_part(
                self._storage.bucket,
                self._key,
                # The buffer itself, not a copy (a part may be 64 MiB); urllib3 sends any bytes-like body.
                self._buffer,  # type: ignore[arg-type]
                None,
                self._upload_id,
                self._part_number,
            )
        except S3Error as exc:
            raise _translate(exc, self._key) from exc
        finally:
            self._buffer = bytearray()
        return etag

    def discard(self) -> None:
        self._buffer = bytearray()


def _translate(exc: S3Error, key: str) -> Exception:
    return ObjectNotFoundError(key) if exc.code in _MISSING else exc


class S3Storage(ObjectStorage, SignedUploads):
    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        secure: bool,
        region: str | None = None,
        create_bucket: bool = False,
        public_url: str = "",
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=120),
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
            maxsize=16,
        )
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        self.bucket = bucket
        self._secret_key = secret_key
        if create_bucket and not self.client.bucket_exists(bucket):
            self.client.make_bucket(bucket)
        self.signer = self.client
        if public_url:
            public = urlsplit(public_url)
            # Signs for the name clients use. With no region configured it is read once here
            # through the internal endpoint, so signing never reaches for the public name.
            self.signer = Minio(
                public.netloc,
                access_key=access_key,
                secret_key=secret_key,
                secure=public.scheme == "https",
                region=region or self.client._get_region(bucket),
            )

    def ping(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise OSError(f"bucket {self.bucket!r} does not exist")

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self.client.fput_object(self.bucket, key, str(path), content_type=content_type)

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(
        self, key: str, chunk_size: int = 1 << 20, *, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        if length == 0:
            return  # minio reads a length of 0 as "to the end"
        try:
            response = self.client.get_object(self.bucket, key, offset=start, length=length or 0)
        except S3Error as exc:
            raise _translate(exc, key) from exc
        try:
            yield from response.stream(chunk_size)
        finally:
            response.close()
            response.release_conn()

    def get_file(self, key: str, dest: Path) -> None:
        with dest.open("wb") as out:
            for chunk in self.iter_chunks(key, 4 << 20):
                out.write(chunk)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="rushes-") as tmp:
            path = Path(tmp) / "object"
            self.get_file(key, path)
            yield path

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            result = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
                return None
            raise
        return ObjectInfo(key, int(result.size or 0))

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return [
            ObjectInfo(str(obj.object_name), int(obj.size or 0))
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        ]

    def presigned_get(self, key: str, expires: timedelta, disposition: str | None = None) -> str | None:
        # Signing is local arithmetic; the URL reaches the endpoint as this process names it.
        headers: dict[str, str | list[str] | tuple[str]] | None = None
        if disposition:
            headers = {"response-content-disposition": disposition}
        return self.signer.presigned_get_object(self.bucket, key, expires=expires, response_headers=headers)

    def presigned_part(
        self, key: str, upload_id: str, part_number: int, size: int, expires: timedelta
    ) -> str:
        url = self.signer.get_presigned_url(
            "PUT",
            self.bucket,
            key,
            expires=expires,
            extra_query_params={"uploadId": upload_id, "partNumber": str(part_number)},
        )
        # The length signed too: storage refuses a body of any other size (core.storage.sigv4).
        return resign(url, "PUT", self._secret_key, {"content-length": str(size)})

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker: str | None = None
        while True:
            try:
                result = self.client._list_parts(self.bucket, key, upload_id, part_number_marker=marker)
            except S3Error as exc:
                raise _translate(exc, key) from exc
            parts.extend(StoredPart(p.part_number, int(p.size or 0), p.etag) for p in result.parts)
            if not result.is_truncated or result.next_part_number_marker is None:
                return parts
            marker = result.next_part_number_marker

    def delete(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def delete_prefix(self, prefix: str) -> int:
        # DeleteObjects takes up to 1,000 keys a request; minio batches the lazy listing.
        objects = self.list_objects(prefix)
        failed = list(self.client.remove_objects(self.bucket, (DeleteObject(info.key) for info in objects)))
        if failed:
            raise OSError(f"could not delete {len(failed)} objects under {prefix!r}: {failed[0]}")
        return len(objects)

    def list_folders(self, prefix: str) -> list[str]:
        return [
            str(obj.object_name)
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=False)
            if obj.is_dir
        ]

    def create_multipart(self, key: str) -> str:
        return self.client._create_multipart_upload(self.bucket, key, {})

    def part_writer(self, key: str, upload_id: str, part_number: int, offset: int) -> PartWriter:
        return _S3PartWriter(self, key, upload_id, part_number)

    def complete_multipart(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None:
        parts = [Part(part_number, etag) for part_number, etag in sorted(etags)]
        try:
            self.client._complete_multipart_upload(self.bucket, key, upload_id, parts)
        except S3Error as exc:
            if exc.code == "InvalidPart":  # an etag no longer matches: the part was replaced
                raise PartsChanged() from exc
            raise _translate(exc, key) from exc

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client._abort_multipart_upload(self.bucket, key, upload_id)
        except S3Error as exc:
            if exc.code not in _MISSING:
                raise

    def list_multipart(self, prefix: str) -> list[PendingMultipart]:
        pending: list[PendingMultipart] = []
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            result = self.client._list_multipart_uploads(
                self.bucket, prefix=prefix, key_marker=key_marker, upload_id_marker=upload_marker
            )
            pending.extend(
                PendingMultipart(
                    upload.object_name,
                    str(upload.upload_id),
                    upload.initiated_time or datetime.now(UTC),
                )
                for upload in result.uploads
            )
            if not result.is_truncated:
                return pending
            key_marker, upload_marker = result.next_key_marker, result.next_upload_id_marker
