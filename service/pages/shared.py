"""What every page module uses: access levels, reading forms, redirects, the signed-in layout.

Page modules are thin views over the domain services, like the API's controllers; this
holds the few things they do alike so that each handler stays a few lines.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Redirect
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from service.accounts import service as accounts
from service.accounts.schemas import MeOut
from service.auth.policy import Access, access
from service.auth.principal import Principal
from service.db.pagination import PageRequest
from service.pages.templates import SECURITY_HEADERS

PUBLIC = access(Access.PUBLIC)
MEMBER = access(Access.MEMBER)
OWNER = access(Access.OWNER)
LISTED = PageRequest(limit=200, offset=0)

# Messages shown after a redirect, chosen by a fixed key so that no caller's text is reflected.
NOTICES = {
    "signed-out": "You are signed out.",
    "switched": "You are now working in this tenant.",
    "invitation-revoked": "The invitation was revoked: its link no longer works.",
    "invitation-accepted": "You joined the tenant and are now working in it.",
    "invitation-declined": "The invitation was declined.",
    "member-removed": "The member was removed.",
    "role-changed": "The member's role was changed.",
    "key-revoked": "The key is revoked: requests that send it are now refused.",
    "asset-deleted": "The clip was deleted.",
    "dataset-created": "The dataset was created with its first version.",
    "version-created": "A new version was added.",
    "version-saved": "The version was saved.",
    "job-cancelled": "Cancelling: a running fine-tune stops at its next step and keeps a checkpoint.",
    "job-resumed": "The fine-tune is queued again; it resumes from its last checkpoint.",
    "generation-cancelled": "The generation was cancelled.",
    "model-saved": "The model was saved.",
    "guardrails-saved": "The guardrails were saved; they apply to videos requested from now on.",
    "model-deleted": "The model was deleted with its versions and adapters; videos made with it stay.",
    "webhook-saved": "The webhook endpoint was saved.",
    "webhook-enabled": "The endpoint is enabled: new events are sent to it, and paused deliveries resume.",
    "webhook-disabled": "The endpoint is disabled: events from now until it is enabled are not sent to it.",
    "webhook-deleted": "The webhook endpoint was deleted: nothing more is sent to it.",
    "webhook-redelivered": "The delivery is queued again and will be sent shortly.",
    # The admin console's.
    "status-active": "The tenant is active: its members can sign in and start work.",
    "status-suspended": "The tenant is suspended: its members cannot sign in and nothing new starts.",
    "status-past_due": "The tenant is past due: nothing new starts until billing is settled.",
    "quotas-saved": "The plan and quota overrides were saved.",
    "compute-saved": "The compute share was saved; it applies from the next job a worker takes.",
    "plan-created": "The plan was created.",
    "plan-saved": "The plan was saved.",
    "plan-deleted": "The plan was deleted.",
    "tenant-deleted": "The tenant was deleted with everything it held.",
}
FIELD_LABELS = {
    "email": "Email",
    "password": "Password",
    "tenant_name": "Studio name",
    "name": "Name",
    "description": "Description",
    "trigger_word": "Trigger word",
    "items": "Clips",
    "caption": "Caption",
    "prompt": "Prompt",
    "negative_prompt": "Negative prompt",
    "adapter_strength": "Adapter strength",
    "validation_prompts": "Validation prompts",
    "url": "URL",
    "event_types": "Events",
}


def notice_text(key: str | None) -> str | None:
    return NOTICES.get(key or "")


def words(exc: ValidationError) -> list[str]:
    """A validation error as sentences naming the form's fields, never as JSON."""
    errors = []
    for error in exc.errors():
        names = [str(part) for part in error["loc"] if isinstance(part, str)]
        field = names[-1] if names else ""
        label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
        message = str(error["msg"]).removeprefix("Value error, ").replace("String should", "Should")
        lead = f"{label}: " if label else ""
        errors.append(f"{lead}{message[:1].lower()}{message[1:]}.")
    return errors


async def form_fields(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A form's fields, one value each, trimmed (passwords as typed)."""
    form = await request.form()
    return {key: str(value).strip() if key != "password" else str(value) for key, value in form.items()}


def local_path(path: str | None) -> str:
    """Only paths on this server: never ``//other.host`` or a full URL."""
    if path and path.startswith("/") and not path.startswith(("//", "/\\")):
        return path
    return "/app"


def redirect(path: str, **kwargs: Any) -> Redirect:
    return Redirect(path, status_code=303, headers=SECURITY_HEADERS, **kwargs)


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


async def shell(db_session: AsyncSession, principal: Principal, **context: Any) -> dict[str, Any]:
    """What the layout shows on every signed-in page: who, which tenant, the others."""
    me: MeOut = await accounts.me(db_session, principal)
    return {"me": me, "principal": principal, "notice": None, **context}
