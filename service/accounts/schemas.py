from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, Field

from service.accounts.models import InvitationStatus, Role, TenantStatus
from service.schemas import Input, Output

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value.lower()


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Password = Annotated[str, Field(min_length=10, max_length=256)]
Name = Annotated[str, Field(min_length=1, max_length=120)]


class SignUp(Input):
    email: Email
    password: Password
    tenant_name: Name


class LogIn(Input):
    email: Email
    password: Annotated[str, Field(max_length=256)]
    tenant_id: UUID | None = None


class TenantOut(Output):
    id: UUID
    name: str
    status: TenantStatus
    created_at: datetime


class TenantUpdate(Input):
    name: Name


class MembershipOut(Output):
    tenant: TenantOut
    role: Role


class MeOut(Output):
    user_id: UUID
    email: str
    is_platform_admin: bool
    tenant: TenantOut
    role: Role
    memberships: list[MembershipOut]


class MemberOut(Output):
    user_id: UUID
    email: str
    role: Role
    created_at: datetime


class MemberUpdate(Input):
    role: Role


class ApiKeyCreate(Input):
    name: Name


class ApiKeyOut(Output):
    id: UUID
    name: str
    prefix: str
    created_by: UUID
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret. Shown once: store it now.")


class InvitationCreate(Input):
    email: Email
    role: Role = Role.MEMBER
    expires_in_days: Annotated[int, Field(ge=1, le=30)] = 7


class InvitationOut(Output):
    """An invitation as its tenant's owners see it."""

    id: UUID
    email: str
    role: Role
    status: InvitationStatus
    invited_by: UUID
    expires_at: datetime
    created_at: datetime


class InvitationCreated(InvitationOut):
    token: str = Field(description="The link's secret, shown once: the invitee opens `link` to accept.")
    link: str = Field(description="The path of the invitation's page on this server: /invitations/{token}.")


class InvitationAnswer(Input):
    """Accepting or declining: the invitation is named by its link's secret, never its id."""

    token: str = Field(
        min_length=1,
        max_length=128,
        description="The token of the invitation's link (`/invitations/{token}`), as its owner sent it.",
    )


class InvitationForMe(Output):
    """An open invitation as the person it is addressed to sees it on its link's page."""

    id: UUID
    tenant: TenantOut
    role: Role
    expires_at: datetime
    created_at: datetime
