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
