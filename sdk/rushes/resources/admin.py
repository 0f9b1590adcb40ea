"""Platform administration: every tenant and user. Needs a platform admin's key."""

from __future__ import annotations

from datetime import date
from typing import Literal

from rushes import types
from rushes._base import Op
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment
from rushes.resources.usage import usage_op


class Admin(Resource[R]):
    @property
    def tenants(self) -> AdminTenants[R]:
        return AdminTenants(self._requester)

    @property
    def users(self) -> AdminUsers[R]:
        return AdminUsers(self._requester)


class AdminTenants(Resource[R]):
    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.TenantSummary]]:
        return list_op("/v1/admin/tenants", types.TenantSummary.from_json, limit)

    @endpoint
    def get(self, tenant_id: str) -> Op[types.TenantSummary]:
        return Op("GET", f"/v1/admin/tenants/{path_segment(tenant_id)}", types.TenantSummary.from_json)

    @endpoint
    def update(self, tenant_id: str, *, status: Literal["active", "suspended"]) -> Op[types.TenantSummary]:
        """Suspend or reactivate a tenant."""
        return Op(
            "PATCH",
            f"/v1/admin/tenants/{path_segment(tenant_id)}",
            types.TenantSummary.from_json,
            json={"status": status},
        )

    @endpoint
    def usage(
        self, tenant_id: str, *, since: date | str | None = None, until: date | str | None = None
    ) -> Op[types.Usage]:
        """Any tenant's usage, as its members see it with ``client.usage.get``."""
        return usage_op(f"/v1/admin/tenants/{path_segment(tenant_id)}/usage", since, until)


class AdminUsers(Resource[R]):
    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.User]]:
        return list_op("/v1/admin/users", types.User.from_json, limit)
