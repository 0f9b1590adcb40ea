"""Errors a caller can act on, raised by any process and mapped to HTTP by the API (``service/errors.py``)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error a caller can act on. Subclasses fix the status and a stable problem type."""

    status: int = 400
    problem: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


class NotFound(DomainError):
    status, problem = 404, "not-found"


class Conflict(DomainError):
    status, problem = 409, "conflict"


class Invalid(DomainError):
    status, problem = 422, "invalid"


class Unauthorized(DomainError):
    status, problem = 401, "unauthorized"


class Forbidden(DomainError):
    status, problem = 403, "forbidden"


class Gone(DomainError):
    status, problem = 410, "gone"


class PayloadTooLarge(DomainError):
    status, problem = 413, "payload-too-large"


class RangeNotSatisfiable(DomainError):
    status, problem = 416, "range-not-satisfiable"


class UnsupportedMediaType(DomainError):
    status, problem = 415, "unsupported-media-type"


class PaymentRequired(DomainError):
    """The tenant may not start new work until its billing is settled (past due)."""

    status, problem = 402, "payment-required"


class QuotaExceeded(DomainError):
    """An allowance of the tenant's plan is used up; ``extra`` names the quota and its figures."""

    status, problem = 402, "quota-exceeded"


class RateLimited(DomainError):
    """Too many requests of one kind in a window; retry after ``retry_after`` seconds."""

    status, problem = 429, "rate-limited"

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.headers = {"Retry-After": str(retry_after)}
