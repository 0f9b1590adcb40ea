"""``assets.upload``: parallel parts, per-part digests on request, and resuming after an interruption."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
import rushes

from tests.helpers import file_sha256
from tests.sdk.conftest import PART, LiveServer, run
from tests.sdk.faults import AsyncFaultTransport, Faults, FaultTransport, is_part, part_number


def _digest(content: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"


def test_upload_sends_every_part_once_and_leaves_hashing_to_completion(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    faults = Faults(match=is_part)
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        asset = client.assets.upload(noise_png, rights="owned", progress=False, concurrency=3)
        assert (asset.sha256, asset.size) == (file_sha256(noise_png), noise_png.stat().st_size)
        assert (asset.kind, asset.content_type, asset.rights, asset.filename) == (
            "still",
            "image/png",
            "owned",
            "plate.png",
        )
        parts = faults.matching()
        assert sorted(part_number(p) for p in parts) == list(range(1, 9))
        # The server checks the whole file's sha256 at completion: a per-part digest would only
        # have it hash every byte twice.
        assert not [p for p in parts if "content-digest" in p.headers]
        assert all(len(p.content) == PART for p in parts if part_number(p) < 8)
        assert client.assets.get(asset.id) == asset
        assert list(client.uploads.list()) == []  # nothing left open


def test_a_part_sent_with_its_digest_is_checked_against_it(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    faults = Faults(match=is_part)
    data = noise_png.read_bytes()
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        upload = client.uploads.create(
            filename="plate.png",
            size=len(data),
            sha256=file_sha256(noise_png),
            content_type="image/png",
            rights="owned",
        )
        part = client.uploads.put_part(upload.id, 1, data[:PART])
        assert faults.matching()[0].headers["content-digest"] == _digest(data[:PART])
        assert part.sha256 == hashlib.sha256(data[:PART]).hexdigest()
        unchecked = client.uploads.put_part(upload.id, 2, data[PART : 2 * PART], digest=False)
        assert unchecked.sha256 is None
        client.uploads.abort(upload.id)


def test_licensed_rights(client: rushes.Client, noise_png: Path) -> None:
    asset = client.assets.upload(
        noise_png, rights={"kind": "licensed", "licence_ref": "LIC-42"}, progress=False, concurrency=1
    )
    assert (asset.rights, asset.licence_ref) == ("licensed", "LIC-42")


def test_an_interrupted_upload_resumes_without_resending_parts(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    # The connection dies after three parts went through.
    broken = Faults(match=is_part, break_after=3)
    with rushes.Client(
        api_key=api_key, base_url=live_server.url, transport=FaultTransport(broken), max_retries=0
    ) as client:
        with pytest.raises(rushes.APIConnectionError):
            client.assets.upload(noise_png, rights="owned", progress=False, concurrency=2)
        (session,) = client.uploads.list(sha256=file_sha256(noise_png))
        done = {p.part_number for p in session.parts}
        assert len(done) == 3 and session.status == "open"

    watched = Faults(match=is_part)
    with rushes.Client(
        api_key=api_key, base_url=live_server.url, transport=FaultTransport(watched)
    ) as client:
        asset = client.assets.upload(noise_png, rights="owned", progress=False)
        assert sorted(part_number(p) for p in watched.matching()) == sorted(set(range(1, 9)) - done)
        assert not [r for r in watched.sent if r.method == "POST" and r.url.path == "/v1/uploads"]
        assert asset.sha256 == file_sha256(noise_png)
        assert client.uploads.get(session.id).asset_id == asset.id


async def test_async_upload_interrupted_and_resumed(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    broken = Faults(match=is_part, break_after=5)
    async with rushes.AsyncClient(
        api_key=api_key, base_url=live_server.url, transport=AsyncFaultTransport(broken), max_retries=0
    ) as client:
        with pytest.raises(rushes.APIConnectionError):
            await client.assets.upload(noise_png, rights="owned", progress=False, concurrency=4)
        # Parts already on the wire when the client gave up may still land on the server:
        # wait until what it holds stops changing before noting which parts are done.
        done: set[int] = set()
        for _ in range(50):
            (session,) = [u async for u in client.uploads.list(sha256=file_sha256(noise_png))]
            now = {p.part_number for p in session.parts}
            if now == done:
                break
            done = now
            await asyncio.sleep(0.2)
        assert 1 <= len(done) < 8

    watched = Faults(match=is_part)
    async with rushes.AsyncClient(
        api_key=api_key, base_url=live_server.url, transport=AsyncFaultTransport(watched)
    ) as client:
        asset = await client.assets.upload(noise_png, rights="owned", progress=False)
        assert sorted(part_number(p) for p in watched.matching()) == sorted(set(range(1, 9)) - done)
        assert [a.id async for a in client.assets.list()] == [asset.id]


def test_a_part_failing_transiently_is_retried(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    faults = Faults(match=lambda r: is_part(r) and part_number(r) == 4, status=503, fail_times=1)
    with rushes.Client(api_key=api_key, base_url=live_server.url, transport=FaultTransport(faults)) as client:
        asset = client.assets.upload(noise_png, rights="owned", progress=False)
    assert asset.sha256 == file_sha256(noise_png)
    assert len(faults.matching()) == 2


def test_upload_refuses_what_it_cannot_send(client: rushes.Client, tmp_path: Path) -> None:
    with pytest.raises(rushes.RushesError, match="not a file"):
        client.assets.upload(tmp_path / "missing.mp4", rights="owned", progress=False)
    notes = tmp_path / "notes.txt"
    notes.write_text("not footage")
    with pytest.raises(rushes.RushesError, match="media type"):
        client.assets.upload(notes, rights="owned", progress=False)
    with pytest.raises(rushes.RushesError, match="licence_ref"):
        client.assets.upload(notes, rights="licensed", content_type="video/mp4", progress=False)  # type: ignore[arg-type]
    # The server's own validation, field by field, when the SDK's check is bypassed.
    with pytest.raises(rushes.BadRequestError, match="licence_ref"):
        client.uploads.create(
            filename="a.mp4", size=1, sha256="0" * 64, content_type="video/mp4", rights={"kind": "licensed"}
        )


def test_a_file_already_in_the_library_is_not_sent_again(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    watched = Faults(match=is_part)
    with rushes.Client(
        api_key=api_key, base_url=live_server.url, transport=FaultTransport(watched)
    ) as client:
        asset = client.assets.upload(noise_png, rights="owned", progress=False)
        sent = len(watched.matching())

        with pytest.raises(rushes.DuplicateAssetError) as refused:
            client.assets.upload(noise_png, rights="owned", progress=False)
        assert isinstance(refused.value, rushes.ConflictError)
        assert refused.value.existing_asset_id == asset.id
        assert len(watched.matching()) == sent  # refused before any part went
        assert [a.id for a in client.assets.list(sha256=asset.sha256)] == [asset.id]
        assert list(client.uploads.list()) == []

        again = client.assets.upload(noise_png, rights="owned", progress=False, allow_duplicate=True)
        assert again.id != asset.id and again.sha256 == asset.sha256
        assert sorted(a.id for a in client.assets.list(sha256=asset.sha256)) == sorted([asset.id, again.id])


def test_a_duplicate_completed_meanwhile_is_refused_at_completion(
    client: rushes.Client, noise_png: Path
) -> None:
    # Two sessions for one file, as two machines uploading the same clip would open.
    data = noise_png.read_bytes()
    sessions = [
        client.uploads.create(
            filename=name,
            size=len(data),
            sha256=file_sha256(noise_png),
            content_type="image/png",
            rights="owned",
        )
        for name in ("a.png", "b.png")
    ]
    for session in sessions:
        for number in range(1, session.part_count + 1):
            client.uploads.put_part(session.id, number, data[(number - 1) * PART : number * PART])
    asset = client.uploads.complete(sessions[0].id)
    with pytest.raises(rushes.DuplicateAssetError) as refused:
        client.uploads.complete(sessions[1].id)
    assert refused.value.existing_asset_id == asset.id
    assert [a.id for a in client.assets.list(sha256=asset.sha256)] == [asset.id]
    with pytest.raises(rushes.NotFoundError):
        client.uploads.get(sessions[1].id)


async def test_async_upload_of_a_duplicate_names_the_existing_asset(
    live_server: LiveServer, api_key: str, noise_png: Path
) -> None:
    async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as client:
        asset = await client.assets.upload(noise_png, rights="owned", progress=False)
        with pytest.raises(rushes.DuplicateAssetError) as refused:
            await client.assets.upload(noise_png, rights="owned", progress=False)
        assert refused.value.existing_asset_id == asset.id
        again = await client.assets.upload(noise_png, rights="owned", progress=False, allow_duplicate=True)
        assert [a.id async for a in client.assets.list(sha256=asset.sha256)] == [again.id, asset.id]


def test_the_command_line_names_the_asset_a_duplicate_repeats(
    cli_env: Path, api_key: str, noise_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upload = ("upload", str(noise_png), "--rights", "owned", "--api-key", api_key)
    code, out, err = run(capsys, *upload)
    assert code == 0, err
    asset_id = out.strip()
    code, out, err = run(capsys, *upload)
    assert (code, out) == (1, "")
    assert err == (
        f"rushes: error: plate.png is already in your library as asset {asset_id}; "
        "--allow-duplicate uploads it again.\n"
    )
    code, out, err = run(capsys, *upload, "--allow-duplicate")
    assert code == 0, err
    assert out.strip() not in ("", asset_id)
