"""Signing secrets and signatures.

An endpoint's secret is ``whsec_`` + HMAC-SHA256(signing key, "<endpoint id>:<version>"),
so the database holds no secret: rotating bumps the version. A delivery is signed Stripe-
style: ``Rushes-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``, with
one ``v1`` per secret currently valid (the previous one too, just after a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from uuid import UUID

from core.settings import WebhookSettings

KEY_FILE = "webhook-signing.key"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)


def signing_key(settings: WebhookSettings, data_dir: Path) -> bytes:
    configured = settings.signing_key.get_secret_value()
    if configured:
        return configured.encode()
    return _key_from_file(data_dir / KEY_FILE)


@lru_cache(maxsize=4)
def _key_from_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            # A hard link appears whole and never replaces a key another process wrote first.
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable webhook signing key; remove it to make a new one")
    return key.encode()


def endpoint_secret(key: bytes, endpoint_id: UUID, version: int) -> str:
    digest = hmac.new(key, f"{endpoint_id}:{version}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signature_header(endpoint_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    signatures = (hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in endpoint_secrets)
    return ",".join([f"t={timestamp}", *(f"v1={sig}" for sig in signatures)])
