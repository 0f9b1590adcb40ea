"""The template engine, the pages' security headers and the helper every page renders through."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

import web
from core.settings import Settings

TEMPLATES = Path(web.__file__).parent / "templates"
STATIC = Path(web.__file__).parent / "static"


def content_security_policy(connect: str | None = None) -> str:
    """Nothing but this server, no inline script or style, no framing, forms post only here.

    ``connect`` is one more origin scripts may call: the storage the footage page PUTs parts
    straight to (``direct_upload_origin``); the other pages need none.
    """
    connect_src = f"connect-src 'self' {connect}" if connect else "connect-src 'self'"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self'",
            "font-src 'self'",
            connect_src,
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def direct_upload_origin(settings: Settings) -> str | None:
    """The origin browsers send upload parts to, when the server hands out signed part URLs
    (S3 with ``uploads.direct``): the name the URLs are signed for (``service.uploads``)."""
    storage = settings.storage
    if storage.backend != "s3" or not settings.uploads.direct:
        return None
    if storage.s3_public_url:
        public = urlsplit(storage.s3_public_url)
        return f"{public.scheme}://{public.netloc}"
    return f"{'https' if storage.s3_secure else 'http'}://{storage.s3_endpoint}"


SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    # Pages show tenant data and, once, API keys: never kept by a shared cache or the back button.
    "Cache-Control": "no-store",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y, %H:%M UTC") if value else "never"


def size(value: int) -> str:
    """Bytes in the decimal units file managers show: ``12.3 MB``."""
    amount = float(value)
    for unit in ("bytes", "kB", "MB", "GB"):
        if amount < 1000:
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"


def _duration(seconds: float) -> str:
    """A clip's length: ``0.4 s`` for short ones, ``1:05`` or ``1:02:05`` for the rest."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = size
    env.filters["duration"] = _duration
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment()))


def page(
    name: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> Template:
    return Template(
        template_name=name,
        context=context,
        status_code=status_code,
        headers={**SECURITY_HEADERS, **(headers or {})},
        media_type="text/html",
    )
