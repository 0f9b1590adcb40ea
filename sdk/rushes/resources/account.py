"""The caller (``/v1/me``), their tenant with its members, and invitations to answer."""

from __future__ import annotations

from typing import Literal

from rushes import types
from rushes._base import Op, nothing
from rushes._resource import R, Resource, endpoint, list_op, paginated, path_segment


class Auth(Resource[R]):
    @endpoint
    def log_out(self) -> Op[None]:
        """End the client's signed-in session (``rushes.sign_up`` / ``rushes.log_in``) now."""
        return Op("POST", "/v1/auth/logout", nothing)


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
    def invite(
        self, *, email: str, role: Literal["owner", "member"] = "member", expires_in_days: int = 7
    ) -> Op[types.Invitation]:
        """Invite an email to the tenant (owners only); they join once they accept, signed in
        with that email. Send them the returned ``link`` (on this server), shown only now."""
        body = {"email": email, "role": role, "expires_in_days": expires_in_days}
        return Op("POST", "/v1/tenant/invitations", types.Invitation.from_json, json=body)

    @endpoint
    def remove(self, user_id: str) -> Op[None]:
        return Op("DELETE", f"/v1/tenant/members/{path_segment(user_id)}", nothing)


def _token(token_or_link: str) -> str:
    """The token of an invitation's link, given the token or the whole link (its last segment)."""
    return token_or_link.rstrip("/").rsplit("/", 1)[-1]


class Invitations(Resource[R]):
    """Answering an invitation sent to you. Only its link names it: pass the token (or the
    whole link), signed in (by key or session) with the email it was sent to."""

    @endpoint
    def accept(self, *, token: str) -> Op[types.Membership]:
        """Join the invitation's tenant with the role it gives."""
        body = {"token": _token(token)}
        return Op("POST", "/v1/invitations/accept", types.Membership.from_json, json=body)

    @endpoint
    def decline(self, *, token: str) -> Op[None]:
        return Op("POST", "/v1/invitations/decline", nothing, json={"token": _token(token)})
