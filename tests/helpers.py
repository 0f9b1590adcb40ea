"""Small helpers for driving the live app as tenants do."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import BaseModel, SecretStr
from sqlalchemy import update

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from core.work.status import WorkStatus
from service.accounts.models import User
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.jobs.models import FineTuneJob
from service.models.service import add_version

PASSWORD = "correct horse battery staple"


@dataclass
class Caller:
    """A signed-up tenant member, calling with an API key."""

    email: str
    tenant_id: str
    user_id: str
    headers: dict[str, str]


async def sign_up(client: AsyncTestClient[Litestar], name: str = "Studio") -> Caller:
    email = f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/v1/auth/signup", json={"email": email, "password": PASSWORD, "tenant_name": name}
    )
    assert response.status_code == 201, response.text
    me = response.json()
    key = await client.post("/v1/api-keys", json={"name": "tests"})
    assert key.status_code == 201, key.text
    # The test client keeps cookies; drop them so each caller is only its API key.
    client.cookies.clear()
    return Caller(email, me["tenant"]["id"], me["user_id"], {"Authorization": f"Bearer {key.json()['key']}"})


async def sign_up_admin(client: AsyncTestClient[Litestar], settings: Settings) -> Caller:
    """A platform admin: signed up like anyone, then marked admin in the database (no API makes one)."""
    admin = await sign_up(client, "Platform")
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(User).where(User.email == admin.email).values(is_platform_admin=True))
    await engine.dispose()
    return admin


async def invite_and_accept(
    client: AsyncTestClient[Litestar], owner: Caller, joiner: Caller, role: str = "member"
) -> None:
    """``joiner`` joins ``owner``'s tenant the one way there is: invited, then accepting."""
    invited = await client.post(
        "/v1/tenant/invitations", json={"email": joiner.email, "role": role}, headers=owner.headers
    )
    assert invited.status_code == 201, invited.text
    token = invited.json()["token"]
    accepted = await client.post("/v1/invitations/accept", json={"token": token}, headers=joiner.headers)
    assert accepted.status_code == 200, accepted.text


async def add_member(client: AsyncTestClient[Litestar], owner: Caller, name: str = "Member") -> Caller:
    """A member (not an owner) of ``owner``'s tenant, calling there with their own API key."""
    joiner = await sign_up(client, name)
    await invite_and_accept(client, owner, joiner)
    login = await client.post(
        "/v1/auth/login", json={"email": joiner.email, "password": PASSWORD, "tenant_id": owner.tenant_id}
    )
    assert login.status_code == 200, login.text
    key = await client.post("/v1/api-keys", json={"name": "member"})
    assert key.status_code == 201, key.text
    client.cookies.clear()
    return Caller(
        joiner.email, owner.tenant_id, joiner.user_id, {"Authorization": f"Bearer {key.json()['key']}"}
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def upload_body(path: Path, content_type: str = "video/mp4", **overrides: Any) -> dict[str, Any]:
    body = {
        "filename": path.name,
        "size": path.stat().st_size,
        "sha256": file_sha256(path),
        "content_type": content_type,
        "rights": {"kind": "owned"},
    }
    body.update(overrides)
    return body


async def upload_file(
    client: AsyncTestClient[Litestar],
    caller: Caller,
    path: Path,
    content_type: str = "video/mp4",
    *,
    allow_duplicate: bool = False,
) -> dict[str, Any]:
    """Create a session, send every part, complete it; returns the asset."""
    extra = {"allow_duplicate": True} if allow_duplicate else {}
    session = await client.post(
        "/v1/uploads", json=upload_body(path, content_type, **extra), headers=caller.headers
    )
    assert session.status_code == 201, session.text
    upload = session.json()
    data = path.read_bytes()
    for number in range(1, upload["part_count"] + 1):
        chunk = data[(number - 1) * upload["part_size"] : number * upload["part_size"]]
        part = await client.put(
            f"/v1/uploads/{upload['id']}/parts/{number}", content=chunk, headers=caller.headers
        )
        assert part.status_code == 200, part.text
    done = await client.post(
        f"/v1/uploads/{upload['id']}/complete", json=extra or None, headers=caller.headers
    )
    assert done.status_code == 201, done.text
    return dict(done.json())


# A fine-tune of the tiny base small enough for 2 CPU cores: seconds, not minutes.
TINY_HYPERPARAMETERS: dict[str, Any] = {
    "steps": 4,
    "learning_rate": 1e-2,
    "rank": 4,
    "alpha": 8.0,
    "height": 32,
    "width": 32,
    "frames": 5,
    "checkpoint_every": 2,
}


async def trainable_dataset(
    client: AsyncTestClient[Litestar], caller: Caller, clip: Path, name: str | None = None
) -> tuple[str, int]:
    """A dataset whose first version holds ``clip``: (dataset id, version number)."""
    # Tests build several datasets (and models) from one clip: each gets its own asset.
    asset = await upload_file(client, caller, clip, allow_duplicate=True)
    created = await client.post(
        "/v1/datasets", json={"name": name or uuid.uuid4().hex[:12]}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    dataset_id = created.json()["id"]
    version = await client.post(
        f"/v1/datasets/{dataset_id}/versions",
        json={"trigger_word": "sks", "items": [{"asset_id": asset["id"], "caption": "rain on glass"}]},
        headers=caller.headers,
    )
    assert version.status_code == 201, version.text
    return dataset_id, int(version.json()["number"])


def trainable_dataset_over_http(http: httpx.Client, clip: Path, email: str) -> str:
    """Against a live server: sign up as ``email`` (the client keeps the session cookie), upload
    ``clip`` and make a dataset whose version 1 holds it; the dataset's id."""
    http.post("/v1/auth/signup", json={"email": email, "password": PASSWORD, "tenant_name": email})
    upload = http.post("/v1/uploads", json=upload_body(clip)).json()
    http.put(f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes())
    asset = http.post(f"/v1/uploads/{upload['id']}/complete").json()
    dataset = http.post("/v1/datasets", json={"name": "Rain"}).json()
    http.post(
        f"/v1/datasets/{dataset['id']}/versions",
        json={"trigger_word": "sks", "items": [{"asset_id": asset["id"], "caption": "rain"}]},
    )
    return str(dataset["id"])


def fine_tune_body(dataset_id: str, number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "dataset_version": number,
        "base": "tiny",
        "preset": "quick",
        "hyperparameters": TINY_HYPERPARAMETERS,
        **overrides,
    }


async def make_model_version(
    client: AsyncTestClient[Litestar],
    caller: Caller,
    settings: Settings,
    storage: ObjectStorage,
    clip: Path,
    *,
    model_id: str | None = None,
    adapter: bytes | None = None,
) -> dict[str, Any]:
    """A model version as a succeeded fine-tune leaves it, without training: the fine-tune is
    made over the API, then marked succeeded with its version added in the database.

    Adds to ``model_id`` when given, else makes a new model. ``adapter`` is stored as the
    version's adapter file. Returns the version as ``GET /v1/models/{id}/versions/{n}`` shows it.
    """
    dataset_id, number = await trainable_dataset(client, caller, clip)
    body = fine_tune_body(dataset_id, number, **({"model_id": model_id} if model_id else {}))
    created = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)
    assert created.status_code == 201, created.text
    weights = adapter or b""
    engine = create_engine(settings.database_url)
    async with session_factory(engine)() as session:
        mark_unscoped(session)
        job = await session.get_one(FineTuneJob, uuid.UUID(created.json()["id"]))
        job.status, job.finished_at = WorkStatus.SUCCEEDED, datetime.now(UTC)
        version = await add_version(
            session,
            job,
            adapter_sha256=hashlib.sha256(weights).hexdigest(),
            adapter_bytes=len(weights),
            final_loss=None,
        )
        await session.commit()
    await engine.dispose()
    if adapter is not None:
        storage.put_bytes(TenantKeys(uuid.UUID(caller.tenant_id)).adapter_file(version.id), adapter)
    shown = await client.get(
        f"/v1/models/{version.model_id}/versions/{version.number}", headers=caller.headers
    )
    assert shown.status_code == 200, shown.text
    return dict(shown.json())


def settings_env(settings: Settings) -> dict[str, str]:
    """``RUSHES_*`` variables that make a child process read the same settings."""
    env: dict[str, str] = {"RUSHES_DATA_DIR": str(settings.data_dir)}
    for group in type(settings).model_fields:
        values = getattr(settings, group)
        if not isinstance(values, BaseModel):
            continue
        for name in type(values).model_fields:
            value = getattr(values, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            text = str(value) if isinstance(value, str | Path) else json.dumps(value, default=str)
            env[f"RUSHES_{group.upper()}__{name.upper()}"] = text
    return env


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of a whole Server-Sent Events body, each with its ``id`` and ``event`` name."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":")
        )
        if fields.get("data"):  # as EventSource does, events with no data are not dispatched
            events.append({**json.loads(fields["data"]), "id": int(fields["id"]), "event": fields["event"]})
    return events
