"""Checking that a webhook request really came from Rushes (standard library only).

Every delivery carries ``Rushes-Signature: t=<unix time>,v1=<hex>``: the HMAC-SHA256, keyed
with the endpoint's secret (``whsec_...``), of ``"<t>.<raw request body>"``. Just after a
secret is rotated there are two ``v1`` values, one per secret; either matching is enough::

    from rushes.webhooks import WebhookSignatureError, verify_signature

    try:
        verify_signature(raw_body, headers["Rushes-Signature"], secret)
    except WebhookSignatureError:
        ...  # answer 400 and ignore the request
"""

from __future__ import annotations

import hashlib
import hmac
import time

from rushes._errors import RushesError

__all__ = ["DEFAULT_TOLERANCE", "SIGNATURE_HEADER", "WebhookSignatureError", "verify_signature"]

SIGNATURE_HEADER = "Rushes-Signature"
#: Seconds a signature stays acceptable, so a captured request cannot be replayed later.
DEFAULT_TOLERANCE = 300


class WebhookSignatureError(RushesError):
    """The request is not a genuine, recent delivery: reject it."""


def verify_signature(
    payload: bytes,
    header: str,
    secret: str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookSignatureError` unless ``header`` signs ``payload`` with ``secret``
    at a time within ``tolerance`` seconds of ``now`` (default: the current time; a tolerance
    of 0 skips the time check).

    ``payload`` must be the request body exactly as received, before any JSON parsing.
    """
    timestamp, signatures = _parse(header)
    if tolerance > 0 and abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookSignatureError(f"The signature's timestamp is more than {tolerance:g} s from now.")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    # Compare with every candidate, in constant time each, so timing reveals nothing.
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookSignatureError("No signature matches the payload and secret.")


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureError(f"Malformed {SIGNATURE_HEADER} header: expected t=<time>,v1=<signature>.")
    return timestamp, signatures
