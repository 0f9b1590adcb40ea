"""Sign-up, sign-in, members, invitations and API keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from anyio import to_thread
from sqlalchemy import ColumnElement, CursorResult, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Forbidden, NotFound, Unauthorized
from service.accounts import throttle
from service.accounts.models import (
    ApiKey,
    BrowserSession,
    Invitation,
    InvitationStatus,
    Membership,
    Role,
    Tenant,
    User,
)
from service.accounts.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    InvitationCreate,
    InvitationCreated,
    InvitationForMe,
    InvitationOut,
    LogIn,
    MemberOut,
    MembershipOut,
    MeOut,
    SignUp,
    TenantOut,
)
from service.audit import record as audit
from service.auth.authenticate import principal_for
from service.auth.principal import Principal
from service.auth.secrets import (
    hash_password,
    new_api_key,
    new_link_token,
    new_session_token,
    token_hash,
    verify_password,
)
from service.db.pagination import PageRequest, fetch_page
from service.db.tenancy import set_tenant, unscoped

# One text for every refused sign-up. Without email, Rushes cannot answer a sign-up for a
# taken email exactly as it answers a fresh one (that one signs the caller in), so the refusal
# names no cause, takes as long as a success (the password is hashed first either way), and
# counts against the client's address like a failed sign-in (``throttle``), which keeps anyone
# from listing accounts this way at more than a trickle.
SIGN_UP_REFUSED = (
    "We could not create an account with these details. If you already have one, sign in instead."
)


async def sign_up(
    session: AsyncSession, body: SignUp, session_ttl: int, address: str
) -> tuple[str, Principal]:
    keys = throttle.sign_up_keys(address)
    await throttle.refuse_if_waiting(session, keys)
    password_hash = await to_thread.run_sync(hash_password, body.password)
    user = User(email=body.email, password_hash=password_hash, is_platform_admin=False)
    tenant = Tenant(name=body.tenant_name)
    session.add_all([user, tenant])
    try:
        await session.flush()
    except IntegrityError:  # the email has an account
        await session.rollback()
        await throttle.count_attempt(session, keys)
        raise Conflict(SIGN_UP_REFUSED) from None
    set_tenant(session, tenant.id)
    session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=Role.OWNER))
    token = await _open_browser_session(session, user.id, tenant.id, session_ttl)
    await audit.record(
        session,
        "tenant.created",
        tenant_id=tenant.id,
        object_type="tenant",
        object_id=tenant.id,
        detail={"name": tenant.name},
        user_id=user.id,
        label=user.email,
    )
    await session.commit()
    return token, Principal(user.id, tenant.id, Role.OWNER, is_platform_admin=False)


async def log_in(session: AsyncSession, body: LogIn, session_ttl: int, address: str) -> tuple[str, Principal]:
    """The one sign-in, for the API and the pages alike: throttled (``throttle``), and the
    same answer, after the same password check, whether or not the email has an account."""
    keys = throttle.sign_in_keys(body.email, address)
    await throttle.count_attempt(session, keys)
    with unscoped(session):
        user = await session.scalar(select(User).where(User.email == body.email))
        # argon2 takes a few hundred milliseconds by design: off the event loop. An unknown
        # email is checked against a dummy hash, so it takes as long as a known one.
        verified = await to_thread.run_sync(
            verify_password, user.password_hash if user else None, body.password
        )
        tenant_id = await _sign_in_tenant(session, user.id, body.tenant_id) if user else None
        if not verified or user is None:
            await _sign_in_failed(session, user, tenant_id, "wrong email or password")
            raise Unauthorized("Wrong email or password.")
        await throttle.succeeded(session, keys)
        try:
            principal = await principal_for(session, user.id, tenant_id) if tenant_id else None
        except Forbidden:
            await _sign_in_failed(session, user, tenant_id, "tenant suspended")
            raise
    if principal is None:
        await _sign_in_failed(session, user, None, "not a member of the tenant")
        raise Forbidden("This account belongs to no such tenant.")
    token = await _open_browser_session(session, user.id, principal.tenant_id, session_ttl)
    await _sign_in_recorded(session, "sign_in.succeeded", user, principal.tenant_id, {})
    await session.commit()
    return token, principal


async def _sign_in_tenant(session: AsyncSession, user_id: UUID, wanted: UUID | None) -> UUID | None:
    """The tenant a sign-in opens: the one asked for if the account is its member, else the
    account's first."""
    memberships = select(Membership.tenant_id).where(Membership.user_id == user_id)
    if wanted is not None:
        memberships = memberships.where(Membership.tenant_id == wanted)
    tenant_id: UUID | None = await session.scalar(memberships.order_by(Membership.created_at).limit(1))
    return tenant_id


async def _sign_in_failed(
    session: AsyncSession, user: User | None, tenant_id: UUID | None, reason: str
) -> None:
    """Records a refused sign-in and commits it: the refusal that follows rolls back nothing
    already committed. An unknown email is recorded without it (no tenant's owner reads that
    entry, and the log keeps no address a stranger typed), for admins to see the attempt."""
    await _sign_in_recorded(session, "sign_in.failed", user, tenant_id, {"reason": reason})
    await session.commit()


async def _sign_in_recorded(
    session: AsyncSession, action: str, user: User | None, tenant_id: UUID | None, detail: dict[str, str]
) -> None:
    await audit.record(
        session,
        action,
        tenant_id=tenant_id,
        object_type="user" if user else None,
        object_id=user.id if user else None,
        detail=detail,
        user_id=user.id if user else None,
        label=user.email if user else None,
    )


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
    if not token:
        return
    ended = await session.execute(
        delete(BrowserSession)
        .where(BrowserSession.token_hash == token_hash(token))
        .returning(BrowserSession.user_id, BrowserSession.tenant_id)
    )
    for user_id, tenant_id in ended:
        await audit.record(session, "sign_out", tenant_id=tenant_id, object_type="user", object_id=user_id)
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


async def remove_member(session: AsyncSession, user_id: UUID) -> None:
    membership = await session.scalar(select(Membership).where(Membership.user_id == user_id))
    if membership is None:
        raise NotFound("No such member.")
    if membership.role is Role.OWNER:
        owners = await session.scalar(select(func.count(Membership.id)).where(Membership.role == Role.OWNER))
        if owners == 1:
            raise Conflict("A tenant needs at least one owner; make someone else an owner first.")
    await session.delete(membership)
    # Keys act as their maker; a member who leaves loses them for good, so rejoining later
    # (by a new invitation) does not bring an old, perhaps leaked, key back to life. Changed
    # through the ORM, one row at a time, so the audit log records each revocation.
    now = datetime.now(UTC)
    for key in await session.scalars(
        select(ApiKey).where(ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
    ):
        key.revoked_at = now
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
        # Recorded in the tenant switched to, like a sign-in to it; the one left is not named,
        # since the owners reading this log may not know of it.
        await audit.record(
            session, "sign_in.switched", tenant_id=tenant_id, object_type="user", object_id=principal.user_id
        )
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


# The one answer to any invitation the caller may not answer, whatever the reason, so that
# it says nothing of which invitations exist or for whom.
NOT_YOURS = "No such invitation for you, or it is no longer open."


def _open(now: datetime) -> list[ColumnElement[bool]]:
    return [Invitation.status == InvitationStatus.PENDING, Invitation.expires_at > now]


async def invite(session: AsyncSession, principal: Principal, body: InvitationCreate) -> InvitationCreated:
    """An invitation to the caller's tenant. The answer is the same whether or not the email
    has an account; only a current member's email is refused, which its owners see anyway."""
    member = await session.scalar(
        select(Membership.id).join(User, User.id == Membership.user_id).where(User.email == body.email)
    )
    if member is not None:
        raise Conflict("This email is already a member of this tenant.")
    # One open invitation per email: inviting again replaces the last (a new link, role,
    # expiry). Through the ORM, so the audit log records the replaced one as revoked.
    now = datetime.now(UTC)
    for replaced in await session.scalars(
        select(Invitation).where(
            Invitation.email == body.email, Invitation.status == InvitationStatus.PENDING
        )
    ):
        replaced.status = InvitationStatus.REVOKED
        replaced.settled_at = now
    token = new_link_token()
    invitation = Invitation(
        email=body.email,
        role=body.role,
        token_hash=token_hash(token),
        invited_by=principal.user_id,
        expires_at=now + timedelta(days=body.expires_in_days),
    )
    session.add(invitation)
    await session.commit()
    shown = InvitationOut.model_validate(invitation).model_dump()
    return InvitationCreated.model_validate({**shown, "token": token, "link": f"/invitations/{token}"})


async def list_invitations(session: AsyncSession, page: PageRequest) -> tuple[list[InvitationOut], int]:
    """The tenant's open invitations, newest first."""
    stmt = select(Invitation).where(*_open(datetime.now(UTC))).order_by(Invitation.created_at.desc())
    rows, total = await fetch_page(session, stmt, page)
    return [InvitationOut.model_validate(i) for i in rows], total


async def revoke_invitation(session: AsyncSession, invitation_id: UUID) -> None:
    invitation = await session.get(Invitation, invitation_id)
    if invitation is None:
        raise NotFound("No such invitation.")
    if invitation.status is InvitationStatus.PENDING:
        invitation.status = InvitationStatus.REVOKED
        invitation.settled_at = datetime.now(UTC)
        await session.commit()
    elif invitation.status is not InvitationStatus.REVOKED:
        raise Conflict(f"The invitation was already {invitation.status}.")


async def invitation_for_me(session: AsyncSession, principal: Principal, token: str) -> InvitationForMe:
    """The open invitation whose link carries ``token``, if it names the caller's email. Both
    must hold: emails are never verified, so an email alone (or an id) answers nothing, and a
    link alone is no use to any other account. Anything else is a 404 alike. The token is
    looked up by its hash, as it is stored, so the look-up reveals nothing of it."""
    with unscoped(session):
        email = select(User.email).where(User.id == principal.user_id).scalar_subquery()
        row = (
            await session.execute(
                select(Invitation, Tenant)
                .join(Tenant, Tenant.id == Invitation.tenant_id)
                .where(
                    Invitation.token_hash == token_hash(token),
                    Invitation.email == email,
                    *_open(datetime.now(UTC)),
                )
            )
        ).first()
    if row is None:
        raise NotFound(NOT_YOURS)
    invitation, tenant = row
    return InvitationForMe(
        id=invitation.id,
        tenant=TenantOut.model_validate(tenant),
        role=invitation.role,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


async def accept_invitation(session: AsyncSession, principal: Principal, token: str) -> MembershipOut:
    """Joins the tenant of the invitation ``token`` opens, with its role."""
    invitation = await _settle(session, principal, token, InvitationStatus.ACCEPTED)
    with unscoped(session):
        if await principal_for(session, principal.user_id, invitation.tenant.id) is not None:
            await session.rollback()
            raise Conflict("You are already a member of this tenant.")
        session.add(
            Membership(tenant_id=invitation.tenant.id, user_id=principal.user_id, role=invitation.role)
        )
        await session.commit()
    return MembershipOut(tenant=invitation.tenant, role=invitation.role)


async def decline_invitation(session: AsyncSession, principal: Principal, token: str) -> None:
    await _settle(session, principal, token, InvitationStatus.DECLINED)
    await session.commit()


async def _settle(
    session: AsyncSession, principal: Principal, token: str, status: InvitationStatus
) -> InvitationForMe:
    """Settles the caller's open invitation that ``token`` opens by one conditional update, so
    that it is used once even when two answers race; the caller commits."""
    invitation = await invitation_for_me(session, principal, token)
    now = datetime.now(UTC)
    with unscoped(session):
        settled = await session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, *_open(now))
            .values(status=status, settled_at=now)
        )
    if cast(CursorResult[Any], settled).rowcount != 1:
        raise NotFound(NOT_YOURS)
    # A conditional update is no flush the audit log sees: the answer is recorded here, in the
    # inviting tenant, as the flush would record an owner's revocation.
    await audit.record(
        session,
        "invitation.status_set",
        tenant_id=invitation.tenant.id,
        object_type="invitation",
        object_id=invitation.id,
        detail={"changed": ["status"], "role": invitation.role.value, "status": status.value},
    )
    return invitation
