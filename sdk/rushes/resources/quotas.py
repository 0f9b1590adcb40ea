"""Quotas: the tenant's plan and, for every quota, its limit, what is used and what remains."""

from __future__ import annotations

from rushes import types
from rushes._base import Op
from rushes._resource import R, Resource, endpoint


class QuotasResource(Resource[R]):
    @endpoint
    def get(self) -> Op[types.Quotas]:
        """The tenant's plan, status and overrides, and each quota's limit, use and remainder.

        Work over an allowance is refused with :class:`~rushes.QuotaExceededError` (402), too
        many generations a minute with :class:`~rushes.RateLimitError` (429), a file over the
        plan's largest upload with :class:`~rushes.PayloadTooLargeError` (413); work beyond a
        concurrency cap waits in the queue. ``when_reached`` says which, quota by quota.
        """
        return Op("GET", "/v1/quotas", types.Quotas.from_json)
