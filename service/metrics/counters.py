"""Counters the API's request handlers move, in the process's registry that ``/metrics`` shows."""

from __future__ import annotations

from prometheus_client import Counter

UPLOAD_BYTES = Counter(
    "rushes_upload_bytes",
    "Bytes of upload parts stored: by the API as it receives them (transfer=api; a part sent again "
    "counts again, a refused one not at all), or joined by storage at completion (transfer=direct)",
    ["transfer"],
)


def uploaded(size: int, transfer: str) -> None:
    UPLOAD_BYTES.labels(transfer=transfer).inc(size)
