"""Applies Alembic migrations programmatically (``rushes-server migrate`` and embedded start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Runs in its own event loop: call it from synchronous code or a worker thread."""
    command.upgrade(alembic_config(url), revision)
