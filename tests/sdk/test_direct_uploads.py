"""``assets.upload`` on S3: parts go straight to storage through signed URLs, a real ``ingest``
worker checks the file, and the upload follows those checks to the asset or their failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import rushes
from rushes import _direct_upload

from tests.helpers import file_sha256, settings_env
from tests.media_samples import make_noise_png
from tests.sdk.conftest import LiveServer, run
from tests.sdk.faults import AsyncFaultTransport, Faults, FaultTransport, is_part

MiB = 1 << 20
REPO = Path(__file__).parents[2]


class IngestWorker:
    """``python -m worker --roles ingest`` against the live server's database and storage."""

    def __init__(self, server: LiveServer, log: Path) -> None:
        self.env = {
            **os.environ,
            **settings_env(server.settings),
            "RUSHES_LOG__LEVEL": "WARNING",
            "RUSHES_UPLOADS__VERIFY_POLL_SECONDS": "0.2",
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.process is None:
            with self.log.open("a") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "worker", "--roles", "ingest"],
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def ingest(s3_live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestWorker]:
    worker = IngestWorker(s3_live_server, tmp_path_factory.mktemp("ingest") / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def plate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~6.4 MiB PNG of noise: two S3-sized parts (5 MiB and the rest)."""
    path = tmp_path_factory.mktemp("direct") / "plate.png"
    make_noise_png(path, 1500, seed=5)
    assert 5 * MiB < path.stat().st_size <= 10 * MiB
    return path


def is_signing(request: httpx.Request) -> bool:
    return request.url.path.endswith("/part-urls")


def signed_numbers(api: Faults) -> list[list[int]]:
    """The part numbers of each signing request, in order."""
    return [json.loads(r.content)["part_numbers"] for r in api.sent if is_signing(r)]


@pytest.fixture
def storage(monkeypatch: pytest.MonkeyPatch) -> Faults:
    """What the SDK sends to storage, through its own storage clients, with faults to inject."""
    faults = Faults(match=lambda r: r.method == "PUT")
    sync_client, async_client = _direct_upload.storage_client, _direct_upload.async_storage_client

    def recorded(timeout: httpx.Timeout) -> httpx.Client:
        client = sync_client(timeout)
        client._transport = FaultTransport(faults)  # the SDK's own client, its transport watched
        return client

    def recorded_async(timeout: httpx.Timeout) -> httpx.AsyncClient:
        client = async_client(timeout)
        client._transport = AsyncFaultTransport(faults)
        return client

    monkeypatch.setattr(_direct_upload, "storage_client", recorded)
    monkeypatch.setattr(_direct_upload, "async_storage_client", recorded_async)
    return faults


def download(server: LiveServer, api_key: str, asset_id: str) -> bytes:
    """The asset's bytes, as storage holds them (the API redirects to a signed URL)."""
    with httpx.Client(base_url=server.url, follow_redirects=True) as http:
        got = http.get(f"/v1/assets/{asset_id}/content", headers={"Authorization": f"Bearer {api_key}"})
        assert got.status_code == 200
        return got.content


def upload_id(api: Faults) -> str:
    (first, *_) = [r for r in api.sent if is_signing(r)]
    return first.url.path.split("/")[3]


def test_parts_go_straight_to_storage_and_the_checked_asset_holds_the_file(
    s3_live_server: LiveServer,
    ingest: IngestWorker,
    storage: Faults,
    plate: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = s3_live_server.new_api_key()
    api = Faults(match=is_part)
    with rushes.Client(api_key=key, base_url=s3_live_server.url, transport=FaultTransport(api)) as client:
        asset = client.assets.upload(plate, rights="owned", concurrency=2)
        assert api.matching() == [], "no part went through the API"
        # One signing request for both parts; which of the two threads asks first varies.
        assert [sorted(batch) for batch in signed_numbers(api)] == [[1, 2]]
        puts = storage.matching()
        assert sorted(len(p.content) for p in puts) == [plate.stat().st_size - 5 * MiB, 5 * MiB]
        assert not [p for p in puts if {"authorization", "cookie"} & set(p.headers)]
        session = client.uploads.get(upload_id(api))
        assert (session.transfer, session.status, session.asset_id) == ("direct", "completed", asset.id)
        assert (asset.sha256, asset.size, asset.kind) == (file_sha256(plate), plate.stat().st_size, "still")
        assert client.assets.get(asset.id) == asset
    assert download(s3_live_server, key, asset.id) == plate.read_bytes()
    # The bar said that the server was checking the file, once every byte was sent.
    assert "checking" in capsys.readouterr().err


def test_a_resumed_direct_upload_sends_only_the_missing_parts(
    s3_live_server: LiveServer, ingest: IngestWorker, storage: Faults, plate: Path
) -> None:
    key = s3_live_server.new_api_key()
    storage.break_after = 1  # storage takes part 1, then the connection dies
    with rushes.Client(api_key=key, base_url=s3_live_server.url, max_retries=0) as client:
        with pytest.raises(rushes.APIConnectionError, match="storage"):
            client.assets.upload(plate, rights="owned", progress=False, concurrency=1)
        (session,) = client.uploads.list(sha256=file_sha256(plate))
        assert session.transfer == "direct"
        # Storage lists what it holds; the API never read those bytes.
        assert [(p.part_number, p.size, p.sha256) for p in session.parts] == [(1, 5 * MiB, None)]

    storage.break_after, storage.sent = None, []
    api = Faults()
    with rushes.Client(api_key=key, base_url=s3_live_server.url, transport=FaultTransport(api)) as client:
        asset = client.assets.upload(plate, rights="owned", progress=False)
        assert signed_numbers(api) == [[2]]
        assert [len(p.content) for p in storage.matching()] == [plate.stat().st_size - 5 * MiB]
        assert not [r for r in api.sent if r.method == "POST" and r.url.path == "/v1/uploads"]
        assert client.uploads.get(session.id).asset_id == asset.id
    assert download(s3_live_server, key, asset.id) == plate.read_bytes()


def test_an_expired_url_is_signed_again(
    s3_live_server: LiveServer, ingest: IngestWorker, storage: Faults, plate: Path
) -> None:
    api = Faults()
    storage.status, storage.fail_times = 403, 1  # the first URL used has run out
    with rushes.Client(
        api_key=s3_live_server.new_api_key(), base_url=s3_live_server.url, transport=FaultTransport(api)
    ) as client:
        asset = client.assets.upload(plate, rights="owned", progress=False, concurrency=1)
    # URLs signed together run out together: the next batch signs both parts again.
    assert signed_numbers(api) == [[1, 2], [1, 2]]
    assert len(storage.matching()) == 3
    assert asset.sha256 == file_sha256(plate)


def test_storage_in_trouble_is_retried_with_the_same_url(
    s3_live_server: LiveServer, ingest: IngestWorker, storage: Faults, plate: Path
) -> None:
    key = s3_live_server.new_api_key()
    api = Faults()
    storage.status, storage.fail_times = 503, 2  # twice: within the client's max_retries
    with rushes.Client(api_key=key, base_url=s3_live_server.url, transport=FaultTransport(api)) as client:
        asset = client.assets.upload(plate, rights="owned", progress=False, concurrency=1)
    assert signed_numbers(api) == [[1, 2]]
    assert len(storage.matching()) == 4
    assert download(s3_live_server, key, asset.id) == plate.read_bytes()


def test_a_url_refused_again_when_fresh_is_an_error(
    s3_live_server: LiveServer, storage: Faults, plate: Path
) -> None:
    storage.status, storage.fail_times = 403, 2
    with (
        rushes.Client(api_key=s3_live_server.new_api_key(), base_url=s3_live_server.url) as client,
        pytest.raises(rushes.PermissionDeniedError, match=r"Storage at 127\.0\.0\.1:"),
    ):
        client.assets.upload(plate, rights="owned", progress=False, concurrency=1)


def changes_on_create(path: Path) -> Callable[[httpx.Request], None]:
    """A hook that alters the file, keeping its size, once it was hashed and its session asked for."""

    def hook(request: httpx.Request) -> None:
        if request.method == "POST" and request.url.path == "/v1/uploads":
            data = bytearray(path.read_bytes())
            data[6 * MiB] ^= 0xFF
            path.write_bytes(bytes(data))

    return hook


def test_a_file_the_checks_refuse_raises_what_the_api_would(
    s3_live_server: LiveServer, ingest: IngestWorker, plate: Path, tmp_path: Path
) -> None:
    changing = tmp_path / "changing.png"
    changing.write_bytes(plate.read_bytes())
    with (
        httpx.Client(event_hooks={"request": [changes_on_create(changing)]}) as http,
        rushes.Client(
            api_key=s3_live_server.new_api_key(), base_url=s3_live_server.url, http_client=http
        ) as client,
    ):
        with pytest.raises(rushes.UnprocessableEntityError, match="sha256 does not match") as refused:
            client.assets.upload(changing, rights="owned", progress=False)
        assert refused.value.status_code == 422
        assert str(refused.value.type).endswith("/invalid")
        assert list(client.assets.list()) == []


def test_a_duplicate_found_by_the_checks_names_the_asset(
    s3_live_server: LiveServer, ingest: IngestWorker, plate: Path
) -> None:
    # Another machine's upload of the same file is whole in storage, waiting for its checks
    # (no worker runs yet), when this one starts: neither knows of the other until checked.
    ingest.stop()
    try:
        refused_as_duplicate(s3_live_server, ingest, plate)
    finally:
        ingest.start()


def refused_as_duplicate(s3_live_server: LiveServer, ingest: IngestWorker, plate: Path) -> None:
    key = s3_live_server.new_api_key()
    with rushes.Client(api_key=key, base_url=s3_live_server.url) as other:
        first = other.uploads.create(
            filename="first.png",
            size=plate.stat().st_size,
            sha256=file_sha256(plate),
            content_type="image/png",
            rights="owned",
            direct=True,
        )
        data = plate.read_bytes()
        for part in other.uploads.part_urls(first.id, [1, 2]).parts:
            start = (part.part_number - 1) * first.part_size
            assert httpx.put(part.url, content=data[start : start + part.size]).status_code == 200
        waiting = other.uploads.complete(first.id)
        assert isinstance(waiting, rushes.types.Upload) and waiting.status == "verifying"

    def start_checks(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/complete"):
            assert response.status_code == 202
            ingest.start()  # checks the older upload first

    with (
        httpx.Client(event_hooks={"response": [start_checks]}) as http,
        rushes.Client(api_key=key, base_url=s3_live_server.url, http_client=http) as client,
    ):
        with pytest.raises(rushes.DuplicateAssetError) as refused:
            client.assets.upload(plate, rights="owned", progress=False)
        existing = client.uploads.get(first.id).asset_id
        assert existing is not None and refused.value.existing_asset_id == existing
        assert [a.id for a in client.assets.list()] == [existing]


def test_checks_that_outlast_the_timeout(
    s3_live_server: LiveServer, ingest: IngestWorker, plate: Path
) -> None:
    ingest.stop()
    try:
        with rushes.Client(api_key=s3_live_server.new_api_key(), base_url=s3_live_server.url) as client:
            with pytest.raises(rushes.UploadCheckTimeout) as waited:
                client.assets.upload(plate, rights="owned", progress=False, check_timeout=1.0)
            assert client.uploads.get(waited.value.upload_id).status == "verifying"
    finally:
        ingest.start()


def test_without_direct_parts_go_through_the_api(s3_live_server: LiveServer, plate: Path) -> None:
    api = Faults(match=is_part)
    with rushes.Client(
        api_key=s3_live_server.new_api_key(), base_url=s3_live_server.url, transport=FaultTransport(api)
    ) as client:
        asset = client.assets.upload(plate, rights="owned", progress=False, direct=False)
    assert len(api.matching()) == 2 and not [r for r in api.sent if is_signing(r)]
    assert asset.sha256 == file_sha256(plate)


async def test_async_upload_goes_direct(
    s3_live_server: LiveServer, ingest: IngestWorker, storage: Faults, plate: Path
) -> None:
    key = s3_live_server.new_api_key()
    api = Faults(match=is_part)
    async with rushes.AsyncClient(
        api_key=key, base_url=s3_live_server.url, transport=AsyncFaultTransport(api)
    ) as client:
        asset = await client.assets.upload(plate, rights="owned", progress=False)
        assert api.matching() == [] and [sorted(b) for b in signed_numbers(api)] == [[1, 2]]
        assert len(storage.matching()) == 2
        assert (await client.uploads.get(upload_id(api))).asset_id == asset.id
    assert download(s3_live_server, key, asset.id) == plate.read_bytes()


def test_the_command_line_goes_direct_unless_told_otherwise(
    s3_live_server: LiveServer,
    ingest: IngestWorker,
    storage: Faults,
    plate: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("RUSHES_API_KEY", raising=False)
    monkeypatch.setenv("RUSHES_BASE_URL", s3_live_server.url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    upload = ("upload", str(plate), "--rights", "owned", "--api-key", s3_live_server.new_api_key())
    code, direct, err = run(capsys, *upload)
    assert code == 0, err
    assert len(storage.matching()) == 2
    code, through_api, err = run(capsys, *upload, "--allow-duplicate", "--through-api")
    assert code == 0, err
    assert len(storage.matching()) == 2, "no part went to storage this time"
    assert direct.strip() != through_api.strip()
