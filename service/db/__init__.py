"""Persistence: the declarative base, the engine, tenant scoping and migrations."""
