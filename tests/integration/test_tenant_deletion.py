"""Deleting a tenant removes every row and every object of it, and nothing of anyone else's.

Checked from the outside: storage is listed under the tenant's prefix, and every table of the
schema is read whole, each row's tenant column and each foreign key held against the tenant and
the ids of every row it owned before. On SQLite and PostgreSQL, local and S3 storage.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import Table, select

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from core.storage.keys import OUTPUT_MEDIA_TYPES
from service.app import create_app
from service.db.engine import create_engine, session_factory
from service.db.models import metadata
from service.db.tenancy import mark_unscoped
from service.generations.models import Generation
from service.generations.queue import GenerationQueue
from service.tenants.cleanup import clean_lost_outputs, sweep_deleted_tenants
from tests.helpers import (
    PASSWORD,
    Caller,
    add_member,
    make_model_version,
    sign_up,
    sign_up_admin,
    upload_body,
)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]

pytestmark = pytest.mark.parametrize("storage_kind", ["local", "s3"], indirect=True)

# Public address literal: no name lookup; the endpoint is disabled, so nothing is sent to it.
WEBHOOK = {"url": "https://93.184.215.14/hook", "enabled": False}
# Tables a tenant with everything has rows in: the scans below must find these before deleting.
POPULATED = {
    "api_key",
    "asset",
    "browser_session",
    "dataset",
    "dataset_item",
    "dataset_version",
    "fine_tune_job",
    "frame_hash",
    "generation",
    "generation_event",
    "idempotency_record",
    "invitation",
    "job_event",
    "membership",
    "model",
    "model_version",
    "upload_part",
    "upload_session",
    "usage_ledger",
    "webhook_endpoint",
}


def _names_tenant(table: Table, column: str) -> bool:
    return column == "tenant_id" or any(
        fk.column.table.name == "tenant" for fk in table.c[column].foreign_keys
    )


async def _rows_of(
    settings: Settings, tenant_id: UUID, owned: set[UUID] | None = None
) -> dict[str, set[Any]]:
    """Every row, in every table, that names the tenant or points at a row in ``owned``: table → ids."""
    found: dict[str, set[Any]] = {}
    engine = create_engine(settings.database_url)
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in (await conn.execute(select(table))).mappings():
                naming = (table.name == "tenant" and row["id"] == tenant_id) or any(
                    (_names_tenant(table, name) and value == tenant_id)
                    or (owned and table.c[name].foreign_keys and value in owned)
                    for name, value in row.items()
                )
                if naming:
                    found.setdefault(table.name, set()).add(row.get("id", tuple(row.values())))
    await engine.dispose()
    return found


async def _render(settings: Settings, storage: ObjectStorage, generation_id: str, *, lose: bool) -> None:
    """Claim the generation and write its outputs; then finish it, or (``lose``) lose the lease
    with a cancel asked, so the worker's finish is refused and its files stay behind."""
    engine = create_engine(settings.database_url)
    queue = GenerationQueue(session_factory(engine), settings.generations)
    (claimed,) = await queue.claim_batch("deletion", ["tiny"], 1)
    assert str(claimed.id) == generation_id
    for name in OUTPUT_MEDIA_TYPES:
        storage.put_bytes(TenantKeys(claimed.tenant_id).output(claimed.id, name), b"output")
    if lose:
        async with session_factory(engine)() as session:
            mark_unscoped(session)
            row = await session.get_one(Generation, claimed.id)
            row.cancel_requested = True
            await session.commit()
        later = datetime.now(UTC) + timedelta(seconds=settings.generations.lease_seconds + 1)
        assert await queue.claim_batch("another", ["tiny"], 1, now=later) == []
        assert not await queue.finish_succeeded("deletion", claimed.id, output_bytes=18, gpu_seconds=1.0)
    else:
        assert await queue.finish_succeeded("deletion", claimed.id, output_bytes=18, gpu_seconds=1.0)
    await engine.dispose()


async def _generation(client: Client, caller: Caller, model_id: str) -> str:
    created = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": "rain"}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def populate(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path, name: str
) -> tuple[Caller, Caller, dict[str, Any]]:
    """A tenant with one of everything: (owner, member, the model version)."""
    owner = await sign_up(client, name)
    member = await add_member(client, owner, f"{name} member")
    clip = make_clip(tmp_path / f"{uuid.uuid4().hex}.mp4")
    version = await make_model_version(client, owner, settings, storage, clip, adapter=b"weights")
    keys = TenantKeys(UUID(owner.tenant_id))
    storage.put_bytes(keys.training_record(UUID(version["id"])), b"{}")
    jobs = (await client.get("/v1/fine-tunes", headers=owner.headers)).json()["items"]
    storage.put_bytes(keys.sample(UUID(jobs[0]["id"]), 2, 0), b"clip")
    storage.put_bytes(keys.checkpoints(UUID(jobs[0]["id"])) + "step-2/state.pt", b"state")
    await _render(settings, storage, await _generation(client, owner, version["model_id"]), lose=False)
    assert (await client.post("/v1/webhooks", json=WEBHOOK, headers=owner.headers)).status_code == 201
    invited = await client.post(
        "/v1/tenant/invitations", json={"email": "someone@example.com"}, headers=owner.headers
    )
    assert invited.status_code == 201
    # An upload left half-sent: a pending multipart upload in storage.
    pending = make_clip(tmp_path / f"{uuid.uuid4().hex}.mp4", pattern_seed=3)
    upload = (await client.post("/v1/uploads", json=upload_body(pending), headers=owner.headers)).json()
    await client.put(
        f"/v1/uploads/{upload['id']}/parts/1", content=pending.read_bytes(), headers=owner.headers
    )
    made = await client.post(
        "/v1/datasets", json={"name": "kept once"}, headers={**owner.headers, "Idempotency-Key": "k1"}
    )
    assert made.status_code == 201
    # A signed-in browser of the tenant.
    login = await client.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
    assert login.status_code == 200
    client.cookies.clear()
    return owner, member, version


async def test_deleting_a_tenant_leaves_nothing_of_it(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner, member, version = await populate(client, settings, storage, tmp_path, "Doomed")
    other, _, other_version = await populate(client, settings, storage, tmp_path, "Bystander")
    await _generation(client, owner, version["model_id"])  # queued: work the deletion must end
    tenant = UUID(owner.tenant_id)
    keys = TenantKeys(tenant)
    before = await _rows_of(settings, tenant)
    assert before.keys() >= POPULATED
    owned = {i for ids in before.values() for i in ids if isinstance(i, UUID)}
    assert storage.list_objects(keys.root) and storage.list_multipart(keys.root)
    other_rows = await _rows_of(settings, UUID(other.tenant_id))
    other_objects = storage.list_objects(TenantKeys(UUID(other.tenant_id)).root)

    login = await client.post("/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
    session_cookie = dict(client.cookies)
    assert login.status_code == 200
    deleted = await client.request("DELETE", "/v1/tenant", json={"confirm": "Doomed"})
    assert deleted.status_code == 204, deleted.text
    client.cookies.clear()

    assert await _rows_of(settings, tenant, owned) == {}
    assert storage.list_objects(keys.root) == []
    assert storage.list_multipart(keys.root) == []
    assert keys.root not in storage.list_folders("tenants/")
    # Its sessions and keys stopped at once; its members keep their accounts and other tenants.
    assert (await client.get("/v1/me", headers=owner.headers)).status_code == 401
    client.cookies.update(session_cookie)
    assert (await client.get("/v1/me")).status_code == 401
    client.cookies.clear()
    me = await client.get("/v1/me", headers=member.headers)
    assert me.status_code == 401  # the member's key was made in the deleted tenant
    relog = await client.post("/v1/auth/login", json={"email": member.email, "password": PASSWORD})
    assert relog.status_code == 200
    assert tenant not in {UUID(m["tenant"]["id"]) for m in relog.json()["memberships"]}
    client.cookies.clear()
    # The other tenant is untouched, rows and objects alike, and still works.
    assert await _rows_of(settings, UUID(other.tenant_id)) == other_rows
    assert storage.list_objects(TenantKeys(UUID(other.tenant_id)).root) == other_objects
    adapter = f"/v1/models/{other_version['model_id']}/versions/{other_version['number']}/adapter"
    assert (await client.get(adapter, headers=other.headers)).content == b"weights"


async def test_who_may_delete_a_tenant(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Careful")
    member = await add_member(client, owner)
    admin = await sign_up_admin(client, settings)
    stranger = await sign_up(client, "Stranger")
    storage.put_bytes(TenantKeys(UUID(owner.tenant_id)).root + "footage/x", b"x")

    assert (
        await client.request("DELETE", "/v1/tenant", json={"confirm": "Careful"}, headers=member.headers)
    ).status_code == 403
    for wrong in ("careful", "Careful.", "Stranger", ""):
        refused = await client.request("DELETE", "/v1/tenant", json={"confirm": wrong}, headers=owner.headers)
        assert refused.status_code == 422, (wrong, refused.text)
    assert (await client.request("DELETE", "/v1/tenant", headers=owner.headers)).status_code == 400
    for caller in (owner, member, stranger):
        refused = await client.delete(f"/v1/admin/tenants/{owner.tenant_id}", headers=caller.headers)
        assert refused.status_code == 403
    assert (await client.get("/v1/me", headers=owner.headers)).status_code == 200
    assert storage.list_objects(TenantKeys(UUID(owner.tenant_id)).root)

    assert (
        await client.delete(f"/v1/admin/tenants/{uuid.uuid4()}", headers=admin.headers)
    ).status_code == 404
    assert (
        await client.delete(f"/v1/admin/tenants/{owner.tenant_id}", headers=admin.headers)
    ).status_code == 204
    assert (
        await client.get(f"/v1/admin/tenants/{owner.tenant_id}", headers=admin.headers)
    ).status_code == 404
    assert await _rows_of(settings, UUID(owner.tenant_id)) == {}
    assert storage.list_objects(TenantKeys(UUID(owner.tenant_id)).root) == []
    assert (await client.get("/v1/me", headers=owner.headers)).status_code == 401
    assert (await client.get("/v1/me", headers=stranger.headers)).status_code == 200
    # The deletion itself stays on the platform's log, with no tenant, naming who did it.
    logged = await client.get("/v1/admin/audit", params={"object_id": owner.tenant_id}, headers=admin.headers)
    (entry,) = logged.json()["items"]
    assert (entry["action"], entry["tenant_id"], entry["actor_user_id"]) == (
        "admin.tenant.deleted",
        None,
        admin.user_id,
    )
    assert entry["detail"] == {"name": "Careful"}


async def test_objects_left_by_a_failed_or_late_deletion_are_swept(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Flaky")
    bystander = await sign_up(client, "Bystander")
    keys, kept = TenantKeys(UUID(owner.tenant_id)), TenantKeys(UUID(bystander.tenant_id))
    storage.put_bytes(keys.footage(uuid.uuid4()), b"footage")
    storage.create_multipart(keys.footage(uuid.uuid4()))
    storage.put_bytes(kept.footage(uuid.uuid4()), b"kept")
    kept_upload = storage.create_multipart(kept.footage(uuid.uuid4()))

    class DownStorage(type(storage)):  # type: ignore[misc]
        """The real backend, down for deleting, as it might be right after the rows commit."""

        def delete_prefix(self, prefix: str) -> int:
            raise OSError("storage unavailable")

    down = DownStorage.__new__(DownStorage)
    down.__dict__.update(storage.__dict__)
    async with AsyncTestClient(create_app(settings, down)) as flaky:
        deleted = await flaky.request(
            "DELETE", "/v1/tenant", json={"confirm": "Flaky"}, headers=owner.headers
        )
    assert deleted.status_code == 204
    assert await _rows_of(settings, UUID(owner.tenant_id)) == {}
    assert storage.list_objects(keys.root)
    # A worker that had not noticed yet writes one more file.
    storage.put_bytes(keys.outputs(uuid.uuid4()) + "video.mp4", b"late")

    # A prefix with no tenant row but no deletion on record either (a database restored from
    # an older backup) is no deleted tenant's: the sweep leaves it alone.
    unknown = TenantKeys(uuid.uuid4())
    storage.put_bytes(unknown.footage(uuid.uuid4()), b"not ours to judge")

    engine = create_engine(settings.database_url)
    assert await sweep_deleted_tenants(session_factory(engine), storage) == 1
    assert await sweep_deleted_tenants(session_factory(engine), storage) == 0
    # A day on, a deletion whose objects were found gone is no longer looked at.
    storage.put_bytes(keys.outputs(uuid.uuid4()) + "video.mp4", b"much later")
    later = datetime.now(UTC) + timedelta(days=2)
    assert await sweep_deleted_tenants(session_factory(engine), storage, now=later) == 0
    await engine.dispose()
    assert [o.key.rsplit("/", 1)[-1] for o in storage.list_objects(keys.root)] == ["video.mp4"]
    assert storage.list_multipart(keys.root) == []
    assert len(storage.list_objects(kept.root)) == 1
    assert [p.upload_id for p in storage.list_multipart(kept.root)] == [kept_upload]
    assert len(storage.list_objects(unknown.root)) == 1


async def test_outputs_of_lost_leases_are_cleaned(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Renders")
    version = await make_model_version(client, owner, settings, storage, make_clip(tmp_path / "a.mp4"))
    succeeded = await _generation(client, owner, version["model_id"])
    await _render(settings, storage, succeeded, lose=False)
    lost = await _generation(client, owner, version["model_id"])
    await _render(settings, storage, lost, lose=True)
    shown = (await client.get(f"/v1/generations/{lost}", headers=owner.headers)).json()
    assert shown["status"] == "cancelled"
    keys = TenantKeys(UUID(owner.tenant_id))
    stray = keys.outputs(uuid.uuid4()) + "video.mp4"  # outputs of a generation with no row
    storage.put_bytes(stray, b"stray")
    finished = datetime.fromisoformat(shown["finished_at"])

    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    # Within the grace a late writer may still be at it: only the row-less outputs go.
    assert await clean_lost_outputs(sessions, storage, now=finished + timedelta(minutes=1)) == 1
    assert storage.stat(stray) is None
    assert len(storage.list_objects(keys.outputs(UUID(lost)))) == len(OUTPUT_MEDIA_TYPES)
    assert await clean_lost_outputs(sessions, storage, now=finished + timedelta(hours=2)) == 1
    await engine.dispose()
    assert storage.list_objects(keys.outputs(UUID(lost))) == []
    assert len(storage.list_objects(keys.outputs(UUID(succeeded)))) == len(OUTPUT_MEDIA_TYPES)
    video = await client.get(
        f"/v1/generations/{succeeded}/outputs/video.mp4", headers=owner.headers, follow_redirects=False
    )
    assert video.status_code in (200, 307)  # the file, or on S3 a signed URL to it
