from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, Gone
from core.settings import Settings
from core.storage import ObjectStorage
from service.accounts import service
from service.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    InvitationAnswer,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
    LogIn,
    MemberOut,
    MembershipOut,
    MemberUpdate,
    MeOut,
    SignUp,
    TenantOut,
    TenantUpdate,
)
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest, page_body
from service.idempotency.middleware import SHOWN_ONCE
from service.openapi import problem
from service.schemas import Page
from service.tenants import service as tenants
from service.tenants.schemas import TenantDeletion


def client_address(request: Request[Any, Any, Any]) -> str:
    """The address sign-in throttling keys on: the peer, or the client a trusted proxy names
    (uvicorn's ``proxy_headers`` with ``FORWARDED_ALLOW_IPS`` rewrites the peer)."""
    return request.client.host if request.client else "unknown"


def session_cookie(settings: NamedDependency[Settings], token: str, max_age: int) -> Cookie:
    return Cookie(
        key=settings.auth.session_cookie,
        value=token,
        max_age=max_age,
        httponly=True,
        secure=settings.auth.secure_cookies,
        samesite="strict",
        path="/",
    )


SIGN_IN_THROTTLED = problem(
    "Too many failed sign-ins (or refused sign-ups) for this email or from this address: retry "
    "after Retry-After seconds."
)


# Emails are never verified, so neither an email nor an invitation's id is proof of being
# its invitee: the link's secret is, together with the email.
INVITEE_ANSWERS = (
    "The invitation is named by its link's token (`/invitations/{token}`), and only an account "
    "signed in with the invited email may answer it; to anyone else it does not exist (404)."
)


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]

    @post("/signup", operation_id="signUp", opt=access(Access.PUBLIC), responses={429: SIGN_IN_THROTTLED})
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignUp],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[MeOut]:
        if not settings.auth.allow_signup:
            raise Forbidden("Sign-up is closed on this server; ask an admin for an invitation.")
        token, principal = await service.sign_up(
            db_session, data, settings.auth.session_ttl_seconds, client_address(request)
        )
        return await self._signed_in(db_session, settings, token, principal, status=201)

    @post("/login", operation_id="logIn", opt=access(Access.PUBLIC), responses={429: SIGN_IN_THROTTLED})
    async def log_in(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LogIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[MeOut]:
        token, principal = await service.log_in(
            db_session, data, settings.auth.session_ttl_seconds, client_address(request)
        )
        return await self._signed_in(db_session, settings, token, principal, status=200)

    @staticmethod
    async def _signed_in(
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        token: str,
        principal: NamedDependency[Principal],
        status: int,
    ) -> Response[MeOut]:
        body = await service.me(db_session, principal)
        return Response(
            body,
            status_code=status,
            cookies=[session_cookie(settings, token, settings.auth.session_ttl_seconds)],
        )

    @post(
        "/logout",
        operation_id="logOut",
        status_code=HTTP_204_NO_CONTENT,
        opt=access(Access.MEMBER),
        # The answer is a Response only to clear the cookie; it has no body.
        responses={
            HTTP_204_NO_CONTENT: ResponseSpec(None, description="Signed out; the session cookie is cleared.")
        },
    )
    async def log_out(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        await service.log_out(db_session, request.cookies.get(settings.auth.session_cookie))
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=[session_cookie(settings, "", 0)])


class MeController(Controller):
    path = "/v1"
    tags = ["account"]

    @get("/me", operation_id="getMe", opt=access(Access.MEMBER))
    async def get_me(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> MeOut:
        return await service.me(db_session, principal)

    @get("/tenant", operation_id="getTenant", opt=access(Access.MEMBER))
    async def get_tenant(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> TenantOut:
        return TenantOut.model_validate(await service.current_tenant(db_session, principal))

    @patch("/tenant", operation_id="updateTenant", opt=access(Access.OWNER))
    async def update_tenant(
        self,
        data: JSONBody[TenantUpdate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> TenantOut:
        return TenantOut.model_validate(await service.rename_tenant(db_session, principal, data.name))

    # Here, not in service.tenants' controller: Litestar answers OPTIONS once per path and controller.
    @delete("/tenant", operation_id="deleteTenant", opt=access(Access.OWNER), description=tenants.DELETION)
    async def delete_tenant(
        self,
        data: JSONBody[TenantDeletion],
        db_session: NamedDependency[AsyncSession],
        storage: NamedDependency[ObjectStorage],
        principal: NamedDependency[Principal],
    ) -> None:
        await tenants.delete_own_tenant(db_session, storage, principal, data.confirm)

    @get("/tenant/members", operation_id="listMembers", opt=access(Access.MEMBER))
    async def list_members(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[MemberOut]:
        items, total = await service.list_members(db_session, page)
        return Page[MemberOut].model_validate(page_body(items, total, page))

    @post(
        "/tenant/members",
        operation_id="addMember",
        opt=access(Access.OWNER),
        deprecated=True,
        description="Gone: members join by invitation (`POST /v1/tenant/invitations`), which they accept.",
        responses={410: problem("Members join by invitation now; this route adds no one.")},
    )
    async def add_member(self) -> None:
        raise Gone(
            "Members are no longer added directly: invite them with POST /v1/tenant/invitations "
            "and they accept the invitation."
        )

    @post("/tenant/invitations", operation_id="createInvitation", opt={**access(Access.OWNER), **SHOWN_ONCE})
    async def create_invitation(
        self,
        data: JSONBody[InvitationCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> InvitationCreated:
        return await service.invite(db_session, principal, data)

    @get("/tenant/invitations", operation_id="listInvitations", opt=access(Access.OWNER))
    async def list_invitations(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[InvitationOut]:
        items, total = await service.list_invitations(db_session, page)
        return Page[InvitationOut].model_validate(page_body(items, total, page))

    @delete(
        "/tenant/invitations/{invitation_id:uuid}", operation_id="revokeInvitation", opt=access(Access.OWNER)
    )
    async def revoke_invitation(
        self, invitation_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> None:
        await service.revoke_invitation(db_session, invitation_id)

    @post(
        "/invitations/accept",
        operation_id="acceptInvitation",
        status_code=HTTP_200_OK,
        opt=access(Access.MEMBER),
        description=INVITEE_ANSWERS + " Accepting joins its tenant with its role.",
    )
    async def accept_invitation(
        self,
        data: JSONBody[InvitationAnswer],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> MembershipOut:
        return await service.accept_invitation(db_session, principal, data.token)

    @post(
        "/invitations/decline",
        operation_id="declineInvitation",
        status_code=HTTP_204_NO_CONTENT,
        opt=access(Access.MEMBER),
        description=INVITEE_ANSWERS,
    )
    async def decline_invitation(
        self,
        data: JSONBody[InvitationAnswer],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await service.decline_invitation(db_session, principal, data.token)

    @patch("/tenant/members/{user_id:uuid}", operation_id="updateMember", opt=access(Access.OWNER))
    async def update_member(
        self, user_id: FromPath[UUID], data: JSONBody[MemberUpdate], db_session: NamedDependency[AsyncSession]
    ) -> MemberOut:
        return await service.set_member_role(db_session, user_id, data.role)

    @delete("/tenant/members/{user_id:uuid}", operation_id="removeMember", opt=access(Access.OWNER))
    async def remove_member(self, user_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]) -> None:
        await service.remove_member(db_session, user_id)


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["api keys"]

    @post(operation_id="createApiKey", opt={**access(Access.MEMBER), **SHOWN_ONCE})
    async def create(
        self,
        data: JSONBody[ApiKeyCreate],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> ApiKeyCreated:
        return await service.create_api_key(db_session, principal, data.name)

    @get(operation_id="listApiKeys", opt=access(Access.MEMBER))
    async def list_keys(
        self, db_session: NamedDependency[AsyncSession], page: NamedDependency[PageRequest]
    ) -> Page[ApiKeyOut]:
        items, total = await service.list_api_keys(db_session, page)
        return Page[ApiKeyOut].model_validate(page_body(items, total, page))

    @delete("/{key_id:uuid}", operation_id="revokeApiKey", opt=access(Access.MEMBER))
    async def revoke(
        self,
        key_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> None:
        await service.revoke_api_key(db_session, principal, key_id)
