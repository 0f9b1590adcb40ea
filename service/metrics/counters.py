"""Counters the API's request handlers move, in the process's registry that ``/metrics`` shows."""

from __future__ import annotations

from prometheus_client import Counter

UPLOAD_BYTES = Counter(
    "rushes_upload_bytes",
    "Bytes of upload parts received and stored (a part sent again counts again; a refused one not at all)",
)


def uploaded(size: int) -> None:
    UPLOAD_BYTES.inc(size)
