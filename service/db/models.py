"""Imports every model so that metadata (and Alembic) sees the whole schema."""

from service.accounts.models import ApiKey, BrowserSession, Membership, Tenant, User
from service.audit.models import AuditEntry
from service.billing.models import BillingAccount, BillingSent, StripeEvent
from service.datasets.models import Dataset, DatasetItem, DatasetVersion
from service.db.base import Base
from service.fingerprints.models import FrameHash
from service.generations.models import Generation, GenerationEvent
from service.idempotency.models import IdempotencyRecord
from service.jobs.models import FineTuneJob, JobEvent, TenantCompute
from service.models.models import Model, ModelVersion
from service.quotas.models import Plan, QuotaNotice
from service.tenants.models import DeletedTenant
from service.uploads.models import Asset, UploadPart, UploadSession
from service.usage.models import LedgerEntry
from service.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "Asset",
    "AuditEntry",
    "BillingAccount",
    "BillingSent",
    "BrowserSession",
    "Dataset",
    "DatasetItem",
    "DatasetVersion",
    "DeletedTenant",
    "FineTuneJob",
    "FrameHash",
    "Generation",
    "GenerationEvent",
    "IdempotencyRecord",
    "JobEvent",
    "LedgerEntry",
    "Membership",
    "Model",
    "ModelVersion",
    "Plan",
    "QuotaNotice",
    "StripeEvent",
    "Tenant",
    "TenantCompute",
    "UploadPart",
    "UploadSession",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "metadata",
]
