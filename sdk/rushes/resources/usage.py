"""Usage: a tenant's fine-tunes, generations and GPU seconds over a period, its storage now, and
the ledger of charges they add up."""

from __future__ import annotations

from datetime import date

from rushes import types
from rushes._base import Op
from rushes._resource import R, Resource, endpoint, list_op, paginated


def usage_op(path: str, since: date | str | None, until: date | str | None) -> Op[types.Usage]:
    """The call for a usage report; days go as ``YYYY-MM-DD``, and one left out as the server's default."""
    days = {"since": since, "until": until}
    return Op(
        "GET",
        path,
        types.Usage.from_json,
        params={k: v.isoformat() if isinstance(v, date) else v for k, v in days.items()},
    )


class UsageResource(Resource[R]):
    @endpoint
    def get(self, *, since: date | str | None = None, until: date | str | None = None) -> Op[types.Usage]:
        """The tenant's usage over the UTC days ``since`` to ``until`` (both included; at most 366).

        ``until`` defaults to today and ``since`` to the first day of ``until``'s month, so
        ``get()`` is this month so far. A bad period raises ``UnprocessableEntityError``.
        """
        return usage_op("/v1/usage", since, until)

    @paginated
    def ledger(self, *, limit: int | None = None) -> Op[types.Page[types.LedgerEntry]]:
        """Every charge and credit of the tenant, newest first: what usage, quotas and billing add up."""
        return list_op("/v1/usage/ledger", types.LedgerEntry.from_json, limit)
