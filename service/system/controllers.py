from __future__ import annotations

from anyio import to_thread
from litestar import Response, get
from litestar.di import NamedDependency
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from core.storage import ObjectStorage
from service.auth.policy import Access, access


@get("/healthz", operation_id="health", opt=access(Access.PUBLIC), tags=["system"])
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@get("/readyz", operation_id="ready", opt=access(Access.PUBLIC), tags=["system"])
async def readyz(
    db_session: NamedDependency[AsyncSession], storage: NamedDependency[ObjectStorage]
) -> Response[dict[str, str]]:
    """The database and storage both answer."""
    checks: dict[str, str] = {}
    try:
        await db_session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await to_thread.run_sync(storage.ping)
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )
