"""``assets.upload``: hash, find or create a session, send the missing parts in parallel, complete.

The hash is sent when the session is made, so a file the library already holds is refused
(:class:`~rushes.DuplicateAssetError`, naming that asset) before any part is sent; completion
refuses one that arrived meanwhile, unless the caller allows duplicates.

Where the server offers it (its storage signs URLs), parts go straight to storage
(``_direct_upload``) and completion answers while the server checks the file; the upload
then follows those checks to the asset or their failure. Otherwise parts go through the API.

The plan (which session, which parts, what each part holds) is shared; only the part
senders differ: a thread pool for :class:`~rushes.Client`, asyncio tasks for
:class:`~rushes.AsyncClient`. Each part is read from disk at its offset when it is sent,
so at most ``concurrency`` parts are in memory at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import threading
import time
import typing
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from tqdm import tqdm

# The storage clients are looked up on the module when made, so a test can watch them.
from rushes import _direct_upload as direct_upload
from rushes import types
from rushes._direct_upload import Checks, DirectPartsAsync, DirectPartsSync
from rushes._errors import APIStatusError, ConflictError, RushesError

if TYPE_CHECKING:
    from rushes._client import AsyncRequester, SyncRequester
    from rushes.resources.uploads import Uploads

DEFAULT_CONCURRENCY = 4
_HASH_CHUNK = 1 << 20
#: Answers that mean a resumed session is gone (expired, aborted, cleaned up): start afresh.
_SESSION_GONE = (404, 410)


@dataclass(frozen=True, slots=True)
class LocalFile:
    path: Path
    filename: str
    size: int
    sha256: str
    content_type: str


def check_rights(rights: types.Rights) -> None:
    """Fail before hashing a large file when the attestation cannot be accepted anyway."""
    kind = rights if isinstance(rights, str) else rights.get("kind")
    ref = None if isinstance(rights, str) else rights.get("licence_ref")
    if kind not in ("owned", "licensed"):
        raise RushesError(f"rights must be 'owned' or licensed, not {kind!r}.")
    if kind == "licensed" and not ref:
        raise RushesError(
            "Licensed footage needs a reference: rights={'kind': 'licensed', 'licence_ref': '...'}."
        )


def describe(path: str | os.PathLike[str], content_type: str | None, progress: bool) -> LocalFile:
    """Stat and hash the file (streamed, never read whole)."""
    file = Path(path)
    if not file.is_file():
        raise RushesError(f"{file} is not a file.")
    size = file.stat().st_size
    kind = content_type or mimetypes.guess_type(file.name)[0]
    if not kind or not kind.startswith(("video/", "image/")):
        raise RushesError(
            f"Cannot tell the media type of {file.name} from its name: give it, e.g. video/mp4"
            " (--content-type on the command line, content_type= in the SDK)."
        )
    digest = hashlib.sha256()
    with (
        file.open("rb") as handle,
        tqdm(total=size, unit="B", unit_scale=True, desc=f"hashing {file.name}", disable=not progress) as bar,
    ):
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return LocalFile(file, file.name, size, digest.hexdigest(), kind)


def resumable(
    sessions: Iterable[types.Upload], local: LocalFile, part_size: int | None
) -> types.Upload | None:
    """The open session for this very file, if an earlier run left one."""
    for upload in sessions:
        if (
            upload.status == "open"
            and upload.filename == local.filename
            and upload.size == local.size
            and upload.sha256 == local.sha256
            and (part_size is None or upload.part_size == part_size)
        ):
            return upload
    return None


def received(upload: types.Upload) -> list[types.UploadPart]:
    """The parts the server holds whole (storage may list a direct part that arrived short)."""
    return [p for p in upload.parts if p.size == part_length(upload, p.part_number)]


def missing_parts(upload: types.Upload) -> list[int]:
    done = {p.part_number for p in received(upload)}
    return [n for n in range(1, upload.part_count + 1) if n not in done]


def read_part(path: Path, upload: types.Upload, number: int) -> bytes:
    offset = (number - 1) * upload.part_size
    length = min(upload.part_size, upload.size - offset)
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise RushesError(f"{path} changed while uploading (part {number} is short); upload it again.")
    return data


def part_length(upload: types.Upload, number: int) -> int:
    return min(upload.part_size, upload.size - (number - 1) * upload.part_size)


def progress_bar(local: LocalFile, upload: types.Upload, enabled: bool) -> tqdm[Any]:
    done = sum(p.size for p in received(upload))
    return tqdm(
        total=local.size, initial=done, unit="B", unit_scale=True, desc=local.filename, disable=not enabled
    )


def _is_gone(exc: APIStatusError) -> bool:
    return exc.status_code in _SESSION_GONE


def goes_direct(upload: types.Upload, direct: bool) -> bool:
    """Parts go straight to storage when the caller allows it and the session takes them so
    (a session resumed without ``direct`` still takes them through the API)."""
    return direct and upload.transfer == "direct"


# --- sync: threads ---------------------------------------------------------------------------


def _send_parts_sync(
    uploads: Uploads[SyncRequester],
    storage: httpx.Client | None,
    local: LocalFile,
    upload: types.Upload,
    numbers: list[int],
    concurrency: int,
    bar: tqdm[Any],
) -> None:
    """Send ``numbers``: straight to storage with ``storage``, else through the API."""
    if not numbers:
        return
    put: Callable[[int, bytes], object] = (
        DirectPartsSync(uploads, upload.id, storage, numbers).put
        if storage is not None
        # No per-part digest: the server checks the whole file's sha256 at completion, so a
        # digest would only have it hash every byte twice (TLS already guards the transfer).
        else lambda number, data: uploads.put_part(upload.id, number, data, digest=False)
    )
    lock = threading.Lock()
    stop = threading.Event()

    def send(number: int) -> None:
        if stop.is_set():
            return
        put(number, read_part(local.path, upload, number))
        with lock:
            bar.update(part_length(upload, number))

    pool = ThreadPoolExecutor(
        max_workers=max(1, min(concurrency, len(numbers))), thread_name_prefix="rushes-upload"
    )
    futures = [pool.submit(send, n) for n in numbers]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            raise typing.cast(BaseException, failed.exception())
    finally:
        # On an error or Ctrl-C, parts not yet started are dropped; parts in flight finish.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _storage_sync(
    uploads: Uploads[SyncRequester], upload: types.Upload, direct: bool
) -> AbstractContextManager[httpx.Client | None]:
    if not goes_direct(upload, direct):
        return nullcontext()
    return direct_upload.storage_client(uploads._requester.options.timeout)


def _checked_sync(
    uploads: Uploads[SyncRequester],
    get_asset: Callable[[str], types.Asset],
    upload: types.Upload,
    check_timeout: float,
    bar: tqdm[Any],
) -> types.Asset:
    """The asset once the server's checks of a direct upload pass; raises why they failed."""
    checks = Checks(uploads._requester, upload, check_timeout, bar)
    while (asset_id := checks.asset_id(upload)) is None:
        time.sleep(checks.next_delay())
        upload = uploads.get(upload.id)
    return get_asset(asset_id)


def upload_sync(
    uploads: Uploads[SyncRequester],
    get_asset: Callable[[str], types.Asset],
    path: str | os.PathLike[str],
    rights: types.Rights,
    content_type: str | None,
    progress: bool,
    part_size: int | None,
    concurrency: int,
    allow_duplicate: bool,
    direct: bool,
    check_timeout: float,
) -> types.Asset:
    check_rights(rights)
    local = describe(path, content_type, progress)
    found = resumable(uploads.list(sha256=local.sha256, limit=200).first_page().items, local, part_size)
    for attempt in range(2):
        upload = found or _create_sync(uploads, local, rights, part_size, allow_duplicate, direct)
        try:
            with (
                progress_bar(local, upload, progress) as bar,
                _storage_sync(uploads, upload, direct) as storage,
            ):
                _send_parts_sync(uploads, storage, local, upload, missing_parts(upload), concurrency, bar)
                try:
                    done = uploads.complete(upload.id, allow_duplicate=allow_duplicate)
                except ConflictError as exc:
                    if not exc.missing_parts:
                        raise
                    # Parts the server lost track of (or never got): send them and complete again.
                    _send_parts_sync(uploads, storage, local, upload, exc.missing_parts, concurrency, bar)
                    done = uploads.complete(upload.id, allow_duplicate=allow_duplicate)
                if isinstance(done, types.Upload):
                    return _checked_sync(uploads, get_asset, done, check_timeout, bar)
            return done
        except APIStatusError as exc:
            if found is None or attempt or not _is_gone(exc):
                raise
            found = None  # the session we resumed has expired; start a new one
    raise AssertionError("unreachable")


def _create_sync(
    uploads: Uploads[SyncRequester],
    local: LocalFile,
    rights: types.Rights,
    part_size: int | None,
    allow_duplicate: bool,
    direct: bool,
) -> types.Upload:
    return uploads.create(
        filename=local.filename,
        size=local.size,
        sha256=local.sha256,
        content_type=local.content_type,
        rights=rights,
        part_size=part_size,
        allow_duplicate=allow_duplicate,
        direct=direct,
    )


# --- async: asyncio tasks ---------------------------------------------------------------------


async def _send_parts_async(
    uploads: Uploads[AsyncRequester],
    storage: httpx.AsyncClient | None,
    local: LocalFile,
    upload: types.Upload,
    numbers: list[int],
    concurrency: int,
    bar: tqdm[Any],
) -> None:
    """Send ``numbers``: straight to storage with ``storage``, else through the API."""
    put: Callable[[int, bytes], Awaitable[object]] = (
        DirectPartsAsync(uploads, upload.id, storage, numbers).put
        if storage is not None
        # No per-part digest: the server checks the whole file's sha256 at completion, so a
        # digest would only have it hash every byte twice (TLS already guards the transfer).
        else lambda number, data: uploads.put_part(upload.id, number, data, digest=False)
    )
    queue = iter(numbers)

    async def worker() -> None:
        for number in queue:
            data = await asyncio.to_thread(read_part, local.path, upload, number)
            await put(number, data)
            bar.update(len(data))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(concurrency, len(numbers)))):
                group.create_task(worker())
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first: BaseException = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


def _storage_async(
    uploads: Uploads[AsyncRequester], upload: types.Upload, direct: bool
) -> AbstractAsyncContextManager[httpx.AsyncClient | None]:
    if not goes_direct(upload, direct):
        return nullcontext()
    return direct_upload.async_storage_client(uploads._requester.options.timeout)


async def _checked_async(
    uploads: Uploads[AsyncRequester],
    get_asset: Callable[[str], Awaitable[types.Asset]],
    upload: types.Upload,
    check_timeout: float,
    bar: tqdm[Any],
) -> types.Asset:
    checks = Checks(uploads._requester, upload, check_timeout, bar)
    while (asset_id := checks.asset_id(upload)) is None:
        await asyncio.sleep(checks.next_delay())
        upload = await uploads.get(upload.id)
    return await get_asset(asset_id)


async def upload_async(
    uploads: Uploads[AsyncRequester],
    get_asset: Callable[[str], Awaitable[types.Asset]],
    path: str | os.PathLike[str],
    rights: types.Rights,
    content_type: str | None,
    progress: bool,
    part_size: int | None,
    concurrency: int,
    allow_duplicate: bool,
    direct: bool,
    check_timeout: float,
) -> types.Asset:
    check_rights(rights)
    local = await asyncio.to_thread(describe, path, content_type, progress)
    found = resumable(
        (await uploads.list(sha256=local.sha256, limit=200).first_page()).items, local, part_size
    )
    for attempt in range(2):
        upload = found or await _create_async(uploads, local, rights, part_size, allow_duplicate, direct)
        try:
            with progress_bar(local, upload, progress) as bar:
                async with _storage_async(uploads, upload, direct) as storage:
                    await _send_parts_async(
                        uploads, storage, local, upload, missing_parts(upload), concurrency, bar
                    )
                    try:
                        done = await uploads.complete(upload.id, allow_duplicate=allow_duplicate)
                    except ConflictError as exc:
                        if not exc.missing_parts:
                            raise
                        await _send_parts_async(
                            uploads, storage, local, upload, exc.missing_parts, concurrency, bar
                        )
                        done = await uploads.complete(upload.id, allow_duplicate=allow_duplicate)
                    if isinstance(done, types.Upload):
                        return await _checked_async(uploads, get_asset, done, check_timeout, bar)
            return done
        except APIStatusError as exc:
            if found is None or attempt or not _is_gone(exc):
                raise
            found = None
    raise AssertionError("unreachable")


async def _create_async(
    uploads: Uploads[AsyncRequester],
    local: LocalFile,
    rights: types.Rights,
    part_size: int | None,
    allow_duplicate: bool,
    direct: bool,
) -> types.Upload:
    return await uploads.create(
        filename=local.filename,
        size=local.size,
        sha256=local.sha256,
        content_type=local.content_type,
        rights=rights,
        part_size=part_size,
        allow_duplicate=allow_duplicate,
        direct=direct,
    )
