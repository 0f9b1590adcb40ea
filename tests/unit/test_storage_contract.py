"""Both storage backends honour one contract; the S3 one against a real S3 server on loopback."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from core.storage import ObjectNotFoundError, ObjectStorage, TenantKeys, content_disposition
from core.storage.keys import OUTPUT_VIDEO
from core.storage.local import LocalStorage

pytestmark = pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)

MiB = 1 << 20


@pytest.fixture
def keys() -> TenantKeys:
    return TenantKeys(uuid4())


def test_put_get_list_delete(storage: ObjectStorage, keys: TenantKeys, tmp_path: Path) -> None:
    storage.put_bytes(keys.root + "a/one", b"hello")
    source = tmp_path / "src"
    source.write_bytes(b"x" * 3000)
    storage.put_file(keys.root + "a/two", source)
    assert storage.get_bytes(keys.root + "a/one") == b"hello"
    assert [(o.key, o.size) for o in storage.list_objects(keys.root)] == [
        (keys.root + "a/one", 5),
        (keys.root + "a/two", 3000),
    ]
    assert storage.stat(keys.root + "a/two").size == 3000  # type: ignore[union-attr]
    dest = tmp_path / "dest"
    storage.get_file(keys.root + "a/two", dest)
    assert dest.read_bytes() == source.read_bytes()
    with storage.local_path(keys.root + "a/one") as path:
        assert path.read_bytes() == b"hello"
    assert storage.delete_prefix(keys.root + "a/") == 2
    assert storage.list_objects(keys.root) == []
    assert storage.stat(keys.root + "a/one") is None
    storage.delete(keys.root + "a/one")  # deleting a missing object is not an error
    with pytest.raises(ObjectNotFoundError):
        storage.get_bytes(keys.root + "a/one")


def test_multipart_in_any_order_and_idempotent(storage: ObjectStorage, keys: TenantKeys) -> None:
    key = keys.footage(uuid4())
    parts = [bytes([n]) * (5 * MiB) for n in range(3)] + [b"tail"]
    upload_id = storage.create_multipart(key)
    etags = {}
    for number in (3, 1, 4, 2, 3):  # out of order, part 3 twice
        writer = storage.part_writer(key, upload_id, number, (number - 1) * 5 * MiB)
        if number != 4:  # hashed when asked, and only then
            writer.hash_as_written()
        data = parts[number - 1]
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
        if number == 4:
            assert writer.sha256 is None
        else:
            assert writer.sha256 is not None
            assert writer.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
        etags[number] = writer.finish()
    assert [p.upload_id for p in storage.list_multipart(keys.root)] == [upload_id]
    storage.complete_multipart(key, upload_id, sorted(etags.items()))
    whole = b"".join(parts)
    assert hashlib.sha256(b"".join(storage.iter_chunks(key))).hexdigest() == hashlib.sha256(whole).hexdigest()
    assert storage.list_multipart(keys.root) == []


def test_abort_removes_pending_upload(storage: ObjectStorage, keys: TenantKeys) -> None:
    key = keys.footage(uuid4())
    upload_id = storage.create_multipart(key)
    writer = storage.part_writer(key, upload_id, 1, 0)
    writer.write(b"x" * 1024)
    writer.finish()
    pending = storage.list_multipart(keys.root)
    assert len(pending) == 1
    assert pending[0].key == key
    # moto reports a fixed initiation date in the past; real servers report the real one.
    assert pending[0].initiated.tzinfo is not None
    assert pending[0].initiated <= datetime.now(UTC)
    storage.abort_multipart(key, upload_id)
    storage.abort_multipart(key, upload_id)  # a second abort is harmless
    assert storage.list_multipart(keys.root) == []
    assert storage.list_objects(keys.root) == []


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (3, 4, b"3456"),
        (8, None, b"89"),
        (9, 1, b"9"),
        (4, 0, b""),
        (2, 100, b"23456789"),
    ],
)
def test_iter_chunks_reads_a_byte_range(
    storage: ObjectStorage, keys: TenantKeys, start: int, length: int | None, expected: bytes
) -> None:
    key = keys.footage(uuid4())
    storage.put_bytes(key, b"0123456789")
    assert b"".join(storage.iter_chunks(key, 3, start=start, length=length)) == expected


def test_presigned_get_downloads_without_credentials(storage: ObjectStorage, keys: TenantKeys) -> None:
    key = keys.output(uuid4(), OUTPUT_VIDEO)
    storage.put_bytes(key, b"rendered", "video/mp4")
    url = storage.presigned_get(key, timedelta(minutes=5), content_disposition("clip.mp4", inline=True))
    if isinstance(storage, LocalStorage):
        assert url is None  # a local folder has no URLs: the API streams its objects instead
        return
    assert url is not None and "X-Amz-Expires=300" in url
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"rendered"
    assert response.headers["content-disposition"] == "inline; filename*=UTF-8''clip.mp4"
    bare = storage.presigned_get(key, timedelta(minutes=5))
    assert bare is not None and "content-disposition" not in httpx.get(bare).headers


def test_folders_and_deleting_a_prefix(storage: ObjectStorage, keys: TenantKeys) -> None:
    other = TenantKeys(uuid4())
    storage.put_bytes(keys.footage(uuid4()), b"a")
    storage.put_bytes(keys.outputs(uuid4()) + OUTPUT_VIDEO, b"b")
    storage.put_bytes(other.footage(uuid4()), b"c")
    storage.create_multipart(keys.footage(uuid4()))  # a pending upload is no object, and no folder
    assert {keys.root, other.root} <= set(storage.list_folders("tenants/"))
    assert sorted(storage.list_folders(keys.root)) == [keys.root + "footage/", keys.root + "outputs/"]
    assert storage.list_folders(keys.root + "missing/") == []
    assert storage.delete_prefix(keys.root) == 2
    assert storage.list_objects(keys.root) == []
    assert keys.root not in storage.list_folders("tenants/")
    assert len(storage.list_objects(other.root)) == 1
    assert len(storage.list_multipart(keys.root)) == 1  # aborting uploads is the caller's
