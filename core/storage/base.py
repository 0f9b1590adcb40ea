"""The one small interface every storage backend implements.

Backends are synchronous: the trainer calls them from its own threads, and the API
runs them in worker threads (``core.storage.aio``) so the event loop never blocks.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from core.errors import Conflict


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """RFC 6266: ``inline`` shows or plays in the browser, ``attachment`` saves; the name
    percent-encoded (RFC 8187), so no filename can break out of the header."""
    return f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(filename)}"


class ObjectNotFoundError(LookupError):
    """The key names no object."""


class PartsChanged(Conflict):
    """A part was sent again between listing the parts and joining them: join them again."""

    def __init__(self) -> None:
        super().__init__("A part was sent again while the upload was being completed; complete it again.")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int


@dataclass(frozen=True, slots=True)
class PendingMultipart:
    key: str
    upload_id: str
    initiated: datetime


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One part of a pending multipart upload as storage holds it."""

    part_number: int
    size: int
    etag: str


class PartWriter(abc.ABC):
    """Receives one part's bytes in order; ``finish`` stores it and returns its etag.

    After ``hash_as_written`` bytes are hashed as they pass, so the caller can check a part's
    digest without reading it back; otherwise they are not, as completion hashes the whole
    file anyway and a byte need not be hashed twice.
    """

    def __init__(self) -> None:
        self.sha256: hashlib._Hash | None = None
        self.size = 0

    def hash_as_written(self) -> None:
        self.sha256 = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        if self.sha256 is not None:
            self.sha256.update(chunk)
        self.size += len(chunk)
        self._write(chunk)

    @abc.abstractmethod
    def _write(self, chunk: bytes) -> None: ...

    @abc.abstractmethod
    def finish(self) -> str: ...

    @abc.abstractmethod
    def discard(self) -> None: ...


class ObjectStorage(abc.ABC):
    @abc.abstractmethod
    def ping(self) -> None:
        """Raise if the backend cannot be reached."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abc.abstractmethod
    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def iter_chunks(
        self, key: str, chunk_size: int = 1 << 20, *, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """The object's bytes from ``start``, ``length`` of them (to the end when None)."""

    @abc.abstractmethod
    def get_file(self, key: str, dest: Path) -> None: ...

    @abc.abstractmethod
    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A readable local file holding the object, for tools (PyAV) that need to seek."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...

    @abc.abstractmethod
    def presigned_get(self, key: str, expires: timedelta, disposition: str | None = None) -> str | None:
        """A URL that downloads the object without credentials until ``expires`` has passed, answered
        with ``disposition`` as its Content-Disposition when given (``content_disposition``); None
        when the backend cannot sign one (stream the object instead)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing object is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix`` (pending multipart uploads are
        not objects: abort those with ``list_multipart``); the number deleted."""
        objects = self.list_objects(prefix)
        for info in objects:
            self.delete(info.key)
        return len(objects)

    @abc.abstractmethod
    def list_folders(self, prefix: str) -> list[str]:
        """The folders directly under ``prefix`` (which ends with ``/``), each as a prefix ending
        with ``/``: one listing entry per tenant or per generation, not one per object."""

    @abc.abstractmethod
    def create_multipart(self, key: str) -> str: ...

    @abc.abstractmethod
    def part_writer(self, key: str, upload_id: str, part_number: int, offset: int) -> PartWriter:
        """Write part ``part_number`` (1-based), which starts ``offset`` bytes into the object."""

    @abc.abstractmethod
    def complete_multipart(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None: ...

    @abc.abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Remove a pending upload and its parts; aborting a finished or missing upload is not an error."""

    @abc.abstractmethod
    def list_multipart(self, prefix: str) -> list[PendingMultipart]: ...


class SignedUploads(abc.ABC):
    """A backend whose clients can send multipart parts straight to it, through URLs it signs,
    so that footage never passes through the API."""

    @abc.abstractmethod
    def presigned_part(
        self, key: str, upload_id: str, part_number: int, size: int, expires: timedelta
    ) -> str:
        """A URL that accepts ``PUT`` of part ``part_number``, exactly ``size`` bytes of it, without
        credentials until ``expires``."""

    @abc.abstractmethod
    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        """Every part the pending upload holds, by part number; raises ObjectNotFoundError when
        the upload is gone."""
