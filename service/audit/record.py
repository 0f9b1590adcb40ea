"""Writing the audit log: in the transaction of the action it records, so no action escapes it.

Most actions change rows, so they are recorded in one place: after every flush made while a
member acts (an authenticated request, ``service.audit.context``), each inserted, deleted or
changed row of a class in ``AUDITED`` becomes an entry, written on the flush's own connection.
If the action's transaction rolls back (a 4xx after a flush), its entries go with it; if it
commits, they do. Nothing a worker, the CLI or a background loop changes is recorded: they act
for no one. Changes are recorded, not requests: setting what is already set writes nothing.

Actions that change no audited row, or change one by a conditional update no flush shows,
call ``record`` themselves: sign-ins (successful or not), sign-ups, sign-outs, tenant
switches, answers to invitations, and downloads of a model's adapter or training record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, event, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from uuid_utils.compat import uuid7

from service.accounts.models import ApiKey, User
from service.audit.context import Actor, current_actor
from service.audit.models import AuditEntry
from service.models.models import ModelVersion

# What one transaction has recorded already, so that an object flushed twice (a dataset
# version's items cleared, flushed, then refilled) makes one entry per action.
_RECORDED = "audit_recorded"


def _work_event(event_row: Any) -> str | None:
    """A fine-tune's or a generation's event, as the action a member took on the work: the
    request that cancels or resumes it changes the row by a conditional update, which no flush
    sees, but appends an event in the same transaction. Queueing new work is its own ``created``."""
    if event_row.type in ("cancelled", "cancel_requested"):
        return "cancelled"
    if event_row.type == "queued" and "resumed_from_step" in event_row.data:
        return "resumed"
    return None


@dataclass(frozen=True, slots=True)
class Audited:
    """How a table's rows are recorded: ``noun.verb`` on insert, delete and named changes."""

    noun: str
    # The verb for an inserted row (or a function of the row, None to skip it); None: not recorded.
    created: str | Callable[[Any], str | None] | None = "created"
    deleted: str | None = "deleted"
    # Attribute -> verb for an update; attributes not named here (timestamps, counters) are not recorded.
    changes: Mapping[str, str] = field(default_factory=dict)
    # Attributes whose values go into the detail: never secrets, never long text.
    shown: tuple[str, ...] = ()
    # The attribute naming the object the entry is about.
    object_key: str = "id"


_PLAN_FIELDS = (
    "name",
    "is_default",
    "gpu_seconds_per_month",
    "storage_bytes",
    "models",
    "concurrent_fine_tunes",
    "concurrent_generations",
    "generations_per_minute",
    "max_upload_bytes",
    "stripe_price_id",
)
_COMPUTE = "compute_set"

# Table name -> how its rows are recorded.
AUDITED: dict[str, Audited] = {
    "tenant": Audited(
        "tenant",
        created=None,  # sign-up records it (``service.accounts.service.sign_up``)
        changes={
            "name": "renamed",
            "status": "status_set",
            "plan_id": "quotas_set",
            "quota_overrides": "quotas_set",
        },
        shown=("name", "status", "plan_id", "quota_overrides"),
    ),
    "user_account": Audited("user", created=None, shown=("email",)),
    # Members are named by their user id, as the API's member routes name them.
    "membership": Audited(
        "member",
        created="added",
        deleted="removed",
        changes={"role": "role_set"},
        shown=("role",),
        object_key="user_id",
    ),
    "invitation": Audited("invitation", changes={"status": "status_set"}, shown=("email", "role", "status")),
    "api_key": Audited("api_key", changes={"revoked_at": "revoked"}, shown=("name", "prefix")),
    "asset": Audited("asset", shown=("filename", "size", "sha256")),
    "dataset": Audited("dataset", changes={"name": "updated", "description": "updated"}, shown=("name",)),
    "dataset_version": Audited(
        "dataset_version",
        changes={"trigger_word": "updated", "items": "updated"},
        shown=("dataset_id", "number", "trigger_word"),
    ),
    "model": Audited(
        "model",
        changes={"name": "updated", "description": "updated", "guardrails": "guardrails_set"},
        shown=("name", "base_id", "guardrails"),
    ),
    "fine_tune_job": Audited("fine_tune", deleted=None, shown=("model_id", "dataset_version_id", "base_id")),
    "job_event": Audited(
        "fine_tune", created=_work_event, deleted=None, shown=("type",), object_key="job_id"
    ),
    "generation": Audited("generation", deleted=None, shown=("model_id", "model_version_id")),
    "generation_event": Audited(
        "generation", created=_work_event, deleted=None, shown=("type",), object_key="generation_id"
    ),
    # The URL is not shown: a receiver's URL may carry its own token.
    "webhook_endpoint": Audited(
        "webhook_endpoint",
        changes={
            "url": "updated",
            "description": "updated",
            "event_types": "updated",
            "enabled": "updated",
            "secret_version": "secret_rotated",
        },
        shown=("event_types", "enabled"),
    ),
    "webhook_delivery": Audited(
        "webhook_delivery", created=None, deleted=None, changes={"queued_at": "redelivered"}
    ),
    "plan": Audited("plan", changes=dict.fromkeys(_PLAN_FIELDS, "updated"), shown=_PLAN_FIELDS),
    # A tenant's compute share is a setting of the tenant, whether or not its row existed.
    "tenant_compute": Audited(
        "tenant",
        created=_COMPUTE,
        deleted=None,
        changes={"weight": _COMPUTE, "concurrency_cap": _COMPUTE},
        shown=("weight", "concurrency_cap"),
        object_key="tenant_id",
    ),
}


def _plain(value: Any) -> Any:
    """A column's value as JSON holds it."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _label(connection: Connection, actor: Actor) -> str | None:
    """The actor as the log names it, looked up once per request: the email, and the key's prefix."""
    if actor.label is None and actor.user_id is not None:
        email = connection.scalar(select(User.email).where(User.id == actor.user_id))
        label = email or str(actor.user_id)
        if actor.key_id is not None:
            prefix = connection.scalar(select(ApiKey.prefix).where(ApiKey.id == actor.key_id))
            label = f"{label} (API key {prefix})"
        actor.label = label
    return actor.label


def _entry(
    connection: Connection,
    actor: Actor | None,
    action: str,
    *,
    tenant_id: UUID | None,
    object_type: str | None,
    object_id: UUID | None,
    detail: Mapping[str, Any],
    user_id: UUID | None = None,
    label: str | None = None,
) -> dict[str, Any]:
    """An entry's columns. ``user_id`` and ``label`` name the actor where no one has signed in
    yet (a sign-in names the account it tried)."""
    now = datetime.now(UTC)
    signed_in = actor if actor is not None and actor.user_id is not None else None
    return {
        "id": uuid7(),
        "created_at": now,
        "updated_at": now,
        "tenant_id": tenant_id,
        "actor_user_id": signed_in.user_id if signed_in else user_id,
        "actor_key_id": signed_in.key_id if signed_in else None,
        "actor": _label(connection, signed_in) if signed_in else label,
        "ip": actor.ip if actor else None,
        "request_id": actor.request_id if actor else None,
        "action": f"admin.{action}" if actor and actor.admin else action,
        "object_type": object_type,
        "object_id": object_id,
        "detail": _plain(dict(detail)),
    }


async def record(
    session: AsyncSession,
    action: str,
    *,
    tenant_id: UUID | None,
    object_type: str | None = None,
    object_id: UUID | None = None,
    detail: Mapping[str, Any] | None = None,
    user_id: UUID | None = None,
    label: str | None = None,
) -> None:
    """Record an action that changes no audited row, in ``session``'s transaction: the caller
    commits it with the rest of its work (a GET handler's answer commits, as any 2xx does)."""
    actor = current_actor()

    def write(sync_session: Session) -> None:
        connection = sync_session.connection()
        row = _entry(
            connection,
            actor,
            action,
            tenant_id=tenant_id,
            object_type=object_type,
            object_id=object_id,
            detail=detail or {},
            user_id=user_id,
            label=label,
        )
        connection.execute(insert(AuditEntry), [row])

    await session.run_sync(write)


async def downloaded(
    session: AsyncSession, version: ModelVersion, verb: str, range_header: str | None = None
) -> None:
    """A model version's file handed to a client (``model_version.<verb>``): the adapter is the
    tenant's trained work, so every download of it is recorded, each byte range too."""
    await record(
        session,
        f"model_version.{verb}",
        tenant_id=version.tenant_id,
        object_type="model_version",
        object_id=version.id,
        detail={"model_id": version.model_id, "number": version.number}
        | ({"range": range_header[:100]} if range_header else {}),
    )


def _tenant_of(table: str, obj: Any, deleted: bool) -> UUID | None:
    """The tenant an entry belongs to: the row's. A tenant's deletion belongs to none, so that
    it outlives the entries deleted with the tenant."""
    tenant: UUID | None = None if deleted else obj.id
    if table != "tenant":
        tenant = getattr(obj, "tenant_id", None)
    return tenant


def _shown(spec: Audited, obj: Any, names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names if name in spec.shown}


def _actions(spec: Audited, obj: Any, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """What ``obj``'s flush did, as (verb, detail) pairs."""
    if kind == "created" and spec.created is not None:
        verb = spec.created(obj) if callable(spec.created) else spec.created
        if verb is not None:
            yield verb, _shown(spec, obj, spec.shown)
    elif kind == "deleted" and spec.deleted is not None:
        yield spec.deleted, _shown(spec, obj, spec.shown)
    elif kind == "changed":
        state = inspect(obj)
        by_verb: dict[str, list[str]] = {}
        for name, verb in spec.changes.items():
            if state.attrs[name].history.has_changes():
                by_verb.setdefault(verb, []).append(name)
        for verb, names in by_verb.items():
            yield verb, {"changed": names, **_shown(spec, obj, names)}


@event.listens_for(Session, "after_flush")
def _record_flush(session: Session, _context: Any) -> None:
    # After the flush, rows have their ids and tenants, while ``new``, ``dirty`` and ``deleted``
    # and each attribute's history still say what the flush did.
    actor = current_actor()
    if actor is None or actor.user_id is None:
        return
    recorded: set[tuple[str, UUID]] = session.info.setdefault(_RECORDED, set())
    flushed = [
        *((obj, "created") for obj in session.new),
        *((obj, "deleted") for obj in session.deleted),
        *((obj, "changed") for obj in session.dirty),
    ]
    connection = session.connection()
    rows = []
    for obj, kind in flushed:
        table = getattr(obj, "__tablename__", "")
        spec = AUDITED.get(table)
        if spec is None:
            continue
        object_id: UUID = getattr(obj, spec.object_key)
        for verb, detail in _actions(spec, obj, kind):
            action = f"{spec.noun}.{verb}"
            if (action, object_id) in recorded:
                continue
            recorded.add((action, object_id))
            rows.append(
                _entry(
                    connection,
                    actor,
                    action,
                    tenant_id=_tenant_of(table, obj, kind == "deleted"),
                    object_type=spec.noun,
                    object_id=object_id,
                    detail=detail,
                )
            )
    if rows:
        connection.execute(insert(AuditEntry), rows)


@event.listens_for(Session, "after_transaction_end")
def _forget_recorded(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_RECORDED, None)
