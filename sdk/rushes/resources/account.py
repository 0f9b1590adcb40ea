"""The caller (``/v1/me``) and their tenant with its members."""

from __future__ import annotations

from typing import Literal

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment


class MeResource(Resource[R]):
    @endpoint
    def get(self) -> Op[types.Me]:
        """Who the API key belongs to, and in which tenant it acts."""
        return Op("GET", "/v1/me", types.Me.from_json)


class Tenant(Resource[R]):
    @property
    def members(self) -> TenantMembers[R]:
        return TenantMembers(self._requester)

    @endpoint
    def get(self) -> Op[types.Tenant]:
        return Op("GET", "/v1/tenant", types.Tenant.from_json)

    @endpoint
    def update(self, *, name: str) -> Op[types.Tenant]:
        """Rename the tenant (owners only)."""
        return Op("PATCH", "/v1/tenant", types.Tenant.from_json, json={"name": name})


class TenantMembers(Resource[R]):
    @paginated
    def list(self, *, limit: int | None = None) -> Op[types.Page[types.Member]]:
        return list_op("/v1/tenant/members", types.Member.from_json, limit)

    @endpoint
    def add(self, *, email: str, role: Literal["owner", "member"] = "member") -> Op[types.Member]:
        """Add an existing user to the tenant (owners only)."""
        return Op("POST", "/v1/tenant/members", types.Member.from_json, json={"email": email, "role": role})

    @endpoint
    def remove(self, user_id: str) -> Op[None]:
        return Op("DELETE", f"/v1/tenant/members/{path_segment(user_id)}", nothing)
