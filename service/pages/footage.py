"""The footage library: the tenant's clips, and the page the browser uploads from.

Uploading is the browser's work (``web/static/js/upload.js``): it calls the same JSON
upload API as the SDK with the session cookie, so there is no upload handler here. Where the
API hands out signed part URLs the browser PUTs parts straight to storage, which this page's
Content-Security-Policy then names.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from core.storage import ObjectStorage
from service.accounts import service as accounts
from service.auth.principal import Principal
from service.pages.shared import LISTED, MEMBER, NOTICES, is_htmx, notice_text, redirect, shell
from service.pages.templates import content_security_policy, direct_upload_origin, page
from service.uploads import service as uploads


async def library(db_session: AsyncSession) -> dict[str, Any]:
    """The clips, newest first, and who attested each one's rights."""
    assets, total = await uploads.list_assets(db_session, LISTED)
    members, _ = await accounts.list_members(db_session, LISTED)
    return {"assets": assets, "total": total, "people": {m.user_id: m.email for m in members}}


class FootagePages(Controller):
    path = "/app/footage"
    include_in_schema = False

    @get("/", opt=MEMBER)
    async def footage(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        notice: FromQuery[str | None] = None,
    ) -> Template:
        context = await library(db_session)
        # The one page that uploads may also call the storage it sends parts straight to.
        policy = content_security_policy(direct_upload_origin(settings))
        return page(
            "footage.html",
            headers={"Content-Security-Policy": policy},
            **await shell(db_session, principal, notice=notice_text(notice), **context),
        )

    @get("/library", opt=MEMBER)
    async def library_part(
        self, db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Template:
        """The grid alone, which the page swaps in after an upload completes."""
        return page("_library.html", principal=principal, **await library(db_session))

    @post("/{asset_id:uuid}/delete", opt=MEMBER)
    async def delete(
        self,
        asset_id: FromPath[UUID],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        storage: NamedDependency[ObjectStorage],
    ) -> Template | Redirect:
        await uploads.delete_asset(db_session, storage, asset_id)
        if is_htmx(request):
            context = await library(db_session)
            return page("_library.html", principal=principal, deleted=NOTICES["asset-deleted"], **context)
        return redirect("/app/footage?notice=asset-deleted")
