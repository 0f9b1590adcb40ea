"""What the OpenAPI document says beyond the handlers' own signatures, so that it tells
clients the truth: the problem-details answers every operation can give, and that request
bodies refuse unknown fields. Applied to every route in one place (``document_api``)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.plugins.pydantic import PydanticSchemaPlugin
from litestar.typing import FieldDefinition
from pydantic import ConfigDict

from service.auth.policy import ACCESS, PUBLIC_METHODS, Access
from service.schemas import Input, Output

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemDetails(Output):
    """An RFC 9457 problem: ``service/errors.py`` makes every error answer one."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem(description: str) -> ResponseSpec:
    """A documented problem answer; handlers add their own (a 410) with it."""
    return ResponseSpec(
        ProblemDetails, description=description, media_type=PROBLEM_MEDIA_TYPE, generate_examples=False
    )


# Answers of the routes that admit new work (``service.quotas.admission``), which they add.
QUOTA_REFUSED = problem(
    "An allowance of the plan is used up (quota, limit, used and resets_at name it), or the tenant's "
    "payment is past due."
)
RATE_LIMITED = problem(
    "Too many requests of this kind: retry after Retry-After seconds (quota fields name it)."
)

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def problem_responses(handler: HTTPRouteHandler, path: str) -> dict[int, ResponseSpec]:
    """The 4xx a route can answer, from what applies to it: validation and the address check
    (all), authentication and access (non-public), the cross-site guard, conflicts, body size
    and domain rules (state-changing methods), and missing resources (an id in the path or body)."""
    methods = handler.http_methods
    unsafe = bool(methods & _UNSAFE)
    public = handler.opt.get(ACCESS) is Access.PUBLIC
    responses = {400: problem("The request is malformed: a parameter or body field is wrong.")}
    if not public:
        responses[401] = problem("No valid API key or session.")
    if not public or unsafe:
        responses[403] = problem("The caller may not do this (role, suspension, or a cross-site request).")
    if "{" in path or unsafe:
        responses[404] = problem("No such resource in the caller's tenant (named in the path or body).")
    if unsafe or "{" in path:
        responses[409] = problem("The request conflicts with the resource's current state.")
    if unsafe:
        responses[413] = problem("The body is too large.")
        responses[415] = problem("A body a cross-site form could send, without an API key (send JSON).")
    responses[422] = problem("The request is well-formed but breaks a rule; the detail names it.")
    return responses


def document_api(app: Litestar) -> None:
    """Adds each route's problem answers to its own documented responses (its own win)."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or set(handler.http_methods) <= set(PUBLIC_METHODS):
                continue
            handler.responses = {**problem_responses(handler, route.path), **(handler.responses or {})}


class ClosedBodySchemaPlugin(PydanticSchemaPlugin):
    """Litestar's pydantic schemas (it adds no other once this one is given), and request bodies
    (``Input``), which refuse unknown fields, say so with ``additionalProperties: false``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        annotation = field_definition.annotation
        if isinstance(annotation, type) and issubclass(annotation, Input):
            schema.additional_properties = False
        return schema
