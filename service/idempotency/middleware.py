"""Replays the stored answer to a POST that repeats an ``Idempotency-Key``.

Runs inside authentication, so keys live in the caller's tenant. The first request with a
key claims it (a unique row); a repeat with the same method, path and body gets the first
answer back, byte for byte; a repeat while the first is still running gets 409; reusing a
key for a different request gets 422. Answers of 5xx are not kept, so a retry after a
server error runs again. Records expire with the upload cleanup after a day.

A route whose answer carries a secret shown once (a new API key, a webhook signing
secret) opts in with ``SHOWN_ONCE``: its key is still claimed, so a retry never makes a
second object, but the answer is not stored, and a repeat gets 409 instead of the secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Conflict, Invalid, PayloadTooLarge
from service.auth.principal import Principal
from service.db.tenancy import set_tenant
from service.idempotency.models import IdempotencyRecord

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotent-replayed"
MAX_KEY_LENGTH = 255
# Route ``opt`` for answers holding a secret: the database never keeps them.
SHOWN_ONCE: dict[str, Any] = {"idempotency_shown_once": True}


class IdempotencyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, db_config: SQLAlchemyAsyncConfig, max_body: int) -> None:
        self.db_config = db_config
        self.max_body = max_body

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = _header(scope, HEADER)
        principal = scope.get("user")
        method = scope.get("method")
        if method != "POST" or key is None or not isinstance(principal, Principal):
            await next_app(scope, receive, send)
            return
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise Invalid(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
        body = await self._read_body(receive)
        request_hash = hashlib.sha256(
            b"\n".join([b"POST", scope["raw_path"], scope.get("query_string", b""), body])
        ).hexdigest()
        # The claim uses the request's own session, already bound to the tenant: a second
        # connection would wait on SQLite for the lock the request's transaction holds.
        request_session = self.db_config.provide_session(scope["app"].state, scope)
        shown_once = bool(scope["route_handler"].opt.get("idempotency_shown_once"))
        stored = await self._claim(request_session, key, request_hash)
        if stored is not None:
            if shown_once:
                raise Conflict(
                    "A request with this Idempotency-Key already succeeded; its answer held a secret "
                    "that is shown once and not kept. List the resource to find what it made."
                )
            await _replay(stored, send)
            return

        async def settle(answer: _Recorder) -> None:
            # The request's transaction has committed by the time its body goes out, so a
            # fresh session can settle the key without waiting on it (SQLite has one writer).
            async with self.db_config.create_session_maker()() as session:
                set_tenant(session, principal.tenant_id)
                await self._settle(session, key, answer, keep_body=not shown_once)

        answer = _Recorder(send, settle)
        try:
            await next_app(scope, _replaying(body), answer.send)
        finally:
            if not answer.settled:  # no complete answer went out: an error, or a disconnect
                await settle(answer)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = bytes(message.get("body", b""))  # type: ignore[call-overload]
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge(f"Request bodies may be at most {self.max_body} bytes.")
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)

    async def _claim(self, session: AsyncSession, key: str, request_hash: str) -> IdempotencyRecord | None:
        """The stored answer to replay, or None once this request holds the key."""
        record = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        if record is None:
            session.add(IdempotencyRecord(key=key, request_hash=request_hash))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                raise Conflict("A request with this Idempotency-Key is in progress; retry shortly.") from None
            return None
        if record.request_hash != request_hash:
            raise Invalid("This Idempotency-Key was used for a different request; use a new key.")
        if record.status_code is None:
            raise Conflict("A request with this Idempotency-Key is in progress; retry shortly.")
        return record

    async def _settle(self, session: AsyncSession, key: str, answer: _Recorder, *, keep_body: bool) -> None:
        record = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == key))
        if record is None:
            return
        if answer.status is None or answer.status >= 500 or answer.status in _NOT_YET:
            await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
        else:
            record.status_code = answer.status
            if keep_body:
                record.content_type = answer.content_type
                record.body = b"".join(answer.body)
        await session.commit()


# Refusals that time or an admin lifts (a rate limit, a used-up allowance, a past-due account):
# nothing was done, so the key stays free and a retry after the wait is tried afresh.
_NOT_YET = frozenset({402, 429})


class _Recorder:
    """Keeps the answer as it goes out, and settles the key before its last byte does.

    Settling first means a client that repeats the request the moment it has the answer
    gets the replay, not a 409 for a key still marked in progress.
    """

    def __init__(self, send: Send, settle: Callable[[_Recorder], Awaitable[None]]) -> None:
        self._send = send
        self._settle = settle
        self.settled = False
        self.status: int | None = None
        self.content_type: str | None = None
        self.body: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.content_type = next(
                (v.decode("latin-1") for k, v in message.get("headers", []) if k.lower() == b"content-type"),
                None,
            )
        elif message["type"] == "http.response.body":
            self.body.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                self.settled = True
                await self._settle(self)
        await self._send(message)


def _replaying(body: bytes) -> Receive:
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _replay(record: IdempotencyRecord, send: Send) -> None:
    headers = [(REPLAYED_HEADER, b"true")]
    if record.content_type:
        headers.append((b"content-type", record.content_type.encode("latin-1")))
    body = record.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": record.status_code or 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None
