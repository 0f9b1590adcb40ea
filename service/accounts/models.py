from __future__ import annotations

import enum
from datetime import datetime
from uuid import UUID

from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service.db.base import Base, TenantScoped


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    # Starts nothing new (402) but keeps reading its work: billing sets it when a payment fails.
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"


class Role(enum.StrEnum):
    OWNER = "owner"
    MEMBER = "member"


class Tenant(Base):
    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[TenantStatus] = mapped_column(
        Enum(TenantStatus, native_enum=False, length=16), default=TenantStatus.ACTIVE
    )
    # None: the deployment's default plan (``service.quotas``).
    plan_id: Mapped[UUID | None] = mapped_column(ForeignKey("plan.id", ondelete="RESTRICT"), default=None)
    # An admin's per-tenant limits over the plan's: quota name -> limit, null meaning unlimited.
    quota_overrides: Mapped[dict[str, int | None]] = mapped_column(JsonB, default=dict)
    # Bumped by every admission: the write that serialises a tenant's admissions (``quotas.admission``).
    admissions: Mapped[int] = mapped_column(BigInteger, default=0)


class User(Base):
    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)


class Membership(TenantScoped, Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))


class ApiKey(TenantScoped, Base):
    """A tenant's API key. Only a SHA-256 of the secret is kept: keys are 256-bit random,
    so a fast hash is as safe as a slow one and lets every request verify in one lookup."""

    __tablename__ = "api_key"

    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class BrowserSession(Base):
    """A signed-in browser. Reached only by the hash of its cookie, never by tenant."""

    __tablename__ = "browser_session"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"


class Invitation(TenantScoped, Base):
    """An owner's offer of membership to an email address; the person signed in with that
    email accepts or declines it. Only a SHA-256 of its link token is kept, like API keys."""

    __tablename__ = "invitation"

    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    status: Mapped[InvitationStatus] = mapped_column(
        Enum(InvitationStatus, native_enum=False, length=16), default=InvitationStatus.PENDING
    )
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    settled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class SignInThrottle(Base):
    """Recent failed sign-ins (and refused sign-ups) under one key: a client address, an
    (email, address) pair or an email. Kept in the database so that every API replica sees
    the same counts (``service.accounts.throttle``). The key is a SHA-256 of what it names,
    so the table keeps no email address a stranger typed."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Set on (email, address) keys when that email signed in from that address: the
    # email-wide cap then spares the address, so others' failures cannot lock its owner out.
    last_success_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
