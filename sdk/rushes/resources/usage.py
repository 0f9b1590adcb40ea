"""Usage: a tenant's fine-tunes, generations and GPU seconds over a period, and its storage now."""

from __future__ import annotations

from datetime import date

from rushes import types
from rushes._base import Op
from rushes._resource import R, Resource, endpoint


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
