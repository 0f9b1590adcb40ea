from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from service.accounts.schemas import ApiKeyOut, InvitationOut, MemberOut, TenantOut
from service.datasets.schemas import DatasetOut, VersionOut
from service.generations.schemas import GenerationOut
from service.jobs.schemas import FineTuneOut
from service.models.schemas import ModelOut, ModelVersionOut
from service.schemas import Input, Output
from service.uploads.schemas import AssetOut
from service.usage.schemas import LedgerEntryOut
from service.webhooks.schemas import WebhookOut


class TenantDeletion(Input):
    confirm: str = Field(
        max_length=120, description="The tenant's name, exactly: deleting cannot be undone, so it is typed."
    )


class ExportedAsset(Output):
    asset: AssetOut = Field(description="With its sha256 and rights attestation.")
    content: str = Field(description="Download path of the clip as uploaded.")
    poster: str = Field(description="Download path of its poster frame.")


class ExportedDataset(Output):
    dataset: DatasetOut
    versions: list[VersionOut] = Field(description="Every version with its items and captions.")


class ExportedSample(Output):
    step: int
    index: int
    content: str = Field(description="Download path of the validation clip.")


class ExportedFineTune(Output):
    fine_tune: FineTuneOut = Field(description="The training settings and how the run went.")
    samples: list[ExportedSample]


class ExportedModelVersion(Output):
    version: ModelVersionOut
    adapter: str = Field(description="Download path of the adapter (.safetensors).")
    training_record: str = Field(description="Download path of the training record (JSON).")
    model_card: str = Field(description="Download path of the model card (README.md).")


class ExportedModel(Output):
    model: ModelOut
    versions: list[ExportedModelVersion]


class TenantExport(Output):
    """Everything the tenant holds: its records here, its files as download paths of the API,
    each answered to the tenant's owners' credentials."""

    exported_at: datetime
    tenant: TenantOut
    members: list[MemberOut]
    invitations: list[InvitationOut] = Field(description="Every invitation, open or settled.")
    api_keys: list[ApiKeyOut] = Field(description="Names and prefixes; secrets are never kept.")
    assets: list[ExportedAsset]
    datasets: list[ExportedDataset]
    fine_tunes: list[ExportedFineTune]
    models: list[ExportedModel]
    generations: list[GenerationOut] = Field(description="Each succeeded one's `outputs` are download paths.")
    webhooks: list[WebhookOut]
    usage_ledger: list[LedgerEntryOut]
    audit_log: list[dict[str, Any]] = Field(description="The tenant's audit entries, oldest first.")
