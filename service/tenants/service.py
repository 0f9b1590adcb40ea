"""What the tenant routes do: check who asks and what they confirmed, then export or delete."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Invalid, NotFound
from core.storage import ObjectStorage
from service.accounts.models import Tenant
from service.auth.principal import Principal
from service.db.tenancy import unscoped
from service.tenants.deletion import delete_tenant

DELETION = (
    "Deletes the tenant and everything it holds, at once and for good: every record (members, "
    "keys, footage, datasets, fine-tunes, models, generations, webhooks, usage, audit log) and "
    "every file. Its sessions and API keys stop working; its members' accounts stay. "
    "Export first (`GET /v1/tenant/export`) to keep a copy."
)


async def delete_own_tenant(
    session: AsyncSession, storage: ObjectStorage, principal: Principal, confirm: str
) -> None:
    """An owner deletes their tenant, having typed its name."""
    tenant = await session.get_one(Tenant, principal.tenant_id)
    if confirm != tenant.name:
        raise Invalid("Type the tenant's name exactly to confirm deleting it and everything it holds.")
    await delete_tenant(session, storage, tenant.id)


async def delete_any_tenant(session: AsyncSession, storage: ObjectStorage, tenant_id: UUID) -> None:
    """An admin deletes a tenant."""
    with unscoped(session):
        if await session.get(Tenant, tenant_id) is None:
            raise NotFound("No such tenant.")
    await delete_tenant(session, storage, tenant_id)
