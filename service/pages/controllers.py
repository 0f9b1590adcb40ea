"""Page handlers: a few lines each, calling the same services as the API's controllers.

Every route declares its access level in ``opt``, exactly like the API's; the app-wide guard
enforces it. Errors raised here render as pages (``service/pages/errors.py``). This module
holds the public and account pages and mounts every page module (``pages_router``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError, NotFound
from core.settings import Settings
from service.accounts import service as accounts
from service.accounts.controllers import client_address, session_cookie
from service.accounts.models import Role
from service.accounts.schemas import ApiKeyCreate, InvitationCreate, LogIn, MemberUpdate, SignUp
from service.auth.principal import Principal
from service.datasets import service as datasets
from service.db.pagination import PageRequest
from service.pages.admin import AdminPages
from service.pages.audit import AdminAuditPages, AuditPages
from service.pages.compare import ComparePages
from service.pages.datasets import DatasetPages
from service.pages.errors import page_exception_handlers
from service.pages.fine_tunes import FineTunePages
from service.pages.footage import FootagePages
from service.pages.generations import GenerationPages
from service.pages.models import ModelPages
from service.pages.shared import (
    LISTED,
    MEMBER,
    NOTICES,
    OWNER,
    PUBLIC,
    form_fields,
    is_htmx,
    local_path,
    notice_text,
    redirect,
    shell,
    words,
)
from service.pages.templates import page
from service.pages.tenant import TenantPages
from service.pages.usage import UsagePages
from service.pages.webhooks import WebhookPages
from service.uploads import service as uploads

LENGTH_RULE = "At least 10 characters (256 at most). A few unrelated words make a good one."


class PublicPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/", opt=PUBLIC)
    async def home(self) -> Template:
        return page("home.html")

    @get("/signin", opt=PUBLIC)
    async def sign_in_form(
        self, next: FromQuery[str | None] = None, notice: FromQuery[str | None] = None
    ) -> Template:
        return page("signin.html", next=local_path(next), email="", errors=[], notice=notice_text(notice))

    @staticmethod
    def _refused(exc: DomainError) -> dict[str, Any]:
        """A refusal's status and headers for the page (a throttled sign-in's 429 and
        ``Retry-After`` among them); validation and other refusals are a 400."""
        status = exc.status if exc.status == 429 else 400
        return {"status_code": status, "headers": exc.headers}

    @post("/signin", opt=PUBLIC)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        form = await form_fields(request)
        next_path = local_path(form.get("next"))
        refusal: dict[str, Any] = {"status_code": 400}
        try:
            body = LogIn.model_validate(
                {"email": form.get("email", ""), "password": form.get("password", "")}
            )
            token, _ = await accounts.log_in(
                db_session, body, settings.auth.session_ttl_seconds, client_address(request)
            )
        except ValidationError as exc:
            errors = words(exc)
        except DomainError as exc:
            errors, refusal = [exc.detail], self._refused(exc)
        else:
            cookie = session_cookie(settings, token, settings.auth.session_ttl_seconds)
            return redirect(next_path, cookies=[cookie])
        email = form.get("email", "")
        return page("signin.html", **refusal, next=next_path, email=email, errors=errors, notice=None)

    @get("/signup", opt=PUBLIC)
    async def sign_up_form(
        self, settings: NamedDependency[Settings], next: FromQuery[str | None] = None
    ) -> Template:
        return page(
            "signup.html",
            values={},
            errors=[],
            rule=LENGTH_RULE,
            open=settings.auth.allow_signup,
            next=local_path(next),
        )

    @post("/signup", opt=PUBLIC)
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        form = await form_fields(request)
        values = {"email": form.get("email", ""), "tenant_name": form.get("tenant_name", "")}
        next_path = local_path(form.get("next"))
        errors: list[str] = []
        refusal: dict[str, Any] = {"status_code": 400}
        if settings.auth.allow_signup:
            try:
                body = SignUp.model_validate({**values, "password": form.get("password", "")})
                token, _ = await accounts.sign_up(
                    db_session, body, settings.auth.session_ttl_seconds, client_address(request)
                )
            except ValidationError as exc:
                errors = words(exc)
            except DomainError as exc:
                errors, refusal = [exc.detail], self._refused(exc)
            else:
                cookie = session_cookie(settings, token, settings.auth.session_ttl_seconds)
                return redirect(next_path, cookies=[cookie])
        return page(
            "signup.html",
            **refusal,
            values=values,
            errors=errors,
            rule=LENGTH_RULE,
            open=settings.auth.allow_signup,
            next=next_path,
        )

    @get("/invitations/{token:str}", opt=MEMBER)
    async def invitation(
        self,
        token: FromPath[str],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        """An invitation's link. Signed out, the guard sends the visitor to sign in (or up)
        and back here; signed in, it shows the invitation to accept or decline."""
        invitation = await accounts.invitation_for_me(db_session, principal, token)
        layout = await shell(db_session, principal, invitation=invitation, token=token)
        return page("invitation.html", **layout)

    @post("/signout", opt=MEMBER)
    async def sign_out(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        await accounts.log_out(db_session, request.cookies.get(settings.auth.session_cookie))
        return redirect("/signin?notice=signed-out", cookies=[session_cookie(settings, "", 0)])


class AppPages(Controller):
    path = "/app"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def overview(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        _, assets = await uploads.list_assets(db_session, PageRequest(limit=1, offset=0))
        _, sets = await datasets.list_datasets(db_session, PageRequest(limit=1, offset=0))
        _, keys = await accounts.list_api_keys(db_session, PageRequest(limit=1, offset=0))
        counts = {"assets": assets, "datasets": sets, "keys": keys}
        return page(
            "overview.html", **await shell(db_session, principal, counts=counts, notice=notice_text(notice))
        )

    @post("/switch-tenant", opt=MEMBER)
    async def switch_tenant(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        form = await form_fields(request)
        try:
            tenant_id = UUID(form.get("tenant_id", ""))
        except ValueError:
            raise NotFound("You are not a member of that tenant.") from None
        token = request.cookies.get(settings.auth.session_cookie, "")
        await accounts.switch_tenant(db_session, principal, token, tenant_id)
        return redirect("/app?notice=switched")

    @get("/members", opt=MEMBER)
    async def members(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._members_page(db_session, principal, notice=notice_text(notice))

    @staticmethod
    async def _members_page(
        db_session: AsyncSession, principal: Principal, status_code: int = 200, **context: Any
    ) -> Template:
        members, _ = await accounts.list_members(db_session, LISTED)
        invitations = await accounts.list_invitations(db_session, LISTED) if principal.is_owner else ([], 0)
        context = {"errors": [], "email": "", "notice": None, "created": None, **context}
        layout = await shell(
            db_session, principal, members=members, invitations=invitations[0], roles=list(Role), **context
        )
        return page("members.html", status_code=status_code, **layout)

    @post("/members/invitations", opt=OWNER)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        form = await form_fields(request)
        try:
            body = InvitationCreate.model_validate(
                {"email": form.get("email", ""), "role": form.get("role", "member")}
            )
            created = await accounts.invite(db_session, principal, body)
        except ValidationError as exc:
            errors = words(exc)
        except DomainError as exc:
            errors = [exc.detail]
        else:
            # The link holds a secret shown only now: the page shows it in full to copy and send.
            link = str(request.base_url).rstrip("/") + created.link
            return await self._members_page(
                db_session, principal, status_code=201, created=created, link=link
            )
        return await self._members_page(
            db_session, principal, status_code=400, errors=errors, email=form.get("email", "")
        )

    @post("/members/invitations/{invitation_id:uuid}/revoke", opt=OWNER)
    async def revoke_invitation(
        self, invitation_id: FromPath[UUID], db_session: NamedDependency[AsyncSession]
    ) -> Redirect:
        await accounts.revoke_invitation(db_session, invitation_id)
        return redirect("/app/members?notice=invitation-revoked")

    # Answered by the link's token (a hidden field of the link's page), as in the API.
    @post("/invitations/accept", opt=MEMBER)
    async def accept_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Redirect:
        form = await form_fields(request)
        joined = await accounts.accept_invitation(db_session, principal, form.get("token", ""))
        # The browser moves to the tenant just joined: that is where the invitee means to work.
        token = request.cookies.get(settings.auth.session_cookie, "")
        await accounts.switch_tenant(db_session, principal, token, joined.tenant.id)
        return redirect("/app?notice=invitation-accepted")

    @post("/invitations/decline", opt=MEMBER)
    async def decline_invitation(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Redirect:
        form = await form_fields(request)
        await accounts.decline_invitation(db_session, principal, form.get("token", ""))
        return redirect("/app?notice=invitation-declined")

    @post("/members/{user_id:uuid}/role", opt=OWNER)
    async def change_role(
        self,
        user_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
    ) -> Redirect:
        form = await form_fields(request)
        try:
            body = MemberUpdate.model_validate({"role": form.get("role", "")})
        except ValidationError:
            raise NotFound("There is no such role.") from None
        await accounts.set_member_role(db_session, user_id, body.role)
        return redirect("/app/members?notice=role-changed")

    @post("/members/{user_id:uuid}/remove", opt=OWNER)
    async def remove_member(
        self,
        user_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
    ) -> Template | Redirect:
        await accounts.remove_member(db_session, user_id)
        if is_htmx(request):
            return page("_notice.html", notice=NOTICES["member-removed"], kind="ok", oob=True)
        return redirect("/app/members?notice=member-removed")

    @get("/api-keys", opt=MEMBER)
    async def api_keys(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        return await self._keys_page(db_session, principal, notice=notice_text(notice))

    @staticmethod
    async def _keys_page(
        db_session: AsyncSession, principal: Principal, status_code: int = 200, **context: Any
    ) -> Template:
        keys, _ = await accounts.list_api_keys(db_session, LISTED)
        members, _ = await accounts.list_members(db_session, LISTED)
        makers = {m.user_id: m.email for m in members}
        context = {"errors": [], "created": None, "notice": None, **context}
        layout = await shell(db_session, principal, keys=keys, makers=makers, **context)
        return page("api_keys.html", status_code=status_code, **layout)

    @post("/api-keys", opt=MEMBER)
    async def create_api_key(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        form = await form_fields(request)
        try:
            body = ApiKeyCreate.model_validate({"name": form.get("name", "")})
        except ValidationError as exc:
            return await self._keys_page(db_session, principal, status_code=400, errors=words(exc))
        created = await accounts.create_api_key(db_session, principal, body.name)
        return await self._keys_page(db_session, principal, status_code=201, created=created)

    @get("/api-keys/{key_id:uuid}", opt=MEMBER)
    async def api_key(
        self,
        key_id: FromPath[UUID],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template:
        key = await accounts.get_api_key(db_session, key_id)
        members, _ = await accounts.list_members(db_session, LISTED)
        makers = {m.user_id: m.email for m in members}
        return page("api_key.html", **await shell(db_session, principal, key=key, makers=makers, notice=None))

    @post("/api-keys/{key_id:uuid}/revoke", opt=MEMBER)
    async def revoke_api_key(
        self,
        key_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Template | Redirect:
        await accounts.revoke_api_key(db_session, principal, key_id)
        if is_htmx(request):
            key = await accounts.get_api_key(db_session, key_id)
            members, _ = await accounts.list_members(db_session, LISTED)
            makers = {m.user_id: m.email for m in members}
            return page("_api_key_row.html", key=key, makers=makers, principal=principal, notice_oob=True)
        return redirect("/app/api-keys?notice=key-revoked")

    @get("/{rest:path}", opt=MEMBER)
    async def nothing_here(self, rest: FromPath[str]) -> None:
        raise NotFound("There is nothing at this address in your tenant.")


def pages_router() -> Router:
    return Router(
        path="/",
        route_handlers=[
            PublicPages,
            FootagePages,
            DatasetPages,
            FineTunePages,
            ModelPages,
            GenerationPages,
            ComparePages,
            UsagePages,
            WebhookPages,
            AppPages,
            TenantPages,
            AdminPages,
            AuditPages,
            AdminAuditPages,
        ],
        exception_handlers=page_exception_handlers,
        include_in_schema=False,
    )
