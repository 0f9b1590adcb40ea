"""INSERT ... ON CONFLICT DO NOTHING, for the two databases Rushes runs on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_duplicates(session: AsyncSession, model: type[Any], unique: list[str]) -> Any:
    """An INSERT of ``model`` rows that skips, without an error, rows whose ``unique`` columns
    match an existing row's: how concurrent writers record a fact once without racing.

    Typed ``Any`` because PostgreSQL's and SQLite's insert constructs share no public base
    that has ``on_conflict_do_nothing``; both take the same ``values``/``returning`` calls.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing(index_elements=unique)
