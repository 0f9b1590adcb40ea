"""Platform administration: every tenant and user, plans and each tenant's quotas. Needs a
platform admin's key."""

from __future__ import annotations

import builtins
from datetime import date
from typing import Any, Literal, Unpack

from rushes import types
from rushes._base import NOT_GIVEN, Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment
from rushes.resources.usage import usage_op

TenantStatus = Literal["active", "past_due", "suspended"]


class Admin(Resource[R]):
    @property
    def tenants(self) -> AdminTenants[R]:
        return AdminTenants(self._requester)

    @property
    def users(self) -> AdminUsers[R]:
        return AdminUsers(self._requester)

    @property
    def plans(self) -> AdminPlans[R]:
        return AdminPlans(self._requester)


def _tenant_path(tenant_id: str, *rest: str) -> str:
    return "/".join((f"/v1/admin/tenants/{path_segment(tenant_id)}", *rest))


class AdminTenants(Resource[R]):
    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.TenantSummary]]:
        return list_op("/v1/admin/tenants", types.TenantSummary.from_json, limit)

    @endpoint
    def get(self, tenant_id: str) -> Op[types.TenantSummary]:
        return Op("GET", _tenant_path(tenant_id), types.TenantSummary.from_json)

    @endpoint
    def update(self, tenant_id: str, *, status: TenantStatus) -> Op[types.TenantSummary]:
        """Set a tenant's status: ``suspended`` refuses its members every call; ``past_due``
        lets them read their work but start nothing new (402); ``active`` restores both."""
        return Op("PATCH", _tenant_path(tenant_id), types.TenantSummary.from_json, json={"status": status})

    @endpoint
    def usage(
        self, tenant_id: str, *, since: date | str | None = None, until: date | str | None = None
    ) -> Op[types.Usage]:
        """Any tenant's usage, as its members see it with ``client.usage.get``."""
        return usage_op(_tenant_path(tenant_id, "usage"), since, until)

    @endpoint
    def quotas(self, tenant_id: str) -> Op[types.Quotas]:
        """Any tenant's plan, overrides and quota use, as its members see them with ``client.quotas.get``."""
        return Op("GET", _tenant_path(tenant_id, "quotas"), types.Quotas.from_json)

    @endpoint
    def set_quotas(
        self,
        tenant_id: str,
        *,
        plan_id: str | None = NOT_GIVEN,
        overrides: types.PlanLimits | None = NOT_GIVEN,
    ) -> Op[types.Quotas]:
        """Move the tenant to a plan (``plan_id=None``: the default plan) and/or replace its
        overrides: the whole map, each limit replacing the plan's (None: unlimited; ``{}`` or
        None: none). Only what is given is sent; the rest stays as it is."""
        body: dict[str, Any] = {}
        if plan_id is not NOT_GIVEN:
            body["plan_id"] = plan_id
        if overrides is not NOT_GIVEN:
            body["overrides"] = dict(overrides or {})
        return Op("PATCH", _tenant_path(tenant_id, "quotas"), types.Quotas.from_json, json=body)

    @endpoint
    def billing(self, tenant_id: str) -> Op[types.TenantBilling]:
        """A tenant's Stripe customer and subscription, and how much of its ledger reached Stripe."""
        return Op("GET", _tenant_path(tenant_id, "billing"), types.TenantBilling.from_json)

    @endpoint
    def compute(self, tenant_id: str) -> Op[types.TenantCompute]:
        """A tenant's share of the GPUs: fair-share weight, concurrency cap, recent GPU time."""
        return Op("GET", _tenant_path(tenant_id, "compute"), types.TenantCompute.from_json)

    @endpoint
    def set_compute(
        self, tenant_id: str, *, weight: float, concurrency_cap: int | None = None
    ) -> Op[types.TenantCompute]:
        """Replace a tenant's share: twice the weight counts half its recent GPU time when workers
        pick the next job; ``concurrency_cap`` limits its work at once (None: no cap; 0 holds it)."""
        body = {"weight": weight, "concurrency_cap": concurrency_cap}
        return Op("PUT", _tenant_path(tenant_id, "compute"), types.TenantCompute.from_json, json=body)

    @paginated
    def ledger(self, tenant_id: str, *, limit: int | None = None) -> Op[types.Page[types.LedgerEntry]]:
        """Any tenant's usage ledger, newest first, as its members see it with ``client.usage.ledger``."""
        return list_op(_tenant_path(tenant_id, "ledger"), types.LedgerEntry.from_json, limit)


def _plan_path(plan_id: str) -> str:
    return f"/v1/admin/plans/{path_segment(plan_id)}"


def _plan_body(name: str, is_default: bool, limits: types.PlanLimits) -> dict[str, Any]:
    return {"name": name, "is_default": is_default, **limits}


class AdminPlans(Resource[R]):
    @endpoint
    def list(self) -> Op[builtins.list[types.Plan]]:
        """Every plan, by name."""
        return Op("GET", "/v1/admin/plans", lambda data: [types.Plan.from_json(p) for p in data])

    @endpoint
    def create(
        self, *, name: str, is_default: bool = False, **limits: Unpack[types.PlanLimits]
    ) -> Op[types.Plan]:
        """A plan with the limits given (keyword arguments named for the quotas); those left out
        are unlimited. ``is_default=True`` makes it the plan of every tenant without one, in
        place of the last default."""
        return Op("POST", "/v1/admin/plans", types.Plan.from_json, json=_plan_body(name, is_default, limits))

    @endpoint
    def get(self, plan_id: str) -> Op[types.Plan]:
        return Op("GET", _plan_path(plan_id), types.Plan.from_json)

    @endpoint
    def replace(
        self, plan_id: str, *, name: str, is_default: bool = False, **limits: Unpack[types.PlanLimits]
    ) -> Op[types.Plan]:
        """Replace the plan whole: limits left out become unlimited, and ``is_default`` is as
        given (False unmakes a default plan). To change one limit, pass the others as they are::

            client.admin.plans.replace(
                plan.id, name=plan.name, is_default=plan.is_default, **(plan.limits | {"models": 5})
            )
        """
        return Op("PUT", _plan_path(plan_id), types.Plan.from_json, json=_plan_body(name, is_default, limits))

    @endpoint
    def delete(self, plan_id: str) -> Op[None]:
        """Delete a plan; refused (409) while any tenant is on it."""
        return Op("DELETE", _plan_path(plan_id), nothing)


class AdminUsers(Resource[R]):
    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.User]]:
        return list_op("/v1/admin/users", types.User.from_json, limit)
