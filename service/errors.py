"""The one mapping from exceptions (the core's domain errors among them) to RFC 9457 problem details."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.problem_details import ProblemDetailsConfig, ProblemDetailsException
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError
from core.storage.base import ObjectNotFoundError
from service.request_context import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger("rushes.errors")

PROBLEM_BASE = "https://docs.rushes.dev/problems/"


class Problem(ProblemDetailsException):
    """A problem-details answer that names the request it answers, in its body and a header."""

    def to_response(self, request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        request_id = current_request_id(request.scope)
        if request_id:
            self.extra = {**(self.extra if isinstance(self.extra, dict) else {}), "request_id": request_id}
            self.headers = {**(self.headers or {}), REQUEST_ID_HEADER: request_id}
        return super().to_response(request)


def _problem(
    status: int,
    problem: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemDetailsException:
    return Problem(
        status_code=status,
        type_=PROBLEM_BASE + problem,
        title=HTTPStatus(status).phrase,
        detail=detail,
        extra=extra or {},
        headers=headers,
    )


def problem_document(exc: DomainError) -> dict[str, Any]:
    """The problem details a domain error answers with, as a JSON object to keep (an upload's
    failure, told by later requests)."""
    return {
        "type": PROBLEM_BASE + exc.problem,
        "title": HTTPStatus(exc.status).phrase,
        "status": exc.status,
        "detail": exc.detail,
        **exc.extra,
    }


def domain_error(document: dict[str, Any]) -> DomainError:
    """The domain error a kept problem document came from, to raise again."""
    members = dict(document)
    error = DomainError(
        str(members.pop("detail")),
        **{k: v for k, v in members.items() if k not in ("type", "title", "status")},
    )
    error.status = int(members["status"])
    error.problem = str(members["type"]).removeprefix(PROBLEM_BASE)
    return error


def _from_domain(exc: DomainError) -> ProblemDetailsException:
    return _problem(exc.status, exc.problem, exc.detail, exc.extra, exc.headers or None)


INTERNAL_DETAIL = "An unexpected error occurred; quote the request id when reporting it."


def _from_http(exc: HTTPException) -> ProblemDetailsException:
    status = exc.status_code
    if status >= 500:
        # A server error names only the request: what went wrong goes to the log, never to the client.
        logger.error("server error: %r", exc, exc_info=exc)
        return _problem(status, "internal", INTERNAL_DETAIL)
    if isinstance(exc, ProblemDetailsException):
        return exc
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    slug = HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    detail = (
        exc.detail
        if exc.detail and exc.detail != HTTPStatus(status).phrase
        else HTTPStatus(status).description
    )
    return _problem(status, slug, detail, extra, exc.headers)


def _from_repository_missing(exc: RepositoryNotFoundError) -> ProblemDetailsException:
    return _problem(404, "not-found", "No such resource.")


def _from_storage_missing(exc: ObjectNotFoundError) -> ProblemDetailsException:
    # Storage lost an object the database still names: a race with a delete or cleanup.
    logger.warning("storage object missing: %s", exc)
    return _problem(409, "conflict", "The resource changed while this request ran; fetch it again.")


def _from_integrity(exc: IntegrityError) -> ProblemDetailsException:
    # A race two requests lost to a constraint; the engine hides statement parameters.
    logger.info("integrity error: %s", exc.orig)
    return _problem(409, "conflict", "The request conflicts with the current state of the resource.")


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return _problem(500, "internal", INTERNAL_DETAIL).to_response(request)


def problem_details_config() -> ProblemDetailsConfig:
    return ProblemDetailsConfig(
        exception_to_problem_detail_map={
            DomainError: _from_domain,
            HTTPException: _from_http,
            RepositoryNotFoundError: _from_repository_missing,
            IntegrityError: _from_integrity,
            ObjectNotFoundError: _from_storage_missing,
        }
    )


exception_handlers = {Exception: _internal}
