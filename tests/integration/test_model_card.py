"""``GET …/versions/{n}/card``: the card written with a version, or, for a version made
before cards were written, one rendered from its row and record; only in its own tenant.
(The worker writing the card beside the adapter is checked end to end in test_server_cli.)"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from tests.helpers import make_model_version, sign_up
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]


async def test_a_version_without_a_written_card_gets_one_rendered_from_its_record(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Card Studio")
    version = await make_model_version(client, owner, settings, storage, make_clip(tmp_path / "a.mp4"))
    path = f"/v1/models/{version['model_id']}/versions/{version['number']}/card"
    keys = TenantKeys(uuid.UUID(owner.tenant_id))

    missing = await client.get(path, headers=owner.headers)
    # No training record (a real version always has one): the same answer as its record's.
    assert missing.status_code == 409, missing.text
    assert missing.headers["content-type"] == "application/problem+json"

    record = {"assets": [{"asset_id": "a1", "sha256": "ef" * 32, "rights": {"rights": "owned"}}]}
    storage.put_bytes(keys.training_record(uuid.UUID(version["id"])), json.dumps(record).encode())
    rendered = await client.get(path, headers=owner.headers)
    assert rendered.status_code == 200, rendered.text
    assert rendered.headers["content-type"] == "text/markdown; charset=utf-8"
    assert rendered.headers["content-disposition"] == "attachment; filename*=UTF-8''README.md"
    assert rendered.text.startswith('---\nbase_model: "tiny"\n') and f"`{'ef' * 32}` | owned" in rendered.text

    # Once written, the written card is what is served.
    storage.put_bytes(keys.model_card(uuid.UUID(version["id"])), b"---\nbase_model: tiny\n---\n# Written\n")
    assert (await client.get(path, headers=owner.headers)).text.endswith("# Written\n")

    other = await sign_up(client, "Other Studio")
    refused = await client.get(path, headers=other.headers)
    assert refused.status_code == 404
    assert "Written" not in refused.text
