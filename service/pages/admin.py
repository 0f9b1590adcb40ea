"""The admin console: tenants, their quotas, compute share, status, ledger and billing, and plans.

Platform admins only, declared once on the controller exactly as the admin API's controllers
do, so a member is refused with the same 403 ("Only platform admins may do this.") and an
unknown address under ``/admin`` too: nothing here is reachable by a non-admin. Every change
is a form posting to one of the same service functions the admin API calls
(``service.admin.service``, ``service.quotas.service``), with the same validation schemas.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, DomainError, NotFound
from core.settings import Settings
from service.accounts.models import TenantStatus
from service.admin import service as admin
from service.admin.schemas import TenantComputeWrite
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.billing import service as billing
from service.db.pagination import PageRequest
from service.pages.formatting import gpu_time, limit_text, number_field, pager
from service.pages.shared import form_fields, notice_text, redirect, shell, words
from service.pages.templates import page as render
from service.pages.usage import QUOTA_LABELS, STATUS_WORDS, quota_rows, tenant_ledger
from service.quotas import service as quotas
from service.quotas import usage as quota_usage
from service.quotas.limits import Quota, limits_for
from service.quotas.schemas import PlanWrite, TenantQuotaWrite

ADMIN = access(Access.ADMIN)
LIMITS = list(Quota)
WHOLE_NUMBER = re.compile(r"[0-9]+")
# The unit each limit is entered in on the forms (the API's: seconds, bytes or a count).
UNITS = {
    Quota.GPU_SECONDS_PER_MONTH: "seconds",
    Quota.STORAGE_BYTES: "bytes",
    Quota.MAX_UPLOAD_BYTES: "bytes",
}
# The plans table's column headings: short, so that every limit fits beside the plan's name.
PLAN_COLUMNS = {
    Quota.GPU_SECONDS_PER_MONTH: "GPU time a month",
    Quota.STORAGE_BYTES: "Storage",
    Quota.MODELS: "Models",
    Quota.CONCURRENT_FINE_TUNES: "Fine-tunes at once",
    Quota.CONCURRENT_GENERATIONS: "Videos at once",
    Quota.GENERATIONS_PER_MINUTE: "Videos a minute",
    Quota.MAX_UPLOAD_BYTES: "Largest upload",
}


def _whole(label: str, raw: str, errors: list[str], unlimited: str) -> int | None:
    """A limit typed on a form: a whole number, or blank (``unlimited`` says what blank means).
    Only ASCII digits count: ``str.isdigit`` also takes "²", which ``int`` refuses."""
    text = raw.replace(",", "").replace("_", "").strip()
    if not text:
        return None
    if not WHOLE_NUMBER.fullmatch(text):
        errors.append(f"{label}: enter a whole number, or leave it blank for {unlimited}.")
        return None
    return int(text)


class AdminPages(Controller):
    path = "/admin"
    include_in_schema = False
    opt = ADMIN

    @get("/")
    async def tenants(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
        q: FromQuery[str | None] = None,
    ) -> Template:
        search = (q or "").strip()[:120]
        found, total = await admin.list_tenants(db_session, page, search or None)
        ids = [tenant.id for tenant in found]
        limits = await limits_for(db_session, ids)
        gpu = await quota_usage.gpu_seconds_this_month_of(db_session, ids, datetime.now(UTC))
        rows = [
            {
                "tenant": tenant,
                "plan": limits[tenant.id].plan if tenant.id in limits else None,
                "gpu": gpu_time(gpu[tenant.id]),
            }
            for tenant in found
        ]
        context = {
            "rows": rows,
            "search": search,
            "pager": pager("/admin", page, total, len(found), q=search),
            "status_words": STATUS_WORDS,
        }
        return render("admin_tenants.html", **await shell(db_session, principal, **context))

    @get("/tenants/{tenant_id:uuid}")
    async def tenant(
        self,
        tenant_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        page: NamedDependency[PageRequest],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._tenant_page(
            db_session, principal, settings, tenant_id, page, notice=notice_text(notice)
        )

    @staticmethod
    async def _tenant_page(
        db_session: AsyncSession,
        principal: Principal,
        settings: Settings,
        tenant_id: UUID,
        page: PageRequest,
        status_code: int = 200,
        sent: dict[str, str] | None = None,
        **context: Any,
    ) -> Template:
        """The tenant's page; ``sent`` is a refused form's fields, shown again as they were typed."""
        summary = await admin.get_tenant(db_session, tenant_id)
        use = await quotas.tenant_quotas(db_session, tenant_id)
        shown = await billing.admin_tenant_billing(db_session, settings.billing, tenant_id)
        compute = await admin.get_compute(db_session, tenant_id)
        saved = {
            "plan_id": str(shown.plan_id or ""),
            "weight": f"{compute.weight:g}",
            "concurrency_cap": "" if compute.concurrency_cap is None else str(compute.concurrency_cap),
            **{
                key: value
                for quota in LIMITS
                for key, value in _override_fields(use.overrides, quota).items()
            },
        }
        context = {
            "summary": summary,
            "quotas": use,
            "rows": quota_rows(use),
            "plans": await quotas.list_plans(db_session),
            "own_plan": shown.plan_id,
            "values": {**saved, **(sent or {})},
            "limits": [
                {"quota": quota, "label": QUOTA_LABELS[quota], "unit": UNITS.get(quota, "a count")}
                for quota in LIMITS
            ],
            "compute": compute,
            "billing": shown,
            "statuses": list(TenantStatus),
            "status_words": STATUS_WORDS,
            "errors": [],
            "compute_errors": [],
            "notice": None,
            **await tenant_ledger(db_session, tenant_id, page, f"/admin/tenants/{tenant_id}", links=False),
            **context,
        }
        return render(
            "admin_tenant.html", status_code=status_code, **await shell(db_session, principal, **context)
        )

    @post("/tenants/{tenant_id:uuid}/status")
    async def set_status(
        self,
        tenant_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
    ) -> Redirect:
        form = await form_fields(request)
        try:
            status = TenantStatus(form.get("status", ""))
        except ValueError:
            raise NotFound("There is no such tenant status.") from None
        await admin.set_tenant_status(db_session, tenant_id, status)
        return redirect(f"/admin/tenants/{tenant_id}?notice=status-{status.value}")

    @post("/tenants/{tenant_id:uuid}/quotas")
    async def set_quotas(
        self,
        tenant_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        page: NamedDependency[PageRequest],
    ) -> Template | Redirect:
        form = await form_fields(request)
        errors: list[str] = []
        overrides: dict[str, int | None] = {}
        for quota in LIMITS:
            mode = form.get(f"mode_{quota.value}", "plan")
            if mode == "unlimited":
                overrides[quota.value] = None
            elif mode == "limit":
                label = QUOTA_LABELS[quota]
                limit = _whole(label, form.get(f"limit_{quota.value}", ""), errors, "the plan's")
                if limit is not None:
                    overrides[quota.value] = limit
                elif not any(error.startswith(f"{label}:") for error in errors):
                    # Blank (or only separators) with "limit" chosen is not "unlimited".
                    errors.append(f"{label}: enter the limit, or choose the plan's.")
        plan = form.get("plan_id", "")
        if not errors:
            try:
                body = TenantQuotaWrite.model_validate({"plan_id": plan or None, "overrides": overrides})
            except ValidationError as exc:
                errors = words(exc)
            else:
                await quotas.set_tenant_quotas(db_session, tenant_id, body)
                return redirect(f"/admin/tenants/{tenant_id}?notice=quotas-saved")
        return await self._tenant_page(
            db_session, principal, settings, tenant_id, page, status_code=400, sent=form, errors=errors
        )

    @post("/tenants/{tenant_id:uuid}/compute")
    async def set_compute(
        self,
        tenant_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        page: NamedDependency[PageRequest],
    ) -> Template | Redirect:
        form = await form_fields(request)
        errors: list[str] = []
        cap = _whole("Concurrency cap", form.get("concurrency_cap", ""), errors, "no cap")
        if not errors:
            try:
                body = TenantComputeWrite.model_validate(
                    {"weight": form.get("weight", ""), "concurrency_cap": cap}
                )
            except ValidationError as exc:
                errors = words(exc)
            else:
                await admin.set_compute(db_session, tenant_id, body)
                return redirect(f"/admin/tenants/{tenant_id}?notice=compute-saved")
        return await self._tenant_page(
            db_session,
            principal,
            settings,
            tenant_id,
            page,
            status_code=400,
            sent=form,
            compute_errors=errors,
        )

    @get("/plans")
    async def plans(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._plans_page(db_session, principal, notice=notice_text(notice))

    @staticmethod
    async def _plans_page(
        db_session: AsyncSession, principal: Principal, status_code: int = 200, **context: Any
    ) -> Template:
        listed = [
            {
                "plan": plan,
                "limits": {quota: limit_text(getattr(plan, quota.value), quota) for quota in LIMITS},
            }
            for plan in await quotas.list_plans(db_session)
        ]
        context = {"plans": listed, "labels": PLAN_COLUMNS, "errors": [], "notice": None, **context}
        layout = await shell(db_session, principal, **context)
        return render("admin_plans.html", status_code=status_code, **layout)

    @get("/plans/new")
    async def new_plan(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        return await self._plan_form(db_session, principal, None, {})

    @post("/plans")
    async def create_plan(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        return await self._save_plan(db_session, principal, request, None)

    @get("/plans/{plan_id:uuid}")
    async def plan(
        self,
        plan_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        found = await quotas.get_plan(db_session, plan_id)
        values = {
            "name": found.name,
            "is_default": "on" if found.is_default else "",
            "stripe_price_id": found.stripe_price_id or "",
            **{quota.value: number_field(getattr(found, quota.value)) for quota in LIMITS},
        }
        return await self._plan_form(db_session, principal, plan_id, values)

    @post("/plans/{plan_id:uuid}")
    async def replace_plan(
        self,
        plan_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        await quotas.get_plan(db_session, plan_id)
        return await self._save_plan(db_session, principal, request, plan_id)

    @post("/plans/{plan_id:uuid}/delete")
    async def delete_plan(
        self,
        plan_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        try:
            await quotas.delete_plan(db_session, plan_id)
        except Conflict as exc:
            # Said beside the list, where the admin can see which plan and move its tenants.
            return await self._plans_page(db_session, principal, status_code=409, errors=[exc.detail])
        return redirect("/admin/plans?notice=plan-deleted")

    async def _save_plan(
        self,
        db_session: AsyncSession,
        principal: Principal,
        request: Request[Any, Any, Any],
        plan_id: UUID | None,
    ) -> Template | Redirect:
        """A plan from its form, made new (``plan_id`` None) or in place of one; a refusal shows
        the form again with it in words."""
        form = await form_fields(request)
        errors, body = _plan_body(form)
        if body is not None:
            try:
                if plan_id is None:
                    await quotas.create_plan(db_session, body)
                else:
                    await quotas.replace_plan(db_session, plan_id, body)
            except DomainError as exc:
                errors = [exc.detail]
            else:
                return redirect(f"/admin/plans?notice=plan-{'created' if plan_id is None else 'saved'}")
        return await self._plan_form(db_session, principal, plan_id, form, errors, status_code=400)

    @staticmethod
    async def _plan_form(
        db_session: AsyncSession,
        principal: Principal,
        plan_id: UUID | None,
        values: dict[str, str],
        errors: list[str] | None = None,
        status_code: int = 200,
    ) -> Template:
        fields = [
            {
                "quota": q,
                "label": QUOTA_LABELS[q],
                "unit": UNITS.get(q, "a count"),
                "value": values.get(q.value, ""),
            }
            for q in LIMITS
        ]
        context = {"plan_id": plan_id, "values": values, "fields": fields, "errors": errors or []}
        layout = await shell(db_session, principal, **context)
        return render("admin_plan.html", status_code=status_code, **layout)

    @get("/users")
    async def users(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        page: NamedDependency[PageRequest],
    ) -> Template:
        """Every account on the server, oldest first, as ``GET /v1/admin/users`` lists them."""
        found, total = await admin.list_users(db_session, page)
        context = {"users": found, "pager": pager("/admin/users", page, total, len(found))}
        return render("admin_users.html", **await shell(db_session, principal, **context))

    @get("/{rest:path}")
    async def nothing_here(self, rest: FromPath[str]) -> None:
        raise NotFound("There is nothing at this address in the admin console.")


def _plan_body(form: dict[str, str]) -> tuple[list[str], PlanWrite | None]:
    errors: list[str] = []
    limits = {q.value: _whole(QUOTA_LABELS[q], form.get(q.value, ""), errors, "unlimited") for q in LIMITS}
    if errors:
        return errors, None
    try:
        body = PlanWrite.model_validate(
            {
                "name": form.get("name", ""),
                "is_default": form.get("is_default") == "on",
                "stripe_price_id": form.get("stripe_price_id") or None,
                **limits,
            }
        )
    except ValidationError as exc:
        return words(exc), None
    return [], body


def _override_fields(overrides: dict[str, int | None], quota: Quota) -> dict[str, str]:
    """A quota's override as the tenant form's two fields: the plan's, unlimited, or a limit."""
    mode, limit = "plan", ""
    if quota.value in overrides:
        value = overrides[quota.value]
        mode, limit = ("unlimited", "") if value is None else ("limit", str(value))
    return {f"mode_{quota.value}": mode, f"limit_{quota.value}": limit}
