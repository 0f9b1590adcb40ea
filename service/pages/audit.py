"""The audit log's pages: a tenant's for its owners (``/app/audit``), every tenant's for admins
(``/admin/audit``). The entries are ``GET /v1/audit`` and ``GET /v1/admin/audit``'s, from the
same service calls, with the same filters typed into a form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from service.accounts import service as accounts
from service.audit import service as audit
from service.audit.schemas import AuditFilter
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest
from service.pages.formatting import pager
from service.pages.shared import LISTED, OWNER, shell
from service.pages.templates import page as render

# The families of actions the form offers, by the prefix each filters on.
FAMILIES = {
    "sign_in.": "Sign-ins",
    "api_key.": "API keys",
    "member.": "Members",
    "invitation.": "Invitations",
    "tenant.": "Tenant settings",
    "asset.": "Footage",
    "dataset": "Datasets and versions",
    "fine_tune.": "Fine-tunes",
    "model": "Models, adapters and guardrails",
    "generation.": "Videos",
    "webhook_": "Webhooks",
    "admin.": "Platform admins' actions",
}


@dataclass(frozen=True, slots=True)
class Filters:
    """The form's fields as typed (shown again), and what they filter."""

    values: dict[str, str]
    found: AuditFilter


def _uuid(label: str, text: str) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        raise DomainError(f"{label}: not an id.") from None


def _day(label: str, text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise DomainError(f"{label}: not a date (YYYY-MM-DD).") from None


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=UTC) if day else None


def filters(action: str, actor: str, since: str, until: str, tenant: str = "") -> Filters:
    """The form's filters: dates are whole UTC days, ``until``'s included."""
    values = {"action": action[:80], "actor": actor, "since": since, "until": until, "tenant": tenant}
    last = _day("To", until)
    found = AuditFilter(
        action=values["action"] or None,
        actor=_uuid("Who", actor),
        since=_start(_day("From", since)),
        until=_start(last + timedelta(days=1) if last else None),
        tenant_id=_uuid("Tenant", tenant),
    )
    return Filters(values, found)


def _listing(base: str, page: PageRequest, shown: Filters, entries: list[Any], total: int) -> dict[str, Any]:
    return {
        "entries": entries,
        "values": shown.values,
        "families": FAMILIES,
        "pager": pager(base, page, total, len(entries), **shown.values),
    }


class AuditPages(Controller):
    path = "/app/audit"
    include_in_schema = False

    @get("/", opt=OWNER)
    async def audit_log(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        action: FromQuery[str] = "",
        actor: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Template:
        shown = filters(action, actor, since, until)
        entries, total = await audit.tenant_entries(db_session, principal.tenant_id, shown.found, page)
        members, _ = await accounts.list_members(db_session, LISTED)
        context = _listing("/app/audit", page, shown, entries, total)
        return render("audit.html", **await shell(db_session, principal, members=members, **context))


class AdminAuditPages(Controller):
    path = "/admin/audit"
    include_in_schema = False
    opt = access(Access.ADMIN)

    @get("/")
    async def audit_log(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        action: FromQuery[str] = "",
        actor: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        tenant: FromQuery[str] = "",
    ) -> Template:
        shown = filters(action, actor, since, until, tenant)
        entries, total = await audit.list_entries(db_session, shown.found, page)
        context = _listing("/admin/audit", page, shown, entries, total)
        return render("admin_audit.html", **await shell(db_session, principal, **context))
