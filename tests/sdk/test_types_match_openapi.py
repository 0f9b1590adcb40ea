"""The SDK's response types against the API's OpenAPI document: the SDK follows the API.

Each SDK type names the component schema(s) it mirrors in ``MIRRORS``. Naming them, rather
than deriving them from the operation each resource method calls, also covers the types that
only ever arrive nested (``Membership``, ``UploadPart``, ``QuotaUse`` …) and those an
operation wraps in a page, and the nested fields check the names: a field holding an SDK
model must hold the one that mirrors the component the API refers to.

Compared for each type: the field names both ways, each field's type (JSON types, formats
``date-time`` and ``date`` as ``datetime`` and ``date``, ``uuid`` and enums as ``str``,
arrays, maps and nested models) and its optionality: nullable in the API exactly when
``X | None`` in the SDK, and a default in the SDK wherever the API may leave the field out
(where both give a default, the same one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import rushes
from rushes import types as sdk
from rushes._models import Model

from core.settings import Settings, StorageSettings
from service.app import create_app

Schema = dict[str, Any]

#: SDK type → the component schemas it mirrors. A type that stands for several answers
#: (an invitation as listed and as just made) names each; a field missing from one of them
#: must then have a default in the SDK.
MIRRORS: dict[type, tuple[str, ...]] = {
    sdk.ApiKey: ("ApiKeyOut",),
    sdk.ApiKeyWithSecret: ("ApiKeyCreated",),
    sdk.Asset: ("AssetOut",),
    sdk.Base: ("BaseOut",),
    sdk.Billing: ("BillingOut",),
    sdk.BillingPortal: ("PortalOut",),
    sdk.Dataset: ("DatasetOut",),
    sdk.DatasetItem: ("ItemOut",),
    sdk.DatasetVersion: ("VersionOut",),
    sdk.FineTune: ("FineTuneOut",),
    sdk.FineTuneUsage: ("FineTuneUsage",),
    sdk.Generation: ("GenerationOut",),
    sdk.GenerationUsage: ("GenerationUsage",),
    sdk.Guardrails: ("Guardrails",),
    sdk.Invitation: ("InvitationOut", "InvitationCreated"),
    # ``GenerationEvent`` is the same class.
    sdk.JobEvent: ("JobEventOut", "GenerationEventOut"),
    sdk.LedgerEntry: ("LedgerEntryOut",),
    sdk.Me: ("MeOut",),
    sdk.Member: ("MemberOut",),
    sdk.Membership: ("MembershipOut",),
    sdk.Memorisation: ("Memorisation",),
    sdk.Model: ("ModelOut",),
    sdk.ModelVersion: ("ModelVersionOut",),
    sdk.PartUrl: ("PartUrlOut",),
    sdk.PartUrls: ("PartUrlsOut",),
    sdk.Plan: ("PlanOut",),
    sdk.QuotaUse: ("QuotaUse",),
    sdk.Quotas: ("QuotasOut",),
    sdk.StorageUsage: ("StorageUsage",),
    sdk.Tenant: ("TenantOut",),
    sdk.TenantBilling: ("TenantBillingOut",),
    sdk.TenantCompute: ("TenantComputeOut",),
    sdk.TenantSummary: ("TenantSummary",),
    sdk.Upload: ("UploadOut",),
    sdk.UploadPart: ("PartOut",),
    sdk.Usage: ("UsageOut",),
    sdk.UsageDay: ("UsageDay",),
    sdk.User: ("UserOut",),
    sdk.Webhook: ("WebhookOut",),
    sdk.WebhookAttempt: ("AttemptOut",),
    sdk.WebhookDelivery: ("DeliveryOut",),
    sdk.WebhookWithSecret: ("WebhookWithSecret",),
}

#: Types with no schema of their own, and why; each still has a test of its own below or
#: is not the API's at all.
NOT_MIRRORED: dict[type, str] = {
    sdk.Page: "the generic list envelope: checked against every Page_*_ schema",
    sdk.PlanLimits: "a request body's limits by quota name: checked against the Quota enum and PlanOut",
    rushes.Session: "the SDK's own: a signed-in user's cookies, never an API answer",
    rushes.RetryPolicy: "the SDK's own retry settings",
}

#: Fields the SDK keeps as plain JSON objects although the API describes them as a model,
#: and why. The field must still be an object in the API, with the same nullability.
PLAIN_OBJECTS: dict[tuple[type, str], str] = {
    (sdk.ModelVersion, "look"): "a measurement report of nested figures that grows with the "
    "look checks; read as a mapping, as its docstring says",
}


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Schema]:
    """The component schemas of the document the server serves, built without a database."""
    folder = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(data_dir=folder, storage=StorageSettings(path=Path(folder))))
    schemas: dict[str, Schema] = app.openapi_schema.to_schema()["components"]["schemas"]
    return schemas


def sdk_types() -> set[type]:
    """Every data class and typed dict the SDK offers: in ``rushes.types`` and at the top."""
    found: set[type] = set()
    for module in (sdk, rushes):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and (dataclasses.is_dataclass(value) or typing.is_typeddict(value)):
                found.add(value)
    return found


def test_every_sdk_type_is_mirrored_or_said_to_be_the_sdks_own() -> None:
    unaccounted = {t.__name__ for t in sdk_types() - MIRRORS.keys() - NOT_MIRRORED.keys()}
    assert not unaccounted, f"map these to their OpenAPI schemas in MIRRORS (or NOT_MIRRORED): {unaccounted}"
    assert all(issubclass(t, Model) for t in MIRRORS)


# A shape is how a type reads in both worlds: "str", "int", "float", "bool", "datetime",
# "date", "Any", "list[...]", "dict[str, ...]", or "model:<SDK class name>"; None is kept
# apart as nullability.


def schema_shape(schema: Schema, components: dict[str, Schema]) -> tuple[str, bool]:
    """A schema's shape and whether it admits null; a component that is an object reads as
    the SDK type mirroring it (``model:?Name`` when none does)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = components[name]
        if "enum" in target:
            return schema_shape(target, components)
        mirrors = [t.__name__ for t, names in MIRRORS.items() if name in names]
        return (f"model:{mirrors[0]}" if mirrors else f"model:?{name}"), False
    if len(schema.get("allOf", ())) == 1:
        return schema_shape(schema["allOf"][0], components)
    options = schema.get("oneOf") or schema.get("anyOf")
    if options:
        not_null = [o for o in options if o.get("type") != "null"]
        assert len(not_null) == 1, f"a union the SDK cannot mirror: {schema}"
        shape, _ = schema_shape(not_null[0], components)
        return shape, len(not_null) < len(options)
    kind = schema.get("type")
    if isinstance(kind, list):
        not_null = [k for k in kind if k != "null"]
        assert len(not_null) == 1, f"a union the SDK cannot mirror: {schema}"
        shape, _ = schema_shape({**schema, "type": not_null[0]}, components)
        return shape, "null" in kind
    if kind == "string":
        return {"date-time": "datetime", "date": "date"}.get(schema.get("format", ""), "str"), False
    if kind in ("integer", "number", "boolean"):
        return {"integer": "int", "number": "float", "boolean": "bool"}[kind], False
    if kind == "array":
        return f"list[{joined(*schema_shape(schema.get('items', {}), components))}]", False
    if kind == "object":
        assert "properties" not in schema, f"an inline object the SDK cannot mirror: {schema}"
        values = schema.get("additionalProperties", {})
        value = "Any" if values in ({}, True) else joined(*schema_shape(values, components))
        return f"dict[str, {value}]", False
    if kind is None and not schema:
        return "Any", False
    raise AssertionError(f"a schema this test does not know: {schema}")


def hint_shape(hint: Any) -> tuple[str, bool]:
    """A type hint's shape and whether it admits None."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(options) == 1, f"a union the API cannot send: {hint}"
        return hint_shape(options[0])[0], True
    if origin is Literal:
        assert all(isinstance(a, str) for a in typing.get_args(hint)), hint
        return "str", False
    if origin is list:
        return f"list[{joined(*hint_shape(typing.get_args(hint)[0]))}]", False
    if origin is dict:
        key, value = typing.get_args(hint)
        assert key is str, hint
        return f"dict[str, {joined(*hint_shape(value))}]", False
    if hint is Any:
        return "Any", False
    if isinstance(hint, type) and issubclass(hint, Model):
        return f"model:{hint.__name__}", False
    names = {str: "str", int: "int", float: "float", bool: "bool", dt.datetime: "datetime", dt.date: "date"}
    assert hint in names, f"a type this test does not know: {hint}"
    return names[hint], False


def joined(shape: str, nullable: bool) -> str:
    return f"{shape} | None" if nullable else shape


def sdk_default(field: dataclasses.Field[Any]) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def drift(cls: type, names: tuple[str, ...], components: dict[str, Schema]) -> list[str]:
    """How ``cls`` differs from the component schemas ``names``, one line a difference."""
    schemas = [components[name] for name in names]
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    api_fields = {p for s in schemas for p in s.get("properties", {})}
    problems = [f"the SDK lacks {p!r}, which the API returns" for p in sorted(api_fields - fields.keys())]
    problems += [
        f"the SDK declares {f!r}, which the API does not return" for f in sorted(fields.keys() - api_fields)
    ]
    for name in sorted(fields.keys() & api_fields):
        sdk_shape, sdk_nullable = hint_shape(hints[name])
        field = fields[name]
        has_default = (
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        )
        present = [s for s in schemas if name in s.get("properties", {})]
        always_sent = len(present) == len(schemas) and all(name in s.get("required", ()) for s in present)
        api_nullable = False
        for schema in present:
            prop = schema["properties"][name]
            shape, nullable = schema_shape(prop, components)
            api_nullable |= nullable
            if (cls, name) in PLAIN_OBJECTS:
                if not shape.startswith(("model:", "dict[")) or sdk_shape != "dict[str, Any]":
                    problems.append(
                        f"{name!r} is kept as a plain object: {shape} in the API, {sdk_shape} in the SDK"
                    )
            elif shape != sdk_shape:
                problems.append(f"{name!r} is {shape} in the API ({schema['title']}), {sdk_shape} in the SDK")
            if "default" in prop and has_default and sdk_default(field) != prop["default"]:
                problems.append(
                    f"{name!r} defaults to {prop['default']!r} in the API, {sdk_default(field)!r} in the SDK"
                )
        # A field missing from one of several answers reads as None in the SDK.
        if sdk_nullable != api_nullable and not (sdk_nullable and len(present) < len(schemas)):
            problems.append(
                f"{name!r} is {'' if api_nullable else 'not '}nullable in the API, "
                f"{'' if sdk_nullable else 'not '}X | None in the SDK"
            )
        if not always_sent and not has_default:
            problems.append(f"{name!r} may be left out by the API, but has no default in the SDK")
    return problems


@pytest.mark.parametrize("cls", [pytest.param(t, id=t.__name__) for t in MIRRORS])
def test_sdk_type_matches_its_schemas(cls: type, components: dict[str, Schema]) -> None:
    names = MIRRORS[cls]
    assert not (missing := [n for n in names if n not in components]), f"no such schemas: {missing}"
    assert drift(cls, names, components) == []


def test_page_matches_every_page_schema(components: dict[str, Schema]) -> None:
    pages = {name: schema for name, schema in components.items() if name.startswith("Page_")}
    assert pages
    hints = typing.get_type_hints(sdk.Page)
    sdk_fields = {f.name for f in dataclasses.fields(sdk.Page)}
    for name, schema in pages.items():
        assert set(schema["properties"]) == sdk_fields, name
        assert set(schema["required"]) == sdk_fields, name
        assert schema["properties"]["items"]["type"] == "array", name
        for field in sdk_fields - {"items"}:
            assert schema_shape(schema["properties"][field], components) == hint_shape(hints[field]), (
                name,
                field,
            )


def test_plan_limits_are_the_quotas_in_the_apis_order(components: dict[str, Schema]) -> None:
    assert list(sdk.PlanLimits.__annotations__) == components["Quota"]["enum"]
    hints = typing.get_type_hints(sdk.PlanLimits)
    plan = components["PlanOut"]["properties"]
    for quota, hint in hints.items():
        assert hint_shape(hint) == schema_shape(plan[quota], components), quota


def test_drift_is_found(components: dict[str, Schema]) -> None:
    """The comparison itself: a tenant type that lost a field, gained one, and got a type and
    a nullability wrong; guardrails that require a field the API may leave out, with another
    default than the API's."""

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Drifted(Model):
        id: str
        name: int
        created_at: dt.datetime | None = None
        nickname: str

    assert drift(Drifted, ("TenantOut",), components) == [
        "the SDK lacks 'status', which the API returns",
        "the SDK declares 'nickname', which the API does not return",
        "'created_at' is not nullable in the API, X | None in the SDK",
        "'name' is str in the API (TenantOut), int in the SDK",
    ]

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Lax(Model):
        blocked_terms: list[str] = dataclasses.field(default_factory=list)
        max_width: int | None
        max_height: int | None = None
        max_frames: int | None = None
        max_steps: int | None = None
        memorisation_policy: str = "block"

    assert drift(Lax, ("Guardrails",), components) == [
        "'max_width' may be left out by the API, but has no default in the SDK",
        "'memorisation_policy' defaults to 'record' in the API, 'block' in the SDK",
    ]
