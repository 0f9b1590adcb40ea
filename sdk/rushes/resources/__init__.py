"""One module per API resource. Adding one: write the module, attach it in ``rushes/_client.py``."""

from rushes.resources.account import Auth, Invitations, MeResource, Tenant, TenantMembers
from rushes.resources.admin import Admin, AdminPlans, AdminTenants, AdminUsers
from rushes.resources.api_keys import ApiKeys
from rushes.resources.assets import Assets
from rushes.resources.billing import BillingResource
from rushes.resources.datasets import Datasets, DatasetVersions
from rushes.resources.fine_tunes import Bases, FineTunes
from rushes.resources.generations import Generations
from rushes.resources.models import Models, ModelVersions
from rushes.resources.quotas import QuotasResource
from rushes.resources.uploads import Uploads
from rushes.resources.usage import UsageResource
from rushes.resources.webhooks import Webhooks

__all__ = [
    "Admin",
    "AdminPlans",
    "AdminTenants",
    "AdminUsers",
    "ApiKeys",
    "Assets",
    "Auth",
    "Bases",
    "BillingResource",
    "DatasetVersions",
    "Datasets",
    "FineTunes",
    "Generations",
    "Invitations",
    "MeResource",
    "ModelVersions",
    "Models",
    "QuotasResource",
    "Tenant",
    "TenantMembers",
    "Uploads",
    "UsageResource",
    "Webhooks",
]
