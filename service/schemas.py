"""Base classes for request and response bodies."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

T = TypeVar("T")

# What the database's integer columns hold: INTEGER is 32-bit, BIGINT 64-bit. Every integer a
# request carries is bounded by one of these before the database sees it (path and query
# parameters: ``service/params.py``; bodies: ``le=INT32_MAX`` on each field kept in an INTEGER
# column, in its own ``Field`` so that the OpenAPI document shows it, and ``Input``'s check
# below for everything else).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def refuse_unstorable(value: Any, where: str = "the body") -> None:
    """Raises ``ValueError`` for what no column can hold: a NUL character, text that is not
    valid Unicode (a lone surrogate), an integer past 64 bits. ``Input`` applies it to every body;
    the path and query string get the same rule in ``service/params.py``."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} must not contain NUL characters (control characters no column stores)")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{where} must be valid Unicode") from None
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise ValueError(f"{where} must lie between {-INT64_MAX - 1} and {INT64_MAX}")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_unstorable(key, f"{where}'s keys")
            refuse_unstorable(item, str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_unstorable(item, f"{where}[{index}]")


class Input(BaseModel):
    """A request body: unknown fields are an error, not silently dropped, and nothing the
    database cannot store (``refuse_unstorable``) gets as far as a field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        refuse_unstorable(data)
        return data


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Output, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
