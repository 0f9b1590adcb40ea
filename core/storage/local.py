"""A folder on the local disk: the embedded default."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.storage.base import ObjectInfo, ObjectNotFoundError, ObjectStorage, PartWriter, PendingMultipart

_MULTIPART_DIR = ".multipart"


class _LocalPartWriter(PartWriter):
    """Writes a part straight into the object's staging file at its offset, so that
    completing an upload is a rename rather than a second copy of every byte."""

    def __init__(self, staging: Path, offset: int) -> None:
        super().__init__()
        self._fd = os.open(staging, os.O_WRONLY)
        self._position = offset

    def _write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            written = os.pwrite(self._fd, view, self._position)
            self._position += written
            view = view[written:]

    def finish(self) -> str:
        os.close(self._fd)
        return ""  # completing is a rename of the staging file: parts need no etag

    def discard(self) -> None:
        os.close(self._fd)


class LocalStorage(ObjectStorage):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / _MULTIPART_DIR).mkdir(exist_ok=True)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if (
            not key
            or key.startswith("/")
            or any(p in ("", ".", "..") for p in parts[:-1])
            or parts[-1]
            in (
                ".",
                "..",
            )
        ):
            raise ValueError(f"invalid object key {key!r}")
        return self.root.joinpath(*parts)

    def _staging(self, upload_id: str) -> Path:
        uuid.UUID(upload_id)  # upload ids are ours; anything else is not a path we open
        return self.root / _MULTIPART_DIR / upload_id

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"storage folder {self.root} is not writable")

    def _write_atomically(self, key: str, fill: Iterator[bytes] | Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(fill, Path):
                    with fill.open("rb") as src:
                        shutil.copyfileobj(src, out, 4 << 20)
                else:
                    for chunk in fill:
                        out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._write_atomically(key, iter((data,)))

    def put_file(self, key: str, path: Path, content_type: str = "application/octet-stream") -> None:
        self._write_atomically(key, path)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(key) from exc

    def iter_chunks(
        self, key: str, chunk_size: int = 1 << 20, *, start: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(key) from exc
        with handle:
            handle.seek(start)
            left = length
            while left is None or left > 0:
                chunk = handle.read(chunk_size if left is None else min(chunk_size, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def get_file(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(key) from exc

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFoundError(key)
        yield path

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return ObjectInfo(key, path.stat().st_size) if path.is_file() else None

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix.rstrip("/") else self.root
        search_root = base if base.is_dir() else base.parent
        found = []
        for dirpath, _, filenames in os.walk(search_root):
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not key.startswith(_MULTIPART_DIR):
                    found.append(ObjectInfo(key, full.stat().st_size))
        return sorted(found, key=lambda info: info.key)

    def presigned_get(self, key: str, expires: timedelta, disposition: str | None = None) -> str | None:
        return None  # files on the API's disk have no URL of their own: the API streams them

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        deleted = super().delete_prefix(prefix)
        # A folder prefix also takes its now empty folders, so ``list_folders`` stops naming it.
        if prefix.endswith("/") and prefix.strip("/"):
            folder = self._path(prefix.rstrip("/"))
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
        return deleted

    def list_folders(self, prefix: str) -> list[str]:
        folder = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        return sorted(
            f"{prefix}{entry.name}/"
            for entry in os.scandir(folder)
            if entry.is_dir() and not (folder == self.root and entry.name == _MULTIPART_DIR)
        )

    def create_multipart(self, key: str) -> str:
        self._path(key)
        upload_id = str(uuid.uuid4())
        staging = self._staging(upload_id)
        staging.touch()
        staging.with_suffix(".json").write_text(
            json.dumps({"key": key, "initiated": datetime.now(UTC).isoformat()})
        )
        return upload_id

    def part_writer(self, key: str, upload_id: str, part_number: int, offset: int) -> PartWriter:
        staging = self._staging(upload_id)
        if not staging.is_file():
            raise ObjectNotFoundError(f"multipart upload {upload_id}")
        return _LocalPartWriter(staging, offset)

    def complete_multipart(self, key: str, upload_id: str, etags: list[tuple[int, str]]) -> None:
        staging = self._staging(upload_id)
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staging, target)
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"multipart upload {upload_id}") from exc
        staging.with_suffix(".json").unlink(missing_ok=True)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        staging = self._staging(upload_id)
        staging.unlink(missing_ok=True)
        staging.with_suffix(".json").unlink(missing_ok=True)

    def list_multipart(self, prefix: str) -> list[PendingMultipart]:
        pending = []
        for meta_path in (self.root / _MULTIPART_DIR).glob("*.json"):
            meta = json.loads(meta_path.read_text())
            if meta["key"].startswith(prefix):
                pending.append(
                    PendingMultipart(meta["key"], meta_path.stem, datetime.fromisoformat(meta["initiated"]))
                )
        return pending
