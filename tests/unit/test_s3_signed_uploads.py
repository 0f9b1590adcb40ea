"""The S3 backend's signed part uploads (``SignedUploads``), against a real S3 server on loopback."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from core.storage import ObjectNotFoundError, ObjectStorage, SignedUploads, TenantKeys
from core.storage.base import PartsChanged
from core.storage.s3 import S3Storage
from core.storage.sigv4 import resign

S3 = pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)


@S3
def test_a_signed_url_takes_its_part_and_storage_lists_it(storage: ObjectStorage) -> None:
    assert isinstance(storage, SignedUploads)
    key = TenantKeys(uuid4()).footage(uuid4())
    upload_id = storage.create_multipart(key)
    url = storage.presigned_part(key, upload_id, 2, 6, timedelta(minutes=5))
    assert "partNumber=2" in url and f"uploadId={upload_id}" in url and "X-Amz-Expires=300" in url
    # The length is signed: storage refuses a body of any other size.
    assert "X-Amz-SignedHeaders=content-length%3Bhost" in url
    assert httpx.put(url, content=b"frames").status_code == 200
    [part] = storage.list_parts(key, upload_id)
    assert (part.part_number, part.size) == (2, 6) and part.etag
    storage.abort_multipart(key, upload_id)
    with pytest.raises(ObjectNotFoundError):
        storage.list_parts(key, upload_id)


@S3
def test_parts_past_one_listing_page_are_all_listed(storage: ObjectStorage) -> None:
    # S3 answers ListParts 1,000 parts at a time; a 16 GiB file at 16 MiB parts has more.
    assert isinstance(storage, SignedUploads)
    key = TenantKeys(uuid4()).footage(uuid4())
    upload_id = storage.create_multipart(key)

    def put(number: int) -> None:
        writer = storage.part_writer(key, upload_id, number, number - 1)
        writer.write(b"x")
        writer.finish()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(1, 1003)))
    parts = storage.list_parts(key, upload_id)
    assert [p.part_number for p in parts] == list(range(1, 1003))
    assert {p.size for p in parts} == {1}
    storage.abort_multipart(key, upload_id)


def test_urls_name_the_public_endpoint_when_one_is_set(s3_server: str) -> None:
    storage = S3Storage(
        endpoint=s3_server,
        bucket=f"rushes-{uuid4().hex[:12]}",
        access_key="testing",
        secret_key="testing",
        secure=False,
        region="us-east-1",
        create_bucket=True,
        public_url="https://media.example.com",
    )
    key = TenantKeys(uuid4()).footage(uuid4())
    upload_id = storage.create_multipart(key)
    # Signed locally for the name clients use; the API reaches storage by its own name.
    url = storage.presigned_part(key, upload_id, 1, 1, timedelta(minutes=5))
    assert url.startswith(f"https://media.example.com/{storage.bucket}/")
    download = storage.presigned_get(key, timedelta(minutes=5))
    assert download is not None and download.startswith("https://media.example.com/")
    assert storage.list_parts(key, upload_id) == []
    storage.abort_multipart(key, upload_id)


@S3
def test_a_part_sent_again_after_the_listing_is_told_as_a_change_not_an_error(storage: ObjectStorage) -> None:
    assert isinstance(storage, SignedUploads)
    key = TenantKeys(uuid4()).footage(uuid4())
    upload_id = storage.create_multipart(key)
    first = storage.presigned_part(key, upload_id, 1, 10, timedelta(minutes=5))
    httpx.put(first, content=b"first take")
    listed = [(p.part_number, p.etag) for p in storage.list_parts(key, upload_id)]
    httpx.put(storage.presigned_part(key, upload_id, 1, 11, timedelta(minutes=5)), content=b"second take")
    with pytest.raises(PartsChanged):
        storage.complete_multipart(key, upload_id, listed)
    storage.complete_multipart(
        key, upload_id, [(p.part_number, p.etag) for p in storage.list_parts(key, upload_id)]
    )
    assert storage.get_bytes(key) == b"second take"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket/tenants/t/footage/a?partNumber=1&uploadId=abc",
        "https://media.example.com/bucket/tenants/t/footage/%C3%A9t%C3%A9%20b?partNumber=12&uploadId=a%2Bb~c",
        "https://bucket.s3.eu-west-1.amazonaws.com/tenants/t/footage/a?partNumber=3&uploadId=x",
    ],
)
def test_the_signature_with_the_length_is_the_one_the_aws_sdk_makes(url: str) -> None:
    # moto accepts any signature, so the reference is botocore, the AWS SDK's own SigV4 signer.
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    request = AWSRequest(method="PUT", url=url, headers={"content-length": "5242880"})
    S3SigV4QueryAuth(Credentials("AKIDEXAMPLE", secret), "s3", "eu-west-1", expires=900).add_auth(request)
    assert request.url is not None
    ours = resign(request.url, "PUT", secret, {"Content-Length": "5242880"})
    assert parse_qs(urlsplit(ours).query) == parse_qs(urlsplit(request.url).query)
    assert urlsplit(ours)[:3] == urlsplit(request.url)[:3]
