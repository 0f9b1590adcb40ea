"""What a generation request may ask for: the platform's limits, then its model's guardrails.

Each refusal is a 422 that names the rule and says why, so a caller can fix the request.
Blocked terms are checked in the prompt only (a negative prompt names what to avoid);
they match in any case as whole words or phrases, with any run of spaces between words.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from core.errors import Invalid
from core.settings import GenerationSettings
from service.models.schemas import Guardrails


@dataclass(frozen=True, slots=True)
class Shape:
    """The settings a request is checked on, with the base's defaults filled in."""

    width: int
    height: int
    frames: int
    steps: int


# Each limit (a field of both the settings and the guardrails), the request's setting it
# bounds, and how a refusal names what it counts.
_LIMITS = (
    ("max_width", "width", "pixels of width"),
    ("max_height", "height", "pixels of height"),
    ("max_frames", "frames", "frames"),
    ("max_steps", "steps", "denoising steps"),
)


def check_platform(shape: Shape, settings: GenerationSettings) -> None:
    for limit, setting, measure in _LIMITS:
        allowed: int = getattr(settings, limit)
        asked: int = getattr(shape, setting)
        if asked > allowed:
            raise Invalid(
                f"This service renders at most {allowed} {measure}; the request asks for {asked}.",
                limit=limit,
            )


def check_guardrails(shape: Shape, prompt: str, guardrails: Guardrails) -> None:
    seen = (prompt, as_encoded(prompt))
    for term in guardrails.blocked_terms:
        if any(_term_pattern(term).search(text) for text in seen):
            raise Invalid(
                f"This model's owner blocks the term '{term}' in prompts.", guardrail="blocked_terms"
            )
    for limit, setting, measure in _LIMITS:
        allowed: int | None = getattr(guardrails, limit)
        asked: int = getattr(shape, setting)
        if allowed is not None and asked > allowed:
            raise Invalid(
                f"This model allows at most {allowed} {measure}; the request asks for {asked}.",
                guardrail=limit,
            )


def as_encoded(prompt: str) -> str:
    """The prompt as the text encoder reads it: the pipeline unescapes HTML twice (so
    ``&#115;torm`` is "storm" to the model), and compatible Unicode forms read alike."""
    return unicodedata.normalize("NFKC", html.unescape(html.unescape(prompt)))


def _term_pattern(term: str) -> re.Pattern[str]:
    # Lookarounds rather than \b, so terms that begin or end with punctuation still match whole.
    words = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)
