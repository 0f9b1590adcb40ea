"""Turns a request's credentials (API key or session cookie) into a Principal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden
from service.accounts.models import ApiKey, BrowserSession, Membership, Tenant, TenantStatus, User
from service.auth.principal import Principal
from service.auth.secrets import api_key_prefix, token_hash, tokens_match
from service.db.tenancy import unscoped

# Writing last-used on every request would turn every read into a write.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


async def principal_for(
    session: AsyncSession, user_id: UUID, tenant_id: UUID, api_key_id: UUID | None = None
) -> Principal | None:
    row = (
        await session.execute(
            select(User, Membership, Tenant)
            .join(Membership, Membership.user_id == User.id)
            .join(Tenant, Tenant.id == Membership.tenant_id)
            .where(User.id == user_id, Membership.tenant_id == tenant_id)
        )
    ).one_or_none()
    if row is None:
        return None
    user, membership, tenant = row
    # A past-due tenant still signs in and reads its work; admission refuses it new work (402).
    if tenant.status is TenantStatus.SUSPENDED and not user.is_platform_admin:
        raise Forbidden("This tenant is suspended; contact support.")
    return Principal(user.id, tenant.id, membership.role, user.is_platform_admin, api_key_id)


async def authenticate_api_key(session: AsyncSession, token: str) -> Principal | None:
    prefix = api_key_prefix(token)
    if prefix is None:
        return None
    with unscoped(session):
        key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        if key is None or key.revoked_at is not None or not tokens_match(key.secret_hash, token):
            return None
        # A key acts as the member who made it, with that member's current role; a
        # member who leaves takes their keys' powers with them.
        principal = await principal_for(session, key.created_by, key.tenant_id, key.id)
        now = datetime.now(UTC)
        if principal is not None and (
            key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION
        ):
            key.last_used_at = now
            await session.commit()
    return principal


async def authenticate_session_cookie(session: AsyncSession, token: str) -> Principal | None:
    with unscoped(session):
        browser = await session.scalar(
            select(BrowserSession).where(
                BrowserSession.token_hash == token_hash(token), BrowserSession.expires_at > datetime.now(UTC)
            )
        )
        if browser is None:
            return None
        return await principal_for(session, browser.user_id, browser.tenant_id)
