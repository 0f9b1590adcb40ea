"""Throttling failed sign-ins and refused sign-ups, in the database so every replica agrees.

Each attempt is counted under a few keys, each with its own rule: ``free`` failures cost
nothing, then every further failure makes the key wait before its next attempt, one second
doubling each time up to ``cap``. A key waiting out its delay answers 429 with
``Retry-After`` and is not counted again, so hammering a throttled key does not lengthen its
wait. A key forgets its failures after an hour without one.

- ``ADDRESS`` (the client's address): slows one source guessing across many emails, and
  its sign-ups refused for an email that has an account (the way sign-up could list them).
- ``PAIR`` (email and address): the tight rule on guessing one account's password.
- ``EMAIL`` (the email, from anywhere): a looser cap on guessing spread over many
  addresses. It spares an address that signed in to that email in the last 30 days, so
  others' failures cannot lock the account's owner out of their usual place, and its
  delay is capped lower.

A successful sign-in clears its pair and its email. It does not clear its address: an
attacker could otherwise clear theirs by signing in to an account of their own between
guesses. The keys name emails whether or not an account has them, so a throttled answer
reveals nothing about which emails have accounts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import RateLimited
from service.accounts.models import SignInThrottle
from service.db.inserts import insert_ignoring_duplicates

FIRST_DELAY = timedelta(seconds=1)
FORGET_AFTER = timedelta(hours=1)
TRUSTED_FOR = timedelta(days=30)


@dataclass(frozen=True)
class Rule:
    name: str
    free: int
    cap: timedelta

    def delay(self, failures: int) -> timedelta:
        if failures <= self.free:
            return timedelta(0)
        # The exponent is bounded so that a long-forgotten count cannot overflow the timedelta.
        return min(self.cap, FIRST_DELAY * (1 << min(failures - self.free - 1, 20)))


ADDRESS = Rule("address", free=20, cap=timedelta(minutes=15))
PAIR = Rule("email+address", free=5, cap=timedelta(minutes=15))
EMAIL = Rule("email", free=50, cap=timedelta(minutes=5))

Keys = Mapping[Rule, str]


def _key(rule: Rule, *parts: str) -> str:
    return hashlib.sha256("\0".join([rule.name, *parts]).encode()).hexdigest()


def sign_in_keys(email: str, address: str) -> Keys:
    return {ADDRESS: _key(ADDRESS, address), PAIR: _key(PAIR, email, address), EMAIL: _key(EMAIL, email)}


def sign_up_keys(address: str) -> Keys:
    return {ADDRESS: _key(ADDRESS, address)}


async def count_attempt(session: AsyncSession, keys: Keys) -> None:
    """Counts a sign-in as failed before it is judged, so that concurrent attempts (on any
    replica) cannot all slip under a limit; ``succeeded`` takes it back. Refuses with 429,
    counting nothing, while any key waits out its delay. Commits."""
    now = datetime.now(UTC)
    rows = await _locked(session, keys)
    active = _active(keys, rows, now)
    if (retry_after := _retry_after(active, now)) is not None:
        await session.rollback()
        raise _limited(retry_after)
    for rule, row in active.items():
        if row.last_failure_at is not None and now - row.last_failure_at > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        row.blocked_until = now + rule.delay(row.failures)
    await session.commit()


async def refuse_if_waiting(session: AsyncSession, keys: Keys) -> None:
    """429 while any key waits out its delay (for attempts counted only when refused)."""
    rows = {
        row.key: row
        for row in await session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys.values())))
    }
    now = datetime.now(UTC)
    if (retry_after := _retry_after(_active(keys, rows, now), now)) is not None:
        raise _limited(retry_after)


async def succeeded(session: AsyncSession, keys: Keys) -> None:
    """Takes back the attempt ``count_attempt`` counted, clears the pair and the email, and
    marks the address as one the email signs in from. Commits."""
    now = datetime.now(UTC)
    rows = await _locked(session, keys)
    for rule, key in keys.items():
        row = rows[key]
        if rule is ADDRESS:
            row.failures = max(0, row.failures - 1)
            row.blocked_until = now + rule.delay(row.failures)
        else:
            row.failures = 0
            row.blocked_until = None
        if rule is PAIR:
            row.last_success_at = now
    await session.commit()


async def _locked(session: AsyncSession, keys: Keys) -> dict[str, SignInThrottle]:
    """The keys' rows, made where missing and locked until the commit, in key order so that
    two attempts never wait on each other's locks."""
    await session.execute(
        insert_ignoring_duplicates(session, SignInThrottle, ["key"]).values(
            [{"key": key} for key in sorted(keys.values())]
        )
    )
    found = await session.scalars(
        select(SignInThrottle)
        .where(SignInThrottle.key.in_(keys.values()))
        .order_by(SignInThrottle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {row.key: row for row in found}


def _active(keys: Keys, rows: Mapping[str, SignInThrottle], now: datetime) -> dict[Rule, SignInThrottle]:
    """The rules that apply to this attempt: all of them, except the email-wide one for an
    address that signed in to the email recently."""
    pair = rows.get(keys[PAIR]) if PAIR in keys else None
    trusted = (
        pair is not None and pair.last_success_at is not None and now - pair.last_success_at < TRUSTED_FOR
    )
    return {rule: rows[key] for rule, key in keys.items() if key in rows and not (rule is EMAIL and trusted)}


def _retry_after(active: Mapping[Rule, SignInThrottle], now: datetime) -> int | None:
    waits = [
        row.blocked_until - now for row in active.values() if row.blocked_until and row.blocked_until > now
    ]
    return max(1, math.ceil(max(waits).total_seconds())) if waits else None


def _limited(retry_after: int) -> RateLimited:
    return RateLimited(f"Too many failed attempts; try again in {retry_after} s.", retry_after=retry_after)


async def forget_stale(session: AsyncSession, now: datetime) -> int:
    """Delete the rows that no longer hold anything: no failure within ``FORGET_AFTER``, no
    wait running and no sign-in within ``TRUSTED_FOR``. The cleanup role calls it; returns
    how many went. (Left alone, every address that ever mistyped a password keeps a row.)"""
    gone = await session.execute(
        delete(SignInThrottle).where(
            or_(
                SignInThrottle.last_failure_at.is_(None), SignInThrottle.last_failure_at <= now - FORGET_AFTER
            ),
            or_(SignInThrottle.blocked_until.is_(None), SignInThrottle.blocked_until <= now),
            or_(
                SignInThrottle.last_success_at.is_(None), SignInThrottle.last_success_at <= now - TRUSTED_FOR
            ),
        )
    )
    return int(cast(CursorResult[Any], gone).rowcount)
