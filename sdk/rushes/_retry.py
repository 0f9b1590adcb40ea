"""The retry policy: which failures are worth another try, and how long to wait first."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: Statuses that say "try again": request timeout, too many requests, server trouble.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: The longest server hint honoured as-is; longer ones fall back to our own backoff.
MAX_RETRY_AFTER = 60.0


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25

    def should_retry_status(self, status: int, headers: Mapping[str, str], quota: bool = False) -> bool:
        """Never a quota refusal (402, or a ``quota`` problem): trying again cannot change the
        answer until the plan grows or the month turns. Then a server hint (``x-should-retry``),
        then the status."""
        if quota or status == 402:
            return False
        hint = headers.get("x-should-retry")
        if hint == "true":
            return True
        if hint == "false":
            return False
        return status in RETRYABLE_STATUSES

    def delay(self, retries_done: int, headers: Mapping[str, str] | None = None) -> float:
        """Seconds before retry number ``retries_done + 1``: the server's hint if sane, else backoff."""
        if headers is not None:
            hinted = parse_retry_after(headers)
            if hinted is not None and 0 <= hinted <= MAX_RETRY_AFTER:
                return hinted
        backoff = min(self.initial_delay * 2.0**retries_done, self.max_delay)
        return backoff * (1 - self.jitter * random.random())
