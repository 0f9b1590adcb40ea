"""Every operation in the OpenAPI document, for every kind of caller, → the expected outcome.

Run against the live app with real objects owned by tenant A. A new route without a row
here fails ``test_every_operation_has_a_row``, so no route ships without a decision.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from core.storage.keys import OUTPUT_MEDIA_TYPES
from core.work.status import WorkStatus
from service.accounts.models import User
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped, set_tenant
from service.generations.queue import GenerationQueue
from service.jobs.models import FineTuneJob
from service.models.service import add_version
from service.webhooks.models import WebhookDelivery
from tests.helpers import (
    PASSWORD,
    Caller,
    fine_tune_body,
    invite_and_accept,
    sign_up,
    upload_body,
    upload_file,
)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
ROLES = ("anonymous", "other_tenant", "member", "owner", "admin")
OK = "ok"
# Webhook URLs must point outside the network, and a public address literal needs no name
# lookup. The endpoints are disabled, so nothing is ever sent to it.
WEBHOOK = {"url": "https://93.184.215.14/hook", "enabled": False}


def outcomes(anonymous: Any, other_tenant: Any, member: Any, owner: Any, admin: Any) -> dict[str, Any]:
    return dict(zip(ROLES, (anonymous, other_tenant, member, owner, admin), strict=True))


PUBLIC = outcomes(OK, OK, OK, OK, OK)
# A collection of the caller's own tenant: every signed-in caller works on their own rows.
MEMBER_COLLECTION = outcomes(401, OK, OK, OK, OK)
OWNER_COLLECTION = outcomes(401, OK, 403, OK, OK)
# An object of tenant A: other tenants (admins included) do not learn it exists.
MEMBER_OBJECT = outcomes(401, 404, OK, OK, 404)
OWNER_OBJECT = outcomes(401, 404, 403, OK, 404)
ADMIN_ONLY = outcomes(401, 403, 403, 403, OK)


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None


@dataclass
class World:
    client: Client
    tmp: Path
    callers: dict[str, Caller]
    owner: Caller
    clip: Path
    asset_id: str
    upload_id: str
    dataset_id: str
    job_id: str = ""
    model_id: str = ""
    job_version: int = 0  # a version jobs train on (and so freeze), apart from the editable one
    webhook_id: str = ""
    delivery_id: str = ""
    generation_id: str = ""
    plan_id: str = ""
    a_ids: list[str] = field(default_factory=list)
    assets_made: int = 0

    async def fresh_asset(self) -> str:
        # A different file each time (seed 0 is the world's clip): the same bytes again are a duplicate.
        self.assets_made += 1
        clip = make_clip(self.tmp / f"{uuid.uuid4().hex}.mp4", pattern_seed=self.assets_made)
        asset = await upload_file(self.client, self.owner, clip)
        return str(asset["id"])

    async def fresh_upload(self, send_part: bool = True) -> str:
        created = await self.client.post(
            "/v1/uploads", json=upload_body(self.clip, allow_duplicate=True), headers=self.owner.headers
        )
        upload_id = str(created.json()["id"])
        if send_part:
            await self.client.put(
                f"/v1/uploads/{upload_id}/parts/1", content=self.clip.read_bytes(), headers=self.owner.headers
            )
        return upload_id

    async def fresh_dataset(self) -> str:
        created = await self.client.post(
            "/v1/datasets", json={"name": uuid.uuid4().hex}, headers=self.owner.headers
        )
        return str(created.json()["id"])

    async def fresh_version(self) -> int:
        body = {"items": [{"asset_id": self.asset_id}]}
        created = await self.client.post(
            f"/v1/datasets/{self.dataset_id}/versions", json=body, headers=self.owner.headers
        )
        return int(created.json()["number"])

    async def fresh_webhook(self) -> str:
        created = await self.client.post("/v1/webhooks", json=WEBHOOK, headers=self.owner.headers)
        return str(created.json()["id"])

    async def fresh_member(self) -> str:
        caller = await sign_up(self.client, "Joiner")
        await invite_and_accept(self.client, self.owner, caller)
        return caller.user_id

    async def fresh_invitation(self, email: str | None = None, field: str = "id") -> str:
        body = {"email": email or f"{uuid.uuid4().hex}@example.com"}
        created = await self.client.post("/v1/tenant/invitations", json=body, headers=self.owner.headers)
        return str(created.json()[field])

    async def invitation_for_other(self) -> str:
        """The link's token of an open invitation to tenant A for tenant B's owner, who is not
        (or no longer) in A."""
        other = self.callers["other_tenant"]
        await self.client.delete(f"/v1/tenant/members/{other.user_id}", headers=self.owner.headers)
        return await self.fresh_invitation(other.email, field="token")

    async def fresh_job(self, *, cancel: bool = False) -> dict[str, Any]:
        body = fine_tune_body(self.dataset_id, self.job_version, model_name=uuid.uuid4().hex)
        created = await self.client.post("/v1/fine-tunes", json=body, headers=self.owner.headers)
        job = dict(created.json())
        if cancel:
            await self.client.post(f"/v1/fine-tunes/{job['id']}/cancel", headers=self.owner.headers)
        return job

    async def fresh_generation(self) -> str:
        body = {"model_id": self.model_id, "prompt": "rain"}
        created = await self.client.post("/v1/generations", json=body, headers=self.owner.headers)
        return str(created.json()["id"])

    async def fresh_plan(self) -> str:
        admin = self.callers["admin"]
        created = await self.client.post("/v1/admin/plans", json=_plan(), headers=admin.headers)
        return str(created.json()["id"])

    async def fresh_key(self) -> str:
        created = await self.client.post("/v1/api-keys", json={"name": "spare"}, headers=self.owner.headers)
        return str(created.json()["id"])


Builder = Callable[[World], Awaitable[Call]]


def fixed(method: str, path: str, **kwargs: Any) -> Builder:
    async def build(world: World) -> Call:
        return Call(method, path.format(w=world), **kwargs)

    return build


async def _signup(world: World) -> Call:
    return Call(
        "POST",
        "/v1/auth/signup",
        json={"email": f"{uuid.uuid4().hex}@example.com", "password": PASSWORD, "tenant_name": "N"},
    )


async def _login(world: World) -> Call:
    return Call("POST", "/v1/auth/login", json={"email": world.owner.email, "password": PASSWORD})


async def _revoke_invitation(world: World) -> Call:
    return Call("DELETE", f"/v1/tenant/invitations/{await world.fresh_invitation()}")


async def _accept_invitation(world: World) -> Call:
    return Call("POST", "/v1/invitations/accept", json={"token": await world.invitation_for_other()})


async def _decline_invitation(world: World) -> Call:
    return Call("POST", "/v1/invitations/decline", json={"token": await world.invitation_for_other()})


async def _remove_member(world: World) -> Call:
    return Call("DELETE", f"/v1/tenant/members/{await world.fresh_member()}")


async def _update_member(world: World) -> Call:
    return Call("PATCH", f"/v1/tenant/members/{await world.fresh_member()}", json={"role": "owner"})


async def _revoke_key(world: World) -> Call:
    return Call("DELETE", f"/v1/api-keys/{await world.fresh_key()}")


async def _complete(world: World) -> Call:
    # The world's clip is already an asset: this completion stores it again on purpose.
    return Call("POST", f"/v1/uploads/{await world.fresh_upload()}/complete", json={"allow_duplicate": True})


async def _abort(world: World) -> Call:
    return Call("DELETE", f"/v1/uploads/{await world.fresh_upload(send_part=False)}")


async def _part(world: World) -> Call:
    return Call("PUT", f"/v1/uploads/{world.upload_id}/parts/1", content=world.clip.read_bytes())


async def _create_upload(world: World) -> Call:
    return Call("POST", "/v1/uploads", json=upload_body(world.clip, allow_duplicate=True))


async def _delete_asset(world: World) -> Call:
    return Call("DELETE", f"/v1/assets/{await world.fresh_asset()}")


async def _delete_dataset(world: World) -> Call:
    return Call("DELETE", f"/v1/datasets/{await world.fresh_dataset()}")


async def _create_dataset(world: World) -> Call:
    return Call("POST", "/v1/datasets", json={"name": uuid.uuid4().hex})


async def _delete_version(world: World) -> Call:
    return Call("DELETE", f"/v1/datasets/{world.dataset_id}/versions/{await world.fresh_version()}")


async def _cancel_job(world: World) -> Call:
    return Call("POST", f"/v1/fine-tunes/{(await world.fresh_job())['id']}/cancel")


async def _resume_job(world: World) -> Call:
    return Call("POST", f"/v1/fine-tunes/{(await world.fresh_job(cancel=True))['id']}/resume")


async def _create_job(world: World) -> Call:
    return Call(
        "POST", "/v1/fine-tunes", json=fine_tune_body(world.dataset_id, 1, model_name=uuid.uuid4().hex)
    )


async def _delete_model(world: World) -> Call:
    return Call("DELETE", f"/v1/models/{(await world.fresh_job(cancel=True))['model_id']}")


_VERSION = "/v1/models/{w.model_id}/versions/1"


async def _create_generation(world: World) -> Call:
    return Call("POST", "/v1/generations", json={"model_id": world.model_id, "prompt": "rain"})


async def _cancel_generation(world: World) -> Call:
    return Call("POST", f"/v1/generations/{await world.fresh_generation()}/cancel")


_GENERATION = "/v1/generations/{w.generation_id}"


def _plan() -> dict[str, Any]:
    return {"name": uuid.uuid4().hex, "gpu_seconds_per_month": 3600}


async def _create_plan(world: World) -> Call:
    return Call("POST", "/v1/admin/plans", json=_plan())


async def _delete_plan(world: World) -> Call:
    return Call("DELETE", f"/v1/admin/plans/{await world.fresh_plan()}")


_PLAN = "/v1/admin/plans/{w.plan_id}"
_QUOTAS = "/v1/admin/tenants/{w.owner.tenant_id}/quotas"


async def _admin_delete_tenant(world: World) -> Call:
    return Call("DELETE", f"/v1/admin/tenants/{(await sign_up(world.client, 'Doomed')).tenant_id}")


async def _delete_webhook(world: World) -> Call:
    return Call("DELETE", f"/v1/webhooks/{await world.fresh_webhook()}")


MATRIX: dict[str, tuple[dict[str, Any], Builder]] = {
    "health": (PUBLIC, fixed("GET", "/healthz")),
    "ready": (PUBLIC, fixed("GET", "/readyz")),
    "SchemaHandler": (PUBLIC, fixed("GET", "/schema")),
    "SchemaSwaggerHandler": (PUBLIC, fixed("GET", "/schema/swagger")),
    "SchemaOauth2RedirectHtmlRenderOauth2Redirect": (PUBLIC, fixed("GET", "/schema/oauth2-redirect.html")),
    "SchemaOpenapiJsonHandler": (PUBLIC, fixed("GET", "/schema/openapi.json")),
    "SchemaPathHandleSchemaPathNotFound": (
        outcomes(404, 404, 404, 404, 404),
        fixed("GET", "/schema/nothing-here"),
    ),
    "signUp": (PUBLIC, _signup),
    "logIn": (PUBLIC, _login),
    "logOut": (MEMBER_COLLECTION, fixed("POST", "/v1/auth/logout")),
    "getMe": (MEMBER_COLLECTION, fixed("GET", "/v1/me")),
    "getTenant": (MEMBER_COLLECTION, fixed("GET", "/v1/tenant")),
    "updateTenant": (OWNER_COLLECTION, fixed("PATCH", "/v1/tenant", json={"name": "Renamed"})),
    # Deleting needs the tenant's name typed; a wrong one keeps the world (test_tenant_deletion.py deletes).
    "deleteTenant": (
        outcomes(401, 422, 403, 422, 422),
        fixed("DELETE", "/v1/tenant", json={"confirm": "not its name"}),
    ),
    "exportTenant": (OWNER_COLLECTION, fixed("GET", "/v1/tenant/export")),
    "listMembers": (MEMBER_COLLECTION, fixed("GET", "/v1/tenant/members")),
    # Gone: members join by invitation. Owners are told so; the rest are refused first.
    "addMember": (
        outcomes(401, 410, 403, 410, 410),
        fixed("POST", "/v1/tenant/members", json={"email": "newcomer@example.com"}),
    ),
    "createInvitation": (
        OWNER_COLLECTION,
        fixed("POST", "/v1/tenant/invitations", json={"email": "invitee@example.com"}),
    ),
    "listInvitations": (OWNER_COLLECTION, fixed("GET", "/v1/tenant/invitations")),
    "revokeInvitation": (OWNER_OBJECT, _revoke_invitation),
    # Only the invitee (here tenant B's owner) answers an invitation, with its link's token;
    # to everyone else holding the token, tenant A's owner included, it does not exist.
    "acceptInvitation": (outcomes(401, OK, 404, 404, 404), _accept_invitation),
    "declineInvitation": (outcomes(401, OK, 404, 404, 404), _decline_invitation),
    "updateMember": (OWNER_OBJECT, _update_member),
    "removeMember": (OWNER_OBJECT, _remove_member),
    "listApiKeys": (MEMBER_COLLECTION, fixed("GET", "/v1/api-keys")),
    "createApiKey": (MEMBER_COLLECTION, fixed("POST", "/v1/api-keys", json={"name": "k"})),
    # A member may revoke their own keys, not the owner's.
    "revokeApiKey": (OWNER_OBJECT, _revoke_key),
    "createUpload": (MEMBER_COLLECTION, _create_upload),
    "listUploads": (MEMBER_COLLECTION, fixed("GET", "/v1/uploads")),
    "getUpload": (MEMBER_OBJECT, fixed("GET", "/v1/uploads/{w.upload_id}")),
    "listUploadParts": (MEMBER_OBJECT, fixed("GET", "/v1/uploads/{w.upload_id}/parts")),
    "uploadPart": (MEMBER_OBJECT, _part),
    # The matrix runs on the local backend, which signs no URLs: a caller who may use the
    # upload is told so (409), the rest learn nothing (404). tests/integration/test_direct_uploads.py
    # signs parts on S3.
    "signUploadParts": (
        outcomes(401, 404, 409, 409, 404),
        fixed("POST", "/v1/uploads/{w.upload_id}/part-urls", json={"part_numbers": [1]}),
    ),
    "completeUpload": (MEMBER_OBJECT, _complete),
    "abortUpload": (MEMBER_OBJECT, _abort),
    "listAssets": (MEMBER_COLLECTION, fixed("GET", "/v1/assets")),
    "getAsset": (MEMBER_OBJECT, fixed("GET", "/v1/assets/{w.asset_id}")),
    "downloadAsset": (MEMBER_OBJECT, fixed("GET", "/v1/assets/{w.asset_id}/content")),
    "getAssetPoster": (MEMBER_OBJECT, fixed("GET", "/v1/assets/{w.asset_id}/poster")),
    "deleteAsset": (MEMBER_OBJECT, _delete_asset),
    "createDataset": (MEMBER_COLLECTION, _create_dataset),
    "listDatasets": (MEMBER_COLLECTION, fixed("GET", "/v1/datasets")),
    "getDataset": (MEMBER_OBJECT, fixed("GET", "/v1/datasets/{w.dataset_id}")),
    "updateDataset": (
        MEMBER_OBJECT,
        fixed("PATCH", "/v1/datasets/{w.dataset_id}", json={"description": "d"}),
    ),
    "deleteDataset": (MEMBER_OBJECT, _delete_dataset),
    "createDatasetVersion": (
        MEMBER_OBJECT,
        fixed("POST", "/v1/datasets/{w.dataset_id}/versions", json=None),
    ),
    "listDatasetVersions": (MEMBER_OBJECT, fixed("GET", "/v1/datasets/{w.dataset_id}/versions")),
    "getDatasetVersion": (MEMBER_OBJECT, fixed("GET", "/v1/datasets/{w.dataset_id}/versions/1")),
    "replaceDatasetVersion": (
        MEMBER_OBJECT,
        fixed("PUT", "/v1/datasets/{w.dataset_id}/versions/1", json=None),
    ),
    "deleteDatasetVersion": (MEMBER_OBJECT, _delete_version),
    "listBases": (MEMBER_COLLECTION, fixed("GET", "/v1/bases")),
    "createFineTune": (MEMBER_OBJECT, _create_job),
    "listFineTunes": (MEMBER_COLLECTION, fixed("GET", "/v1/fine-tunes")),
    "getFineTune": (MEMBER_OBJECT, fixed("GET", "/v1/fine-tunes/{w.job_id}")),
    "cancelFineTune": (MEMBER_OBJECT, _cancel_job),
    "resumeFineTune": (MEMBER_OBJECT, _resume_job),
    "listFineTuneSamples": (MEMBER_OBJECT, fixed("GET", "/v1/fine-tunes/{w.job_id}/samples")),
    "downloadFineTuneSample": (MEMBER_OBJECT, fixed("GET", "/v1/fine-tunes/{w.job_id}/samples/2/0")),
    "listFineTuneEvents": (MEMBER_OBJECT, fixed("GET", "/v1/fine-tunes/{w.job_id}/events")),
    # The world's job is final, so its stream sends every event and ends.
    "streamFineTuneEvents": (MEMBER_OBJECT, fixed("GET", "/v1/fine-tunes/{w.job_id}/events/stream")),
    "listModels": (MEMBER_COLLECTION, fixed("GET", "/v1/models")),
    "getModel": (MEMBER_OBJECT, fixed("GET", "/v1/models/{w.model_id}")),
    "updateModel": (MEMBER_OBJECT, fixed("PATCH", "/v1/models/{w.model_id}", json={"description": "d"})),
    "deleteModel": (OWNER_OBJECT, _delete_model),
    "listModelVersions": (MEMBER_OBJECT, fixed("GET", "/v1/models/{w.model_id}/versions")),
    "getModelVersion": (MEMBER_OBJECT, fixed("GET", _VERSION)),
    "downloadModelAdapter": (MEMBER_OBJECT, fixed("GET", f"{_VERSION}/adapter")),
    "getModelTrainingRecord": (MEMBER_OBJECT, fixed("GET", f"{_VERSION}/record")),
    "getModelCard": (MEMBER_OBJECT, fixed("GET", f"{_VERSION}/card")),
    "getModelGuardrails": (MEMBER_OBJECT, fixed("GET", "/v1/models/{w.model_id}/guardrails")),
    "setModelGuardrails": (
        OWNER_OBJECT,
        fixed("PUT", "/v1/models/{w.model_id}/guardrails", json={"blocked_terms": ["gore"]}),
    ),
    "createGeneration": (MEMBER_OBJECT, _create_generation),
    "listGenerations": (MEMBER_COLLECTION, fixed("GET", "/v1/generations")),
    "getGeneration": (MEMBER_OBJECT, fixed("GET", _GENERATION)),
    "cancelGeneration": (MEMBER_OBJECT, _cancel_generation),
    "listGenerationEvents": (MEMBER_OBJECT, fixed("GET", f"{_GENERATION}/events")),
    # The world's generation has succeeded, so its stream sends every event and ends.
    "streamGenerationEvents": (MEMBER_OBJECT, fixed("GET", f"{_GENERATION}/events/stream")),
    "downloadGenerationOutput": (MEMBER_OBJECT, fixed("GET", f"{_GENERATION}/outputs/video.mp4")),
    # Each caller reads their own tenant's usage (test_usage.py holds B's answer to none of A's work).
    "getUsage": (MEMBER_COLLECTION, fixed("GET", "/v1/usage")),
    "createWebhook": (OWNER_COLLECTION, fixed("POST", "/v1/webhooks", json=WEBHOOK)),
    "listWebhooks": (MEMBER_COLLECTION, fixed("GET", "/v1/webhooks")),
    "getWebhook": (MEMBER_OBJECT, fixed("GET", "/v1/webhooks/{w.webhook_id}")),
    "updateWebhook": (OWNER_OBJECT, fixed("PATCH", "/v1/webhooks/{w.webhook_id}", json={"description": "d"})),
    "deleteWebhook": (OWNER_OBJECT, _delete_webhook),
    "rotateWebhookSecret": (OWNER_OBJECT, fixed("POST", "/v1/webhooks/{w.webhook_id}/rotate-secret")),
    "listWebhookDeliveries": (MEMBER_OBJECT, fixed("GET", "/v1/webhooks/{w.webhook_id}/deliveries")),
    # Redelivery queues a finished delivery again: the owner's call succeeds, once.
    "redeliverWebhookDelivery": (
        OWNER_OBJECT,
        fixed("POST", "/v1/webhooks/{w.webhook_id}/deliveries/{w.delivery_id}/redeliver"),
    ),
    "adminListTenants": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants")),
    "adminGetTenant": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants/{w.owner.tenant_id}")),
    "adminUpdateTenant": (
        ADMIN_ONLY,
        fixed("PATCH", "/v1/admin/tenants/{w.owner.tenant_id}", json={"status": "active"}),
    ),
    "adminListUsers": (ADMIN_ONLY, fixed("GET", "/v1/admin/users")),
    "adminDeleteTenant": (ADMIN_ONLY, _admin_delete_tenant),
    "adminGetTenantUsage": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants/{w.owner.tenant_id}/usage")),
    "adminGetTenantCompute": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants/{w.owner.tenant_id}/compute")),
    "adminSetTenantCompute": (
        ADMIN_ONLY,
        fixed("PUT", "/v1/admin/tenants/{w.owner.tenant_id}/compute", json={"weight": 2.0}),
    ),
    "adminListPlans": (ADMIN_ONLY, fixed("GET", "/v1/admin/plans")),
    "adminCreatePlan": (ADMIN_ONLY, _create_plan),
    "adminGetPlan": (ADMIN_ONLY, fixed("GET", _PLAN)),
    "adminReplacePlan": (ADMIN_ONLY, fixed("PUT", _PLAN, json={"name": "matrix plan", "models": 5})),
    "adminDeletePlan": (ADMIN_ONLY, _delete_plan),
    "adminGetTenantQuotas": (ADMIN_ONLY, fixed("GET", _QUOTAS)),
    "adminUpdateTenantQuotas": (ADMIN_ONLY, fixed("PATCH", _QUOTAS, json={"overrides": {}})),
    "adminListTenantLedger": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants/{w.owner.tenant_id}/ledger")),
    # Each caller reads their own tenant's quotas and ledger.
    "getQuotas": (MEMBER_COLLECTION, fixed("GET", "/v1/quotas")),
    "listQuotaNotices": (MEMBER_COLLECTION, fixed("GET", "/v1/quotas/notices")),
    # Billing is off in this app (no Stripe key): the portal is a 409 for every owner; the
    # tenant's billing view still answers, saying so.
    "getBilling": (MEMBER_COLLECTION, fixed("GET", "/v1/billing")),
    "createBillingPortalSession": (outcomes(401, 409, 403, 409, 409), fixed("POST", "/v1/billing/portal")),
    "adminGetTenantBilling": (ADMIN_ONLY, fixed("GET", "/v1/admin/tenants/{w.owner.tenant_id}/billing")),
    # Stripe's webhook is public (no caller authenticates), but only a body signed with the
    # webhook secret is acted on: every caller here, unsigned, gets 400 (test_billing.py signs).
    "receiveStripeEvent": (
        outcomes(400, 400, 400, 400, 400),
        fixed("POST", "/v1/billing/stripe/webhook", json={}),
    ),
    "listLedger": (MEMBER_COLLECTION, fixed("GET", "/v1/usage/ledger")),
    # Owners read their own tenant's audit log (test_audit.py: never another's); admins every one.
    "listAuditEntries": (OWNER_COLLECTION, fixed("GET", "/v1/audit")),
    "adminListAuditEntries": (ADMIN_ONLY, fixed("GET", "/v1/admin/audit")),
}
# Version bodies name tenant A's asset, known only once the world exists.
VERSION_BODY_OPS = {"createDatasetVersion", "replaceDatasetVersion"}


async def _trained_model(world: World, settings: Settings, storage: ObjectStorage) -> None:
    """A finished job with a model version, as a worker leaves them (training is not the point here)."""
    job = await world.fresh_job(cancel=True)
    world.job_id, world.model_id = job["id"], job["model_id"]
    tenant = uuid.UUID(world.owner.tenant_id)
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        mark_unscoped(session)
        row = await session.get_one(FineTuneJob, uuid.UUID(job["id"]))
        adapter = b"adapter bytes"
        await add_version(
            session,
            row,
            adapter_sha256=hashlib.sha256(adapter).hexdigest(),
            adapter_bytes=len(adapter),
            final_loss=0.5,
        )
        await session.commit()
        keys = TenantKeys(tenant)
        storage.put_bytes(keys.adapter_file(row.model_version_id), adapter)
        storage.put_bytes(keys.training_record(row.model_version_id), b"{}")
        storage.put_bytes(keys.sample(row.id, 2, 0), b"clip")
    await engine.dispose()


async def _rendered_generation(world: World, settings: Settings, storage: ObjectStorage) -> None:
    """A succeeded generation with its outputs, as a worker leaves them."""
    world.generation_id = await world.fresh_generation()
    engine = create_engine(settings.database_url)
    queue = GenerationQueue(session_factory(engine), settings.generations)
    (claimed,) = await queue.claim_batch("matrix", ["tiny"], 1)
    for name in OUTPUT_MEDIA_TYPES:
        storage.put_bytes(TenantKeys(claimed.tenant_id).output(claimed.id, name), b"output")
    await queue.finish_succeeded("matrix", claimed.id, output_bytes=18, gpu_seconds=1.0)
    await engine.dispose()


async def _finished_delivery(world: World, settings: Settings) -> None:
    """An endpoint with one delivery already made, as the dispatcher leaves them."""
    world.webhook_id = await world.fresh_webhook()
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        set_tenant(session, uuid.UUID(world.owner.tenant_id))
        now = datetime.now(UTC)
        delivery = WebhookDelivery(
            endpoint_id=uuid.UUID(world.webhook_id),
            event_id=uuid.uuid4(),
            event_type="succeeded",
            payload={},
            status=WorkStatus.SUCCEEDED,
            queued_at=now,
            not_before=now,
            finished_at=now,
        )
        session.add(delivery)
        await session.commit()
    await engine.dispose()
    world.delivery_id = str(delivery.id)


async def build_world(client: Client, settings: Settings, storage: ObjectStorage, tmp: Path) -> World:
    owner = await sign_up(client, "Tenant A")
    member_home = await sign_up(client, "Member Home")
    await invite_and_accept(client, owner, member_home)
    await client.post(
        "/v1/auth/login",
        json={"email": member_home.email, "password": PASSWORD, "tenant_id": owner.tenant_id},
    )
    member_key = (await client.post("/v1/api-keys", json={"name": "member"})).json()["key"]
    client.cookies.clear()
    member = Caller(
        member_home.email, owner.tenant_id, member_home.user_id, {"Authorization": f"Bearer {member_key}"}
    )
    other = await sign_up(client, "Tenant B")
    admin = await sign_up(client, "Platform")
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(User).where(User.email == admin.email).values(is_platform_admin=True))
    await engine.dispose()

    clip = make_clip(tmp / "a.mp4")
    asset_id = str((await upload_file(client, owner, clip))["id"])
    callers = {"other_tenant": other, "member": member, "owner": owner, "admin": admin}
    world = World(client, tmp, callers, owner, clip, asset_id, "", "")
    world.upload_id = await world.fresh_upload()
    world.dataset_id = await world.fresh_dataset()
    await world.fresh_version()
    world.job_version = await world.fresh_version()
    await _trained_model(world, settings, storage)
    await _rendered_generation(world, settings, storage)
    await _finished_delivery(world, settings)
    world.plan_id = await world.fresh_plan()
    world.a_ids = [
        asset_id,
        world.upload_id,
        world.dataset_id,
        world.job_id,
        world.model_id,
        world.webhook_id,
        world.delivery_id,
        world.generation_id,
    ]
    return world


def test_every_operation_has_a_row(app: Litestar) -> None:
    operations = {
        op["operationId"] for ops in app.openapi_schema.to_schema()["paths"].values() for op in ops.values()
    }
    assert operations - MATRIX.keys() == set(), "operations without a row in the authorization matrix"
    assert MATRIX.keys() - operations == set(), "rows for operations that no longer exist"


async def test_authorization_matrix(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    world = await build_world(client, settings, storage, tmp_path)
    failures = []
    for operation, (expected, build) in MATRIX.items():
        for role in ROLES:
            call = await build(world)
            if operation in VERSION_BODY_OPS:
                call.json = {"items": [{"asset_id": world.asset_id}]}
            headers = world.callers[role].headers if role in world.callers else {}
            client.cookies.clear()
            response = await client.request(
                call.method, call.path, json=call.json, content=call.content, headers=headers
            )
            want = expected[role]
            ok = 200 <= response.status_code < 300
            if (want == OK and not ok) or (want != OK and response.status_code != want):
                failures.append(
                    f"{operation} as {role}: got {response.status_code}, want {want}: {response.text[:200]}"
                )
            elif role == "other_tenant" and any(a_id in response.text for a_id in world.a_ids):
                failures.append(f"{operation} as {role}: response names tenant A's objects")
    assert failures == []
