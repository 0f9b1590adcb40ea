"""A tenant's export: one manifest of everything it holds, whose files are download paths of
the API's own routes, so no file passes through the manifest or this process's memory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import ObjectStorage
from service.accounts.models import ApiKey, Invitation, Membership, Tenant, User
from service.accounts.schemas import ApiKeyOut, InvitationOut, MemberOut, TenantOut
from service.datasets.models import Dataset, DatasetVersion
from service.datasets.schemas import DatasetOut
from service.datasets.service import version_out
from service.db.models import metadata
from service.db.tenancy import unscoped
from service.generations.models import Generation
from service.generations.service import generations_out
from service.jobs.models import FineTuneJob
from service.jobs.service import jobs_out, list_samples
from service.models.models import Model, ModelVersion
from service.models.schemas import ModelOut, ModelVersionOut
from service.tenants.schemas import (
    ExportedAsset,
    ExportedDataset,
    ExportedFineTune,
    ExportedModel,
    ExportedModelVersion,
    ExportedSample,
    TenantExport,
)
from service.uploads.models import Asset
from service.uploads.schemas import AssetOut
from service.usage.models import LedgerEntry
from service.usage.schemas import LedgerEntryOut
from service.webhooks.models import WebhookEndpoint
from service.webhooks.schemas import WebhookOut

# The audit log's table, where this deployment has one (``service.audit``).
AUDIT_TABLE = "audit_entry"


async def export_tenant(session: AsyncSession, storage: ObjectStorage, tenant_id: UUID) -> TenantExport:
    """The manifest, read in the session's tenant."""
    tenant = await session.get_one(Tenant, tenant_id)
    assets = (await session.scalars(select(Asset).order_by(Asset.created_at))).all()
    jobs = list((await session.scalars(select(FineTuneJob).order_by(FineTuneJob.created_at))).all())
    generations = list((await session.scalars(select(Generation).order_by(Generation.created_at))).all())
    return TenantExport(
        exported_at=datetime.now(UTC),
        tenant=TenantOut.model_validate(tenant),
        members=await _members(session),
        invitations=[
            InvitationOut.model_validate(i)
            for i in await session.scalars(select(Invitation).order_by(Invitation.created_at))
        ],
        api_keys=[
            ApiKeyOut.model_validate(k)
            for k in await session.scalars(select(ApiKey).order_by(ApiKey.created_at))
        ],
        assets=[
            ExportedAsset(
                asset=AssetOut.model_validate(a),
                content=f"/v1/assets/{a.id}/content",
                poster=f"/v1/assets/{a.id}/poster",
            )
            for a in assets
        ],
        datasets=await _datasets(session),
        fine_tunes=[
            ExportedFineTune(fine_tune=out, samples=await _samples(session, storage, out.id))
            for out in await jobs_out(session, jobs)
        ],
        models=await _models(session),
        generations=await generations_out(session, generations),
        webhooks=[
            WebhookOut.model_validate(w)
            for w in await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at))
        ],
        usage_ledger=[
            LedgerEntryOut.model_validate(e)
            for e in await session.scalars(select(LedgerEntry).order_by(LedgerEntry.occurred_at))
        ],
        audit_log=await _audit_log(session, tenant_id),
    )


async def _members(session: AsyncSession) -> list[MemberOut]:
    memberships = (await session.scalars(select(Membership).order_by(Membership.created_at))).all()
    with unscoped(session):
        emails = dict(
            (
                await session.execute(
                    select(User.id, User.email).where(User.id.in_([m.user_id for m in memberships]))
                )
            )
            .tuples()
            .all()
        )
    return [
        MemberOut(user_id=m.user_id, email=emails[m.user_id], role=m.role, created_at=m.created_at)
        for m in memberships
    ]


async def _datasets(session: AsyncSession) -> list[ExportedDataset]:
    datasets = (await session.scalars(select(Dataset).order_by(Dataset.created_at))).all()
    in_order = select(DatasetVersion).order_by(DatasetVersion.dataset_id, DatasetVersion.number)
    versions = (await session.scalars(in_order)).all()
    return [
        ExportedDataset(
            dataset=DatasetOut.model_validate(d),
            versions=[version_out(v) for v in versions if v.dataset_id == d.id],
        )
        for d in datasets
    ]


async def _samples(session: AsyncSession, storage: ObjectStorage, job_id: UUID) -> list[ExportedSample]:
    return [
        ExportedSample(
            step=sample.step,
            index=sample.index,
            content=f"/v1/fine-tunes/{job_id}/samples/{sample.step}/{sample.index}",
        )
        for sample in await list_samples(session, storage, job_id)
    ]


async def _models(session: AsyncSession) -> list[ExportedModel]:
    models = (await session.scalars(select(Model).order_by(Model.created_at))).all()
    versions = (
        await session.scalars(select(ModelVersion).order_by(ModelVersion.model_id, ModelVersion.number))
    ).all()
    exported = []
    for model in models:
        base = f"/v1/models/{model.id}/versions"
        exported.append(
            ExportedModel(
                model=ModelOut.model_validate(model),
                versions=[
                    ExportedModelVersion(
                        version=ModelVersionOut.model_validate(v),
                        adapter=f"{base}/{v.number}/adapter",
                        training_record=f"{base}/{v.number}/record",
                        model_card=f"{base}/{v.number}/card",
                    )
                    for v in versions
                    if v.model_id == model.id
                ],
            )
        )
    return exported


async def _audit_log(session: AsyncSession, tenant_id: UUID) -> list[dict[str, Any]]:
    table = metadata.tables.get(AUDIT_TABLE)
    if table is None:
        return []
    with unscoped(session):
        rows = await session.execute(
            select(table)
            .where(table.c.tenant_id == tenant_id)
            .order_by(*(c for c in (table.c.get("created_at"), table.c.get("id")) if c is not None))
        )
    return [dict(row._mapping) for row in rows]
