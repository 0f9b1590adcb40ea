"""The audit log: each kind of action recorded with its actor, address and request id, refused
sign-ins too; a refused action, or one whose transaction rolls back, leaves no entry; owners
read their own tenant's log and nothing of another's, members none, admins every one, filtered
and paged; and the log's pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from core.storage import ObjectStorage
from service.audit.context import Actor, acting, authenticated
from service.audit.models import AuditEntry
from service.datasets.models import Dataset
from service.db.engine import create_engine, session_factory
from service.db.tenancy import set_tenant
from tests.helpers import (
    PASSWORD,
    Caller,
    add_member,
    fine_tune_body,
    make_model_version,
    sign_up,
    sign_up_admin,
    upload_body,
)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
# What the test client's requests come from (Litestar's test transport).
CLIENT_ADDRESS = "testclient"
WEBHOOK = {"url": "https://93.184.215.14/hook", "enabled": False}


async def call(
    client: Client, caller: Caller | None, method: str, path: str, **kwargs: Any
) -> tuple[str, httpx.Response]:
    """One request with a request id of its own; the id and the answer."""
    request_id = f"audit-{uuid.uuid4().hex[:16]}"
    headers = {**(caller.headers if caller else {}), "X-Request-ID": request_id}
    response = await client.request(method, path, headers=headers, **kwargs)
    return request_id, response


async def log(client: Client, caller: Caller, path: str = "/v1/audit", **params: Any) -> list[dict[str, Any]]:
    response = await client.get(path, params={"limit": 200, **params}, headers=caller.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def found(entries: list[dict[str, Any]], request_id: str, action: str) -> dict[str, Any]:
    """The one entry of ``action`` that request made."""
    matching = [e for e in entries if e["request_id"] == request_id and e["action"] == action]
    assert len(matching) == 1, (action, [(e["action"], e["request_id"]) for e in entries])
    return matching[0]


async def upload(client: Client, caller: Caller, clip: Path) -> tuple[str, dict[str, Any]]:
    """Uploads ``clip``; the request id of the request that completed it, and the asset."""
    created = await client.post("/v1/uploads", json=upload_body(clip), headers=caller.headers)
    assert created.status_code == 201, created.text
    session = created.json()
    data = clip.read_bytes()
    for number in range(1, session["part_count"] + 1):
        chunk = data[(number - 1) * session["part_size"] : number * session["part_size"]]
        part = await client.put(
            f"/v1/uploads/{session['id']}/parts/{number}", content=chunk, headers=caller.headers
        )
        assert part.status_code == 200, part.text
    request_id, done = await call(client, caller, "POST", f"/v1/uploads/{session['id']}/complete")
    assert done.status_code == 201, done.text
    return request_id, dict(done.json())


async def test_each_kind_of_action_is_recorded_with_its_actor_address_and_request(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Audited")
    admin = await sign_up_admin(client, settings)
    (key,) = (await client.get("/v1/api-keys", headers=owner.headers)).json()["items"]
    # (action, request id, object id) of everything done below, to find in the log after.
    done: list[tuple[str, str, str | None]] = []

    async def act(
        action: str, method: str, path: str, caller: Caller = owner, **kwargs: Any
    ) -> dict[str, Any]:
        request_id, response = await call(client, caller, method, path, **kwargs)
        assert response.status_code < 300, (action, response.status_code, response.text)
        body = response.json() if response.content and "json" in response.headers["content-type"] else {}
        done.append((action, request_id, body.get("id") if isinstance(body, dict) else None))
        return body if isinstance(body, dict) else {}

    def about(object_id: str) -> None:
        """The last action is about ``object_id`` (its answer did not name it)."""
        action, request_id, _ = done[-1]
        done[-1] = (action, request_id, object_id)

    spare = await act("api_key.created", "POST", "/v1/api-keys", json={"name": "spare"})
    await act("api_key.revoked", "DELETE", f"/v1/api-keys/{spare['id']}")
    about(spare["id"])

    request_id, asset = await upload(client, owner, make_clip(tmp_path / "a.mp4"))
    done.append(("asset.created", request_id, asset["id"]))
    _, doomed = await upload(client, owner, make_clip(tmp_path / "b.mp4", pattern_seed=1))
    await act("asset.deleted", "DELETE", f"/v1/assets/{doomed['id']}")
    about(doomed["id"])

    dataset = await act("dataset.created", "POST", "/v1/datasets", json={"name": "Rain"})
    await act("dataset.updated", "PATCH", f"/v1/datasets/{dataset['id']}", json={"description": "wet"})
    about(dataset["id"])
    items = {"trigger_word": "sks", "items": [{"asset_id": asset["id"], "caption": "rain"}]}
    versions = f"/v1/datasets/{dataset['id']}/versions"
    await act("dataset_version.created", "POST", versions, json=items)
    # Replacing flushes the old items' removal before the new ones: still one entry.
    await act("dataset_version.updated", "PUT", f"{versions}/1", json={**items, "trigger_word": "xyz"})
    await act("dataset_version.created", "POST", versions, json=items)
    version_2 = done[-1][2]
    await act("dataset_version.deleted", "DELETE", f"{versions}/2")
    about(str(version_2))
    other = await act("dataset.created", "POST", "/v1/datasets", json={"name": "Gone"})
    await act("dataset.deleted", "DELETE", f"/v1/datasets/{other['id']}")
    about(other["id"])

    job = await act(
        "fine_tune.created",
        "POST",
        "/v1/fine-tunes",
        json=fine_tune_body(dataset["id"], 1, model_name="Rainy"),
    )
    model_id = job["model_id"]
    done.append(("model.created", done[-1][1], model_id))
    await act("fine_tune.cancelled", "POST", f"/v1/fine-tunes/{job['id']}/cancel")
    await act("fine_tune.resumed", "POST", f"/v1/fine-tunes/{job['id']}/resume")
    await act("model.updated", "PATCH", f"/v1/models/{model_id}", json={"description": "rain"})
    await act(
        "model.guardrails_set", "PUT", f"/v1/models/{model_id}/guardrails", json={"blocked_terms": ["gore"]}
    )
    about(model_id)

    version = await make_model_version(
        client, owner, settings, storage, make_clip(tmp_path / "c.mp4", pattern_seed=2), adapter=b"weights"
    )
    await act(
        "model_version.adapter_downloaded",
        "GET",
        f"/v1/models/{version['model_id']}/versions/{version['number']}/adapter",
    )
    about(version["id"])
    generation = await act(
        "generation.created",
        "POST",
        "/v1/generations",
        json={"model_id": version["model_id"], "prompt": "rain"},
    )
    await act("generation.cancelled", "POST", f"/v1/generations/{generation['id']}/cancel")

    hook = await act("webhook_endpoint.created", "POST", "/v1/webhooks", json=WEBHOOK)
    await act("webhook_endpoint.updated", "PATCH", f"/v1/webhooks/{hook['id']}", json={"description": "d"})
    await act("webhook_endpoint.secret_rotated", "POST", f"/v1/webhooks/{hook['id']}/rotate-secret")
    await act("webhook_endpoint.deleted", "DELETE", f"/v1/webhooks/{hook['id']}")
    about(hook["id"])

    joiner = await sign_up(client, "Joiner")
    invited = await act("invitation.created", "POST", "/v1/tenant/invitations", json={"email": joiner.email})
    await act(
        "member.added", "POST", "/v1/invitations/accept", caller=joiner, json={"token": invited["token"]}
    )
    about(joiner.user_id)
    await act("member.role_set", "PATCH", f"/v1/tenant/members/{joiner.user_id}", json={"role": "owner"})
    about(joiner.user_id)
    await act("member.removed", "DELETE", f"/v1/tenant/members/{joiner.user_id}")
    about(joiner.user_id)
    stale = await act(
        "invitation.created", "POST", "/v1/tenant/invitations", json={"email": "late@example.com"}
    )
    await act("invitation.status_set", "DELETE", f"/v1/tenant/invitations/{stale['id']}")
    about(stale["id"])
    await act("tenant.renamed", "PATCH", "/v1/tenant", json={"name": "Renamed"})

    tenant = f"/v1/admin/tenants/{owner.tenant_id}"
    await act("admin.tenant.status_set", "PATCH", tenant, caller=admin, json={"status": "past_due"})
    about(owner.tenant_id)
    await act("admin.tenant.compute_set", "PUT", f"{tenant}/compute", caller=admin, json={"weight": 2.0})
    about(owner.tenant_id)
    await act(
        "admin.tenant.quotas_set",
        "PATCH",
        f"{tenant}/quotas",
        caller=admin,
        json={"overrides": {"models": 5}},
    )
    about(owner.tenant_id)
    plan = await act("admin.plan.created", "POST", "/v1/admin/plans", caller=admin, json={"name": "Pro"})
    await act(
        "admin.plan.updated",
        "PUT",
        f"/v1/admin/plans/{plan['id']}",
        caller=admin,
        json={"name": "Pro", "models": 5},
    )
    about(plan["id"])
    await act("admin.plan.deleted", "DELETE", f"/v1/admin/plans/{plan['id']}", caller=admin)
    about(plan["id"])

    tenant_log = await log(client, owner)
    platform_log = await log(client, admin, "/v1/admin/audit")
    for action, request_id, object_id in done:
        platform = action.startswith("admin.plan.")
        entry = found(platform_log if platform else tenant_log, request_id, action)
        by = admin if action.startswith("admin.") else joiner if action == "member.added" else owner
        assert entry["actor_user_id"] == by.user_id, action
        assert entry["actor"].startswith(by.email), action
        assert entry["ip"] == CLIENT_ADDRESS
        assert entry["tenant_id"] == (None if platform else owner.tenant_id), action
        if object_id is not None:
            assert entry["object_id"] == object_id, action
    # The owner's key is named, by id and by prefix; what a change set is in the detail.
    revoked = found(tenant_log, done[1][1], "api_key.revoked")
    assert revoked["actor_key_id"] == key["id"]
    assert revoked["actor"] == f"{owner.email} (API key {key['prefix']})"
    assert revoked["detail"] == {"changed": ["revoked_at"]}
    guardrails = next(e for e in tenant_log if e["action"] == "model.guardrails_set")
    assert guardrails["detail"]["guardrails"]["blocked_terms"] == ["gore"]
    status = next(e for e in tenant_log if e["action"] == "admin.tenant.status_set")
    assert status["detail"] == {"changed": ["status"], "status": "past_due"}
    # Sign-up recorded the tenant's creation by its founder; keys are never in the log.
    (created,) = [e for e in tenant_log if e["action"] == "tenant.created"]
    assert created["actor_user_id"] == owner.user_id and created["object_id"] == owner.tenant_id
    assert "rsh_" not in str(tenant_log)


async def test_sign_ins_are_recorded_and_refused_ones_too(client: Client, settings: Settings) -> None:
    owner = await sign_up(client, "Signed")
    admin = await sign_up_admin(client, settings)
    wrong, refused = await call(
        client, None, "POST", "/v1/auth/login", json={"email": owner.email, "password": "not it at all"}
    )
    assert refused.status_code == 401
    unknown, refused = await call(
        client, None, "POST", "/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    assert refused.status_code == 401
    # The page's form signs in through the same function.
    form, page = await call(
        client, None, "POST", "/signin", data={"email": owner.email, "password": "still not it"}
    )
    assert page.status_code == 400
    right, signed_in = await call(
        client, None, "POST", "/v1/auth/login", json={"email": owner.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200
    client.cookies.clear()

    tenant_log = await log(client, owner, action="sign_in.")
    for request_id in (wrong, form):
        failed = found(tenant_log, request_id, "sign_in.failed")
        assert (failed["actor_user_id"], failed["actor"], failed["actor_key_id"]) == (
            owner.user_id,
            owner.email,
            None,
        )
        assert failed["ip"] == CLIENT_ADDRESS and failed["detail"] == {"reason": "wrong email or password"}
        assert failed["object_id"] == owner.user_id
    assert found(tenant_log, right, "sign_in.succeeded")["actor_user_id"] == owner.user_id
    # An unknown email belongs to no tenant: admins see the attempt, with nothing of what was typed.
    assert all(e["request_id"] != unknown for e in tenant_log)
    stranger = found(
        await log(client, admin, "/v1/admin/audit", action="sign_in.failed"), unknown, "sign_in.failed"
    )
    assert (stranger["tenant_id"], stranger["actor_user_id"], stranger["actor"]) == (None, None, None)
    assert "nobody@example.com" not in str(stranger)


async def test_answers_to_invitations_sign_outs_switches_and_side_effects_are_recorded(
    client: Client,
) -> None:
    """Actions made by conditional or bulk updates, which no flush of an object shows."""
    owner = await sign_up(client, "Studio")
    joiner = await sign_up(client, "Elsewhere")
    invite = {"email": joiner.email}
    _, first = await call(client, owner, "POST", "/v1/tenant/invitations", json=invite)
    again, second = await call(client, owner, "POST", "/v1/tenant/invitations", json=invite)
    declined, answer = await call(
        client, joiner, "POST", "/v1/invitations/decline", json={"token": second.json()["token"]}
    )
    assert answer.status_code == 204, answer.text
    _, third = await call(client, owner, "POST", "/v1/tenant/invitations", json=invite)
    accepted, answer = await call(
        client, joiner, "POST", "/v1/invitations/accept", json={"token": third.json()["token"]}
    )
    assert answer.status_code == 200, answer.text

    # A member's keys are revoked when the member is removed: each revocation is recorded.
    member = await add_member(client, owner, "Keyholder")
    removed, answer = await call(client, owner, "DELETE", f"/v1/tenant/members/{member.user_id}")
    assert answer.status_code == 204, answer.text

    # A browser session switches into the tenant, then signs out.
    login = await client.post("/v1/auth/login", json={"email": joiner.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    switched, answer = await call(
        client, None, "POST", "/app/switch-tenant", data={"tenant_id": owner.tenant_id}
    )
    assert answer.status_code in (200, 303), answer.text
    signed_out, answer = await call(client, None, "POST", "/v1/auth/logout")
    assert answer.status_code == 204, answer.text
    client.cookies.clear()

    tenant_log = await log(client, owner)
    replaced = found(tenant_log, again, "invitation.status_set")
    assert replaced["object_id"] == first.json()["id"] and replaced["actor_user_id"] == owner.user_id
    assert replaced["detail"]["status"] == "revoked"
    for request_id, status in ((declined, "declined"), (accepted, "accepted")):
        answered = found(tenant_log, request_id, "invitation.status_set")
        assert answered["actor_user_id"] == joiner.user_id
        assert answered["detail"] == {"changed": ["status"], "role": "member", "status": status}
    assert found(tenant_log, accepted, "member.added")["object_id"] == joiner.user_id
    revoked = found(tenant_log, removed, "api_key.revoked")
    assert revoked["actor_user_id"] == owner.user_id
    entered = found(tenant_log, switched, "sign_in.switched")
    assert entered["actor_user_id"] == joiner.user_id == entered["object_id"]
    left = found(tenant_log, signed_out, "sign_out")
    assert left["actor_user_id"] == joiner.user_id
    # The joiner's own tenant, which the switch left, is not named in the studio's log.
    assert joiner.tenant_id not in str(tenant_log)


async def test_a_refused_action_or_a_rolled_back_one_records_nothing(
    client: Client, settings: Settings
) -> None:
    owner = await sign_up(client, "Careful")
    member = await add_member(client, owner)
    refusals: list[tuple[Caller, str, str, dict[str, Any], int]] = [
        (owner, "DELETE", f"/v1/tenant/members/{owner.user_id}", {}, 409),  # the last owner
        (owner, "POST", "/v1/datasets", {"json": {"name": "Twice"}}, 201),
        (owner, "POST", "/v1/datasets", {"json": {"name": "Twice"}}, 409),
        (member, "POST", "/v1/webhooks", {"json": WEBHOOK}, 403),
        (owner, "PATCH", "/v1/tenant/members/" + str(uuid.uuid4()), {"json": {"role": "owner"}}, 404),
    ]
    refused = []
    for caller, method, path, kwargs, status in refusals:
        request_id, response = await call(client, caller, method, path, **kwargs)
        assert response.status_code == status, response.text
        if status >= 400:
            refused.append(request_id)
    entries = await log(client, owner)
    assert [e["action"] for e in entries if e["request_id"] not in refused].count("dataset.created") == 1
    assert not [e for e in entries if e["request_id"] in refused]

    # An entry is written in the action's own transaction: it goes when that rolls back.
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)

    async def entries_named(session: AsyncSession, request_id: str) -> int:
        return int(await session.scalar(select(func.count()).where(AuditEntry.request_id == request_id)) or 0)

    try:
        for outcome in ("rolled back", "committed"):
            request_id = outcome.replace(" ", "-") + "-1"
            with acting(Actor(ip="192.0.2.7", request_id=request_id)):
                authenticated(uuid.UUID(owner.user_id), None, admin=False)
                async with sessions() as session:
                    set_tenant(session, uuid.UUID(owner.tenant_id))
                    session.add(Dataset(name=outcome))
                    await session.flush()
                    assert await entries_named(session, request_id) == 1
                    await (session.rollback() if outcome == "rolled back" else session.commit())
            async with sessions() as session:
                assert await entries_named(session, request_id) == int(outcome == "committed")
        # Outside a request no one acts: nothing is recorded (workers, the CLI).
        async with sessions() as session:
            set_tenant(session, uuid.UUID(owner.tenant_id))
            unattended = Dataset(name="by a worker")
            session.add(unattended)
            await session.commit()
            assert (
                await session.scalar(select(func.count()).where(AuditEntry.object_id == unattended.id)) == 0
            )
    finally:
        await engine.dispose()


async def test_owners_read_their_tenant_only_and_admins_every_one_filtered(
    client: Client, settings: Settings
) -> None:
    a = await sign_up(client, "Tenant A")
    b = await sign_up(client, "Tenant B")
    member = await add_member(client, a)
    admin = await sign_up_admin(client, settings)
    made = {}
    for caller in (a, b):
        response = await client.post("/v1/datasets", json={"name": "Rain"}, headers=caller.headers)
        made[caller.tenant_id] = response.json()["id"]

    a_log = await log(client, a)
    assert a_log and {e["tenant_id"] for e in a_log} == {a.tenant_id}
    assert made[b.tenant_id] not in str(a_log) and b.user_id not in str(a_log)
    assert made[b.tenant_id] in str(await log(client, b))
    denied = await client.get("/v1/audit", headers=member.headers)
    assert denied.status_code == 403
    # Asking for another tenant's entries by any filter finds none of them.
    assert await log(client, a, object_id=made[b.tenant_id]) == []
    assert (await client.get("/v1/admin/audit", headers=a.headers)).status_code == 403

    every = await log(client, admin, "/v1/admin/audit")
    assert {a.tenant_id, b.tenant_id} <= {e["tenant_id"] for e in every}
    only_b = await log(client, admin, "/v1/admin/audit", tenant_id=b.tenant_id)
    assert only_b and {e["tenant_id"] for e in only_b} == {b.tenant_id}
    datasets = await log(client, admin, "/v1/admin/audit", action="dataset.")
    assert sorted(e["object_id"] for e in datasets) == sorted(made.values())
    by_member = await log(client, admin, "/v1/admin/audit", actor=member.user_id)
    assert by_member and {e["actor_user_id"] for e in by_member} == {member.user_id}
    about = await log(client, admin, "/v1/admin/audit", object_id=made[a.tenant_id])
    assert [e["action"] for e in about] == ["dataset.created"]
    now = datetime.now(UTC)
    assert await log(client, admin, "/v1/admin/audit", since=(now + timedelta(hours=1)).isoformat()) == []
    assert len(await log(client, a, until=(now + timedelta(hours=1)).isoformat())) == len(a_log)
    backwards = await client.get(
        "/v1/audit",
        params={"since": now.isoformat(), "until": (now - timedelta(days=1)).isoformat()},
        headers=a.headers,
    )
    assert backwards.status_code == 422


async def test_the_log_pages_by_cursor_newest_first(client: Client) -> None:
    owner = await sign_up(client, "Paged")
    other = await sign_up(client, "Other")
    for number in range(5):
        made = await client.post("/v1/api-keys", json={"name": f"k{number}"}, headers=owner.headers)
        assert made.status_code == 201
    whole = await log(client, owner, action="api_key.created")
    assert [e["detail"]["name"] for e in whole] == ["k4", "k3", "k2", "k1", "k0", "tests"]
    paged: list[dict[str, Any]] = []
    cursor: dict[str, str] = {}
    while True:
        page = await client.get(
            "/v1/audit", params={"action": "api_key.created", "limit": 2, **cursor}, headers=owner.headers
        )
        assert page.status_code == 200, page.text
        assert page.json()["total"] == 6
        if not (items := page.json()["items"]):
            break
        paged += items
        cursor = {"starting_after": items[-1]["id"]}
    assert paged == whole
    # Another tenant's entry says nothing of where this tenant's page starts.
    (foreign, *_) = await log(client, other)
    refused = await client.get("/v1/audit", params={"starting_after": foreign["id"]}, headers=owner.headers)
    assert refused.status_code == 422


async def test_the_log_pages_for_owners_and_admins(client: Client, settings: Settings) -> None:
    owner = await sign_up(client, "Paged Studio")
    member = await add_member(client, owner)
    admin = await sign_up_admin(client, settings)
    await client.post("/v1/datasets", json={"name": "Shown"}, headers=owner.headers)

    async def browse(caller: Caller, path: str, **params: str) -> httpx.Response:
        client.cookies.clear()
        signed_in = await client.post(
            "/v1/auth/login",
            json={"email": caller.email, "password": PASSWORD, "tenant_id": caller.tenant_id},
        )
        assert signed_in.status_code == 200, signed_in.text
        return await client.get(path, params=params)

    shown = await browse(owner, "/app/audit")
    assert shown.status_code == 200
    assert "dataset.created" in shown.text and "api_key.created" in shown.text and owner.email in shown.text
    assert 'href="/app/audit"' in shown.text  # the owners' navigation links it
    keys_only = await browse(owner, "/app/audit", action="api_key.")
    assert "api_key.created" in keys_only.text and "dataset.created" not in keys_only.text
    assert (await browse(owner, "/app/audit", since="yesterday")).status_code == 400
    assert (await browse(member, "/app/audit")).status_code == 403
    assert (await browse(owner, "/admin/audit")).status_code == 403
    console = await browse(admin, "/admin/audit", tenant=owner.tenant_id)
    assert console.status_code == 200
    assert "dataset.created" in console.text and f"/admin/tenants/{owner.tenant_id}" in console.text
    client.cookies.clear()
