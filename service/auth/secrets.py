"""Making and checking secrets. Passwords get argon2; random tokens get SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
API_KEY_SCHEME = "rsh"
# A real hash to verify against when the email is unknown, so that a login's timing
# does not reveal which emails have accounts.
_DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(stored_hash: str, token: str) -> bool:
    return hmac.compare_digest(stored_hash, token_hash(token))


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_link_token() -> str:
    """The secret of a link sent by hand (an invitation's): as strong as a session's."""
    return secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str]:
    """A new key and its visible prefix: ``rsh_<prefix>_<secret>``."""
    prefix = secrets.token_hex(6)
    return f"{API_KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def api_key_prefix(token: str) -> str | None:
    scheme, _, rest = token.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != API_KEY_SCHEME or len(prefix) != 12 or not secret:
        return None
    return prefix
