"""Who is acting in this request: set by the authentication middleware, read by the recorder.

A context variable rather than an argument, so that no service threads the actor through its
calls and none can forget to. Only HTTP requests set it: workers, the CLI and background loops
act for no one, so what they change is not recorded (``service.audit.record``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from uuid import UUID


@dataclass(slots=True)
class Actor:
    """The client of one request, and once authenticated, the member (and key) it acts as."""

    ip: str | None
    request_id: str | None
    user_id: UUID | None = None
    key_id: UUID | None = None
    # Acting through an admin route (``Access.ADMIN``): its actions are recorded as ``admin.*``.
    admin: bool = False
    # The actor's email (and key prefix) as the log shows it, looked up once, at the first entry.
    label: str | None = None


_actor: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def current_actor() -> Actor | None:
    return _actor.get()


@contextmanager
def acting(actor: Actor) -> Iterator[None]:
    """``actor`` acts for the block (one request)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def authenticated(user_id: UUID, key_id: UUID | None, admin: bool) -> None:
    """The request's client is now known to be ``user_id`` (with ``key_id``). Set inside an
    ``acting`` block, so it ends with the request."""
    actor = _actor.get()
    if actor is not None:
        _actor.set(replace(actor, user_id=user_id, key_id=key_id, admin=admin))
