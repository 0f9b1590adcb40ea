"""The export: a manifest of everything the tenant holds, whose every file downloads."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage
from tests.integration.test_tenant_deletion import populate

Client = AsyncTestClient[Litestar]


def _downloads(manifest: dict[str, Any]) -> dict[str, bytes | None]:
    """Every download path in the manifest → the bytes it must hold (None: not known here)."""
    paths: dict[str, bytes | None] = {}
    for asset in manifest["assets"]:
        paths[asset["content"]] = None
        paths[asset["poster"]] = None
    for fine_tune in manifest["fine_tunes"]:
        for sample in fine_tune["samples"]:
            paths[sample["content"]] = b"clip"
    for model in manifest["models"]:
        for version in model["versions"]:
            paths[version["adapter"]] = b"weights"
            paths[version["training_record"]] = b"{}"
            paths[version["model_card"]] = None
    for generation in manifest["generations"]:
        for path in (generation["outputs"] or {}).values():
            paths[path] = b"output"
    return paths


@pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)
async def test_the_export_lists_everything_and_every_file_downloads(
    client: Client, settings: Settings, storage: ObjectStorage, storage_kind: str, tmp_path: Path
) -> None:
    owner, member, version = await populate(client, settings, storage, tmp_path, "Exporting")
    other, _, _ = await populate(client, settings, storage, tmp_path, "Other")

    assert (await client.get("/v1/tenant/export", headers=member.headers)).status_code == 403
    answer = await client.get("/v1/tenant/export", headers=owner.headers)
    assert answer.status_code == 200, answer.text
    manifest = answer.json()

    assert manifest["tenant"]["id"] == owner.tenant_id
    assert {m["email"] for m in manifest["members"]} == {owner.email, member.email}
    assert {i["email"] for i in manifest["invitations"]} == {member.email, "someone@example.com"}
    assert len(manifest["api_keys"]) == 2  # the owner's and the member's
    (asset,) = manifest["assets"]
    assert asset["asset"]["rights"] == "owned" and len(asset["asset"]["sha256"]) == 64
    assert len(manifest["datasets"]) == 2
    trained = next(d for d in manifest["datasets"] if d["versions"])
    assert trained["versions"][0]["items"] == [{"asset_id": asset["asset"]["id"], "caption": "rain on glass"}]
    (fine_tune,) = manifest["fine_tunes"]
    assert fine_tune["fine_tune"]["model_version"] == version["number"]
    assert [(s["step"], s["index"]) for s in fine_tune["samples"]] == [(2, 0)]
    (model,) = manifest["models"]
    assert [v["version"]["id"] for v in model["versions"]] == [version["id"]]
    (generation,) = manifest["generations"]
    assert generation["status"] == "succeeded"
    assert len(manifest["webhooks"]) == 1
    assert manifest["usage_ledger"], "the generation's charge"
    assert isinstance(manifest["audit_log"], list)
    assert other.tenant_id not in answer.text

    for path, expected in _downloads(manifest).items():
        got = await client.get(path, headers=owner.headers, follow_redirects=False)
        if got.status_code == 307:  # S3: a signed URL, fetched without the API key
            assert storage_kind == "s3"
            async with httpx.AsyncClient() as direct:
                got = await direct.get(got.headers["location"])
        assert got.status_code == 200, (path, got.text)
        if expected is not None:
            assert got.content == expected, path
        if path == asset["content"]:
            assert hashlib.sha256(got.content).hexdigest() == asset["asset"]["sha256"]
        # Another tenant's owner cannot fetch them.
        assert (await client.get(path, headers=other.headers)).status_code == 404
