"""Figures in words for the pages: GPU time, quota amounts and limits, and the pager of a
paged table. Shared by the tenant's usage page, the admin console and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from service.db.pagination import PageRequest
from service.pages.templates import size
from service.quotas.limits import Quota


def gpu_time(seconds: float) -> str:
    """``42 s``, ``12 min 5 s``, ``3 h 20 min``: GPU time as people read it."""
    whole = round(abs(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{abs(seconds):.1f} s" if abs(seconds) < 10 else f"{secs} s"


def amount(quota: Quota, value: float) -> str:
    """A quota's figure in its unit."""
    if quota == Quota.GPU_SECONDS_PER_MONTH:
        return gpu_time(value)
    if quota in (Quota.STORAGE_BYTES, Quota.MAX_UPLOAD_BYTES):
        return size(int(value))
    return f"{int(value)}"


def limit_text(value: int | None, quota: Quota) -> str:
    """A quota's limit in words: ``Unlimited`` when there is none."""
    return "Unlimited" if value is None else amount(quota, value)


def number_field(value: int | None) -> str:
    """A limit as a form field holds it: blank when there is none."""
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a paged table is, and the links to its neighbours (None at either end)."""

    first: int
    last: int
    total: int
    newer: str | None
    older: str | None


def pager(base: str, page: PageRequest, total: int, shown: int, **query: str) -> Pager:
    def link(offset: int) -> str:
        kept = {name: value for name, value in query.items() if value}
        return f"{base}?{urlencode({**kept, 'offset': offset, 'limit': page.limit})}"

    return Pager(
        first=page.offset + 1 if shown else 0,
        last=page.offset + shown,
        total=total,
        newer=link(max(0, page.offset - page.limit)) if page.offset > 0 else None,
        older=link(page.offset + page.limit) if page.offset + shown < total else None,
    )
