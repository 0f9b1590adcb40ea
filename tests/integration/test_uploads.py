"""Resumable footage upload through the live API, on both storage backends."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.storage import ObjectStorage, TenantKeys
from tests.helpers import Caller, file_sha256, sign_up, upload_body, upload_file
from tests.media_samples import make_clip, make_noise_png, make_still

Client = AsyncTestClient[Litestar]
MiB = 1 << 20


@pytest.fixture(scope="session")
def big_still(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~12 MiB PNG of noise: large enough for three S3-sized (5 MiB) parts."""
    path = tmp_path_factory.mktemp("big") / "plate.png"
    make_noise_png(path, 2048, seed=7)
    assert path.stat().st_size > 10 * MiB
    return path


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_parts_in_any_order_resume_and_complete(
    client: Client, storage: ObjectStorage, big_still: Path
) -> None:
    caller = await sign_up(client)
    created = await client.post(
        "/v1/uploads", json=upload_body(big_still, "image/png"), headers=caller.headers
    )
    assert created.status_code == 201, created.text
    upload = created.json()
    assert upload["part_count"] == 3 and upload["part_size"] == 5 * MiB
    data = big_still.read_bytes()

    def part(n: int) -> bytes:
        return data[(n - 1) * 5 * MiB : n * 5 * MiB]

    url = f"/v1/uploads/{upload['id']}/parts"
    # Part 3 first, then part 1, then part 1 again (a retry): all accepted.
    for number in (3, 1, 1):
        digest = base64.b64encode(hashlib.sha256(part(number)).digest()).decode()
        sent = await client.put(
            f"{url}/{number}",
            content=part(number),
            headers=caller.headers | {"Content-Digest": f"sha-256=:{digest}:"},
        )
        assert sent.status_code == 200, sent.text
        assert sent.json() == {
            "part_number": number,
            "size": len(part(number)),
            "sha256": hashlib.sha256(part(number)).hexdigest(),
        }
    # A client that lost track asks what arrived, then sends only the rest.
    received = (await client.get(url, headers=caller.headers)).json()
    assert [p["part_number"] for p in received] == [1, 3]
    missing = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert missing.status_code == 409
    assert missing.json()["missing_parts"] == [2]
    # Sent with no Content-Digest: nothing to check it against, so it is not hashed until the
    # whole file is, at completion.
    plain = await client.put(f"{url}/2", content=part(2), headers=caller.headers)
    assert plain.status_code == 200 and plain.json()["sha256"] is None

    done = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert done.status_code == 201, done.text
    asset = done.json()
    assert asset["sha256"] == file_sha256(big_still)
    assert asset["size"] == len(data)
    assert asset["kind"] == "still"
    assert asset["media"]["width"] == 2048 and asset["media"]["codec"] == "png"
    assert asset["rights"] == "owned"
    # Completing again is harmless and names the same asset.
    again = await client.post(f"/v1/uploads/{upload['id']}/complete", headers=caller.headers)
    assert again.status_code == 200 and again.json()["id"] == asset["id"]

    keys = TenantKeys(__import__("uuid").UUID(caller.tenant_id))
    assert storage.list_multipart(keys.root) == []
    download = await client.get(f"/v1/assets/{asset['id']}/content", headers=caller.headers)
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == asset["sha256"]
    poster = await client.get(f"/v1/assets/{asset['id']}/poster", headers=caller.headers)
    assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"

    assert (await client.delete(f"/v1/assets/{asset['id']}", headers=caller.headers)).status_code == 204
    assert storage.list_objects(keys.root) == []
    assert (await client.get(f"/v1/assets/{asset['id']}", headers=caller.headers)).status_code == 404


@pytest.mark.parametrize(
    ("name", "codec", "container", "content_type"),
    [
        ("clip.mp4", "h264", "mp4", "video/mp4"),
        ("clip.mov", "prores", "mov", "video/quicktime"),
        ("clip.mxf.mov", "dnxhd", "mov", "video/quicktime"),
        ("clip.mkv", "hevc", "mkv", "video/x-matroska"),
        ("clip.webm", "vp9", "webm", "video/webm"),
        ("clip.av1.mp4", "av1", "mp4", "video/mp4"),
    ],
)
async def test_accepted_codecs_become_assets(
    client: Client, tmp_path: Path, name: str, codec: str, container: str, content_type: str
) -> None:
    caller = await sign_up(client)
    clip = make_clip(tmp_path / name, codec=codec, container=container)  # type: ignore[arg-type]
    asset = await upload_file(client, caller, clip, content_type)
    assert asset["kind"] == "video"
    assert asset["media"]["codec"] == codec
    assert asset["media"]["frame_count"] == 9
    listed = (await client.get("/v1/assets", headers=caller.headers)).json()
    assert [a["id"] for a in listed["items"]] == [asset["id"]]


async def test_the_stored_and_served_type_is_the_probed_one(client: Client, tmp_path: Path) -> None:
    # Declared in capitals, and as the other name of its family (a phone's .mov called mp4):
    # accepted, and stored and served as what the file is.
    caller = await sign_up(client)
    clip = make_clip(tmp_path / "clip.mov", codec="prores", container="mov")
    asset = await upload_file(client, caller, clip, "VIDEO/MP4")
    assert asset["content_type"] == "video/quicktime"
    served = await client.get(f"/v1/assets/{asset['id']}/content", headers=caller.headers)
    assert served.headers["content-type"] == "video/quicktime"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == "attachment; filename*=UTF-8''clip.mov"
    # A broken download resumes where it stopped.
    data = clip.read_bytes()
    rest = await client.get(
        f"/v1/assets/{asset['id']}/content", headers={**caller.headers, "range": f"bytes={len(data) // 2}-"}
    )
    assert rest.status_code == 206
    assert served.content[: len(data) // 2] + rest.content == data


async def test_licensed_footage_keeps_its_licence(client: Client, tmp_path: Path) -> None:
    caller = await sign_up(client)
    still = make_still(tmp_path / "frame.jpg")
    body = upload_body(still, "image/jpeg", rights={"kind": "licensed", "licence_ref": "Artlist #A-1234"})
    created = (await client.post("/v1/uploads", json=body, headers=caller.headers)).json()
    await client.put(
        f"/v1/uploads/{created['id']}/parts/1", content=still.read_bytes(), headers=caller.headers
    )
    asset = (await client.post(f"/v1/uploads/{created['id']}/complete", headers=caller.headers)).json()
    assert (asset["rights"], asset["licence_ref"]) == ("licensed", "Artlist #A-1234")
    assert asset["attested_by"] == caller.user_id


async def test_open_uploads_can_be_found_by_checksum(client: Client, tmp_path: Path) -> None:
    caller: Caller = await sign_up(client)
    clip = make_clip(tmp_path / "a.mp4")
    created = (await client.post("/v1/uploads", json=upload_body(clip), headers=caller.headers)).json()
    found = (
        await client.get("/v1/uploads", params={"sha256": file_sha256(clip)}, headers=caller.headers)
    ).json()
    assert [u["id"] for u in found["items"]] == [created["id"]]
    other = (await client.get("/v1/uploads", params={"sha256": "0" * 64}, headers=caller.headers)).json()
    assert other["items"] == []
