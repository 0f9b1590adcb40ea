"""What happens outside the browser in the usage and admin journeys: an operator makes a
platform admin with ``rushes-server create-admin``, and the worker writes ledger charges."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from service.db.engine import create_engine
from service.db.tenancy import set_tenant
from service.usage.models import Charge, LedgerEntry
from tests.helpers import settings_env
from tests.web.conftest import PASSWORD, Visit


def make_admin(settings: Settings, email: str) -> None:
    """The operator's command, on the server's settings: a new account in a tenant of its own."""
    env = {**os.environ, **settings_env(settings), "RUSHES_ADMIN_PASSWORD": PASSWORD}
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "create-admin", email, "--tenant-name", "Platform"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def sign_in(visit: Visit, email: str) -> None:
    visit.goto("/signin")
    visit.page.get_by_label("Email").fill(email)
    visit.page.get_by_label("Password").fill(PASSWORD)
    visit.page.get_by_role("button", name="Sign in").click()
    visit.page.wait_for_url(f"{visit.base}/app")


async def _write(settings: Settings, tenant_id: str, entries: list[tuple[Charge, float, datetime]]) -> None:
    engine = create_engine(settings.database_url)
    async with AsyncSession(engine) as session:
        set_tenant(session, uuid.UUID(tenant_id))
        session.add_all(
            LedgerEntry(
                key=f"test:{uuid.uuid4()}",
                charge=charge,
                quantity=quantity,
                work_id=uuid.uuid4(),
                attempt=1,
                occurred_at=at,
            )
            for charge, quantity, at in entries
        )
        await session.commit()
    await engine.dispose()


def write_ledger(settings: Settings, tenant_id: str, *entries: tuple[Charge, float, datetime]) -> None:
    """Charges as the worker writes them. In a thread of its own: Playwright's sync API keeps an
    event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _write(settings, tenant_id, list(entries))).result()
