"""Typed response models: frozen dataclasses built from JSON by their type hints."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from typing import Any, Self, TypeVar

T = TypeVar("T")


class Model:
    """Mixin for response dataclasses. Unknown fields are ignored, so newer servers don't break old SDKs."""

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__} expects a JSON object, got {type(data).__name__}")
        values = {name: _convert(hint, data[name]) for name, hint in _fields(cls).items() if name in data}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-ready values (datetimes become ISO 8601 strings)."""
        return typing.cast(dict[str, Any], _plain(self))


_FIELDS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> dict[str, Any]:
    if (known := _FIELDS.get(cls)) is None:
        hints = typing.get_type_hints(cls)
        known = _FIELDS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return known


def _convert(hint: Any, value: Any) -> Any:
    if value is None or hint is Any:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    if origin is not None:
        return value
    if hint is datetime:
        return datetime.fromisoformat(value)
    if hint is date:
        return date.fromisoformat(value)
    if isinstance(hint, type) and issubclass(hint, Model):
        return hint.from_json(value)
    return value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, date):  # datetimes too
        return value.isoformat()
    return value
