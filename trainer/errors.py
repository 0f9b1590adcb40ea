"""Errors the trainer raises for things its caller can fix."""

from __future__ import annotations


class TrainerInputError(ValueError):
    """Bad user input: a missing folder, an undecodable clip, an impossible setting.

    The CLI prints these as one line and exits non-zero; the service maps them to a failed
    job with the message shown to the tenant. Anything else is a bug and keeps its traceback.
    """
