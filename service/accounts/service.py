"""Sign-up, sign-in, members and API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from anyio import to_thread
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, NotFound, Unauthorized
from service.accounts.models import ApiKey, BrowserSession, Membership, Role, Tenant, User
from service.accounts.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    LogIn,
    MemberAdd,
    MemberOut,
    MembershipOut,
    MeOut,
    SignUp,
    TenantOut,
)
from service.auth.authenticate import principal_for
from service.auth.principal import Principal
from service.auth.secrets import hash_password, new_api_key, new_session_token, token_hash, verify_password
from service.db.pagination import PageRequest, fetch_page
from service.db.tenancy import set_tenant, unscoped


async def sign_up(session: AsyncSession, body: SignUp, session_ttl: int) -> tuple[str, Principal]:
    with unscoped(session):
        if await session.scalar(select(User.id).where(User.email == body.email)):
            raise Conflict("An account with this email already exists; sign in instead.")
    password_hash = await to_thread.run_sync(hash_password, body.password)
    user = User(email=body.email, password_hash=password_hash, is_platform_admin=False)
    tenant = Tenant(name=body.tenant_name)
    session.add_all([user, tenant])
    await session.flush()
    set_tenant(session, tenant.id)
    session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.OWNER))
    token = await _open_browser_session(session, user.id, tenant.id, session_ttl)
    await session.commit()
    return token, Principal(user.id, tenant.id, Role.OWNER, is_platform_admin=False)


async def log_in(session: AsyncSession, body: LogIn, session_ttl: int) -> tuple[str, Principal]:
    with unscoped(session):
        user = await session.scalar(select(User).where(User.email == body.email))
        # argon2 takes a few hundred milliseconds by design: off the event loop.
        verified = await to_thread.run_sync(
            verify_password, user.password_hash if user else None, body.password
        )
        if not verified or user is None:
            raise Unauthorized("Wrong email or password.")
        memberships = select(Membership.tenant_id).where(Membership.user_id == user.id)
        if body.tenant_id is not None:
            memberships = memberships.where(Membership.tenant_id == body.tenant_id)
        tenant_id = await session.scalar(memberships.order_by(Membership.created_at).limit(1))
        principal = await principal_for(session, user.id, tenant_id) if tenant_id else None
    if principal is None:
        raise Forbidden("This account belongs to no such tenant.")
    token = await _open_browser_session(session, user.id, principal.tenant_id, session_ttl)
    await session.commit()
    return token, principal


async def _open_browser_session(session: AsyncSession, user_id: UUID, tenant_id: UUID, ttl: int) -> str:
    token = new_session_token()
    session.add(
        BrowserSession(
            token_hash=token_hash(token),
            user_id=user_id,
            tenant_id=tenant_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        )
    )
    return token


async def log_out(session: AsyncSession, token: str | None) -> None:
    if token:
        await session.execute(delete(BrowserSession).where(BrowserSession.token_hash == token_hash(token)))
        await session.commit()


async def me(session: AsyncSession, principal: Principal) -> MeOut:
    with unscoped(session):
        user = await session.get_one(User, principal.user_id)
        rows = (
            await session.execute(
                select(Membership, Tenant)
                .join(Tenant, Tenant.id == Membership.tenant_id)
                .where(Membership.user_id == principal.user_id)
                .order_by(Membership.created_at)
            )
        ).all()
    memberships = [MembershipOut(tenant=TenantOut.model_validate(t), role=m.role) for m, t in rows]
    current = next(m for m in memberships if m.tenant.id == principal.tenant_id)
    return MeOut(
        user_id=user.id,
        email=user.email,
        is_platform_admin=user.is_platform_admin,
        tenant=current.tenant,
        role=current.role,
        memberships=memberships,
    )


async def current_tenant(session: AsyncSession, principal: Principal) -> Tenant:
    return await session.get_one(Tenant, principal.tenant_id)


async def rename_tenant(session: AsyncSession, principal: Principal, name: str) -> Tenant:
    tenant = await current_tenant(session, principal)
    tenant.name = name
    await session.commit()
    return tenant


async def list_members(session: AsyncSession, page: PageRequest) -> tuple[list[MemberOut], int]:
    stmt = select(Membership).order_by(Membership.created_at)
    rows, total = await fetch_page(session, stmt, page)
    with unscoped(session):
        found = await session.execute(
            select(User.id, User.email).where(User.id.in_([m.user_id for m in rows]))
        )
        emails: dict[UUID, str] = {user_id: email for user_id, email in found}
    return [
        MemberOut(user_id=m.user_id, email=emails[m.user_id], role=m.role, created_at=m.created_at)
        for m in rows
    ], total


async def add_member(session: AsyncSession, body: MemberAdd) -> MemberOut:
    with unscoped(session):
        user = await session.scalar(select(User).where(User.email == body.email))
    if user is None:
        raise NotFound("No account has this email; ask them to sign up first.")
    if await session.scalar(select(Membership.id).where(Membership.user_id == user.id)):
        raise Conflict("This account is already a member.")
    membership = Membership(user_id=user.id, role=body.role)
    session.add(membership)
    await session.commit()
    return MemberOut(
        user_id=user.id, email=user.email, role=membership.role, created_at=membership.created_at
    )


async def remove_member(session: AsyncSession, user_id: UUID) -> None:
    membership = await session.scalar(select(Membership).where(Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No such member.")
    if membership.role is Role.OWNER:
        owners = await session.scalar(select(func.count(Membership.id)).where(Membership.role == Role.OWNER))
        if owners == 1:
            raise Conflict("A tenant needs at least one owner; make someone else an owner first.")
    await session.delete(membership)
    await session.commit()


async def set_member_role(session: AsyncSession, user_id: UUID, role: Role) -> MemberOut:
    membership = await session.scalar(select(Membership).where(Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No such member.")
    if membership.role is Role.OWNER and role is not Role.OWNER:
        owners = await session.scalar(select(func.count(Membership.id)).where(Membership.role == Role.OWNER))
        if owners == 1:
            raise Conflict("A tenant needs at least one owner; make someone else an owner first.")
    membership.role = role
    await session.commit()
    with unscoped(session):
        email = await session.scalar(select(User.email).where(User.id == user_id))
    return MemberOut(user_id=user_id, email=email or "", role=role, created_at=membership.created_at)


async def switch_tenant(session: AsyncSession, principal: Principal, token: str, tenant_id: UUID) -> None:
    """Points a signed-in browser at another tenant the same user belongs to."""
    with unscoped(session):
        target = await principal_for(session, principal.user_id, tenant_id)
        if target is None:
            raise NotFound("You are not a member of that tenant.")
        browser = await session.scalar(
            select(BrowserSession).where(BrowserSession.token_hash == token_hash(token))
        )
        if browser is None or browser.user_id != principal.user_id:
            raise NotFound("This browser session has ended; sign in again.")
        browser.tenant_id = tenant_id
        await session.commit()


async def create_api_key(session: AsyncSession, principal: Principal, name: str) -> ApiKeyCreated:
    token, prefix = new_api_key()
    key = ApiKey(name=name, prefix=prefix, secret_hash=token_hash(token), created_by=principal.user_id)
    session.add(key)
    await session.commit()
    return ApiKeyCreated.model_validate({**ApiKeyOut.model_validate(key).model_dump(), "key": token})


async def list_api_keys(session: AsyncSession, page: PageRequest) -> tuple[list[ApiKeyOut], int]:
    rows, total = await fetch_page(session, select(ApiKey).order_by(ApiKey.created_at.desc()), page)
    return [ApiKeyOut.model_validate(k) for k in rows], total


async def get_api_key(session: AsyncSession, key_id: UUID) -> ApiKeyOut:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("No such API key.")
    return ApiKeyOut.model_validate(key)


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: UUID) -> None:
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("No such API key.")
    if key.created_by != principal.user_id and not principal.is_owner:
        raise Forbidden("Only the key's maker or a tenant owner may revoke it.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await session.commit()
