"""Errors on pages: the API's problem details, turned into words on a page.

The same mapping as the JSON API (``service/errors.py``) decides the status and the
sentence; only the rendering differs. A caller who is not signed in is sent to sign in.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from inspect import getmro
from typing import Any, cast
from urllib.parse import urlencode

from advanced_alchemy.exceptions import NotFoundError as RepositoryNotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect
from litestar.types import ExceptionHandlersMap
from sqlalchemy.exc import IntegrityError

from core.errors import DomainError
from core.storage.base import ObjectNotFoundError
from service.errors import INTERNAL_DETAIL, problem_details_config
from service.pages.templates import SECURITY_HEADERS, page
from service.request_context import current_request_id

logger = logging.getLogger("rushes.pages")

TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    409: "That clashes with something",
    413: "Too large",
    422: "Please check what you entered",
    500: "Something went wrong on our side",
}


def _problem(exc: Exception) -> ProblemDetailsException | None:
    mapping = problem_details_config().exception_to_problem_detail_map
    if isinstance(exc, ProblemDetailsException):
        return exc
    for cls in getmro(type(exc)):
        if cls in mapping:
            convert: Any = mapping[cls]
            return cast(ProblemDetailsException, convert(exc))
    return None


def sign_in_url(next_path: str) -> str:
    return "/signin?" + urlencode({"next": next_path})


def render_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    problem = _problem(exc)
    if problem is None:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail = 500, INTERNAL_DETAIL
    else:
        status, detail = problem.status_code, problem.detail
    if status == 401:
        back = request.url.path if request.method == "GET" else "/app"
        return Redirect(sign_in_url(back), status_code=303, headers=SECURITY_HEADERS)
    if status == 404 and problem is not None and detail in ("Not Found", HTTPStatus.NOT_FOUND.description):
        detail = "There is nothing at this address in your tenant."
    if request.headers.get("hx-request") == "true":
        # htmx swaps this sentence into the page's live region, leaving the rest as it was.
        headers = {"HX-Retarget": "#messages", "HX-Reswap": "innerHTML"}
        return page("_notice.html", status_code=status, headers=headers, notice=detail, kind="error")
    return page(
        "error.html",
        status_code=status,
        status=status,
        title=TITLES.get(status, HTTPStatus(status).phrase),
        detail=detail,
        request_id=current_request_id(request.scope),
    )


# Keyed by the same exception types as the API's mapping, so that these win on page routes.
page_exception_handlers: ExceptionHandlersMap = {
    exc_type: render_error
    for exc_type in (
        Exception,
        DomainError,
        HTTPException,
        ProblemDetailsException,
        RepositoryNotFoundError,
        IntegrityError,
        ObjectNotFoundError,
    )
}
