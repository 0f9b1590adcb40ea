from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from service.audit import service
from service.audit.schemas import AuditEntryOut, AuditFilter
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest, page_body
from service.schemas import Page

Action = Annotated[
    str | None,
    Parameter(max_length=80, description="Only actions starting with this: `api_key.` or `api_key.revoked`."),
]
Actor = Annotated[UUID | None, Parameter(description="Only what this user did (their user id).")]
ObjectId = Annotated[UUID | None, Parameter(description="Only entries about this object.")]
Since = Annotated[
    datetime | None, Parameter(description="Only entries at or after this time (ISO 8601; UTC if no zone).")
]
Until = Annotated[datetime | None, Parameter(description="Only entries before this time.")]
LISTED = (
    "Newest first; filters combine. Cursor paging (`starting_after`) keeps pages steady as entries arrive."
)


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get(operation_id="listAuditEntries", opt=access(Access.OWNER), description=LISTED)
    async def list_entries(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        action: Action = None,
        actor: Actor = None,
        object_id: ObjectId = None,
        since: Since = None,
        until: Until = None,
    ) -> Page[AuditEntryOut]:
        """The tenant's audit log: who did what to which of its objects (owners only)."""
        found = AuditFilter(action, actor, object_id, since, until)
        items, total = await service.tenant_entries(db_session, principal.tenant_id, found, page)
        return Page[AuditEntryOut].model_validate(page_body(items, total, page))


class AdminAuditController(Controller):
    path = "/v1/admin/audit"
    tags = ["admin"]
    opt = access(Access.ADMIN)

    @get(operation_id="adminListAuditEntries", description=LISTED)
    async def list_entries(
        self,
        db_session: NamedDependency[AsyncSession],
        page: NamedDependency[PageRequest],
        tenant_id: Annotated[UUID | None, Parameter(description="Only this tenant's entries.")] = None,
        action: Action = None,
        actor: Actor = None,
        object_id: ObjectId = None,
        since: Since = None,
        until: Until = None,
    ) -> Page[AuditEntryOut]:
        """Every tenant's audit log, and the platform's own actions (entries with no tenant)."""
        found = AuditFilter(action, actor, object_id, since, until, tenant_id)
        items, total = await service.list_entries(db_session, found, page)
        return Page[AuditEntryOut].model_validate(page_body(items, total, page))
