"""``client.usage``, ``client.admin.tenants.usage`` and the ``usage`` commands, against the live server.

A tenant's work is made over the API; what a worker would write (its end, output size and the
ledger's charges) is set in the server's database, on fixed days in March 2024.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import rushes
from rushes import types
from rushes.cli import main
from sqlalchemy import update

from core.work.status import WorkStatus
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.generations.models import Generation
from service.jobs.models import FineTuneJob
from service.usage.models import Charge
from tests.helpers import Caller, make_model_version
from tests.media_samples import make_clip
from tests.sdk.conftest import LiveServer, charge, run

MARCH = {"since": "2024-03-01", "until": "2024-03-31"}
ADAPTER = b"adapter" * 100


def _at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


async def _set(
    server: LiveServer, kind: type[FineTuneJob] | type[Generation], row_id: str, **values: Any
) -> None:
    engine = create_engine(server.settings.database_url)
    async with session_factory(engine)() as session:
        mark_unscoped(session)
        await session.execute(update(kind).where(kind.id == uuid.UUID(row_id)).values(**values))
        await session.commit()
    await engine.dispose()


@pytest.fixture
def worked(live_server: LiveServer, api_key: str, client: rushes.Client, tmp_path: Path) -> str:
    """In the key's tenant: a fine-tune that ended on 5 March 2024 after 12.5 GPU seconds and a
    generation that ended on 6 March after 2.5, with 4 KiB of outputs. Returns the tenant's id."""
    me = client.me.get()
    caller = Caller(me.email, me.tenant.id, me.user_id, {"Authorization": f"Bearer {api_key}"})

    async def make() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=live_server.url) as http:
            return await make_model_version(
                http,
                caller,
                live_server.settings,
                live_server.storage,
                make_clip(tmp_path / "a.mp4"),
                adapter=ADAPTER,
            )

    version = asyncio.run(make())
    job_id, tenant_id = version["job_id"], me.tenant.id
    asyncio.run(_set(live_server, FineTuneJob, job_id, finished_at=_at("2024-03-05"), gpu_seconds=12.5))
    charge(live_server, tenant_id, job_id, Charge.FINE_TUNE_GPU_SECONDS, 12.5, _at("2024-03-05"))
    generation = client.generations.create(version["model_id"], "rain on a window at night")
    asyncio.run(
        _set(
            live_server,
            Generation,
            generation.id,
            status=WorkStatus.SUCCEEDED,
            started_at=_at("2024-03-06"),
            finished_at=_at("2024-03-06"),
            gpu_seconds=2.5,
            output_bytes=4096,
        )
    )
    charge(live_server, tenant_id, generation.id, Charge.GENERATION_GPU_SECONDS, 2.5, _at("2024-03-06"))
    charge(live_server, tenant_id, generation.id, Charge.OUTPUT_BYTES, 4096, _at("2024-03-06"))
    return tenant_id


def test_usage_sync_async_and_admin(
    live_server: LiveServer, api_key: str, client: rushes.Client, worked: str
) -> None:
    usage = client.usage.get(since=date(2024, 3, 1), until="2024-03-31")

    assert isinstance(usage, types.Usage)
    assert (usage.since, usage.until) == (date(2024, 3, 1), date(2024, 3, 31))
    assert usage.fine_tunes == types.FineTuneUsage(count=1, succeeded=1, gpu_seconds=12.5)
    assert usage.generations == types.GenerationUsage(
        count=1, succeeded=1, gpu_seconds=2.5, output_bytes=4096
    )
    assert usage.days == [
        types.UsageDay(
            date=date(2024, 3, 5), fine_tune_gpu_seconds=12.5, generation_gpu_seconds=0.0, generations=0
        ),
        types.UsageDay(
            date=date(2024, 3, 6), fine_tune_gpu_seconds=0.0, generation_gpu_seconds=2.5, generations=1
        ),
    ]
    storage = usage.storage
    assert (storage.adapter_bytes, storage.output_bytes) == (len(ADAPTER), 4096)
    assert storage.total_bytes == storage.footage_bytes + len(ADAPTER) + 4096 and storage.footage_bytes > 0

    # The default period is this month so far, which holds none of March 2024's work.
    this_month = client.usage.get()
    assert this_month.until == datetime.now(UTC).date() and this_month.since == this_month.until.replace(
        day=1
    )
    assert this_month.fine_tunes.count == 0 and this_month.days == []

    async def from_async() -> types.Usage:
        async with rushes.AsyncClient(api_key=api_key, base_url=live_server.url) as async_client:
            return await async_client.usage.get(**MARCH)

    assert asyncio.run(from_async()) == usage

    with rushes.Client(api_key=live_server.admin_api_key(), base_url=live_server.url) as admin:
        assert admin.admin.tenants.usage(worked, **MARCH) == usage
        assert admin.usage.get(**MARCH).fine_tunes.count == 0  # the admin's own tenant
        with pytest.raises(rushes.NotFoundError):
            admin.admin.tenants.usage(str(uuid.uuid4()))
    with pytest.raises(rushes.PermissionDeniedError):
        client.admin.tenants.usage(worked)


def test_a_bad_period_is_refused_with_the_reason(client: rushes.Client) -> None:
    with pytest.raises(rushes.UnprocessableEntityError) as after:
        client.usage.get(since="2024-03-02", until="2024-03-01")
    assert after.value.detail == "since (2024-03-02) is after until (2024-03-01)."
    with pytest.raises(rushes.UnprocessableEntityError, match="at most 366 days"):
        client.usage.get(since=date(2024, 1, 1), until=date(2025, 1, 1))
    with pytest.raises(rushes.BadRequestError):
        client.usage.get(since="March")


def test_usage_commands(
    cli_env: Path,
    live_server: LiveServer,
    api_key: str,
    client: rushes.Client,
    worked: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    march = ("--since", "2024-03-01", "--until", "2024-03-31")
    code, out, err = run(capsys, "usage", *march, "--api-key", api_key)
    assert code == 0, err
    footage = client.usage.get(**MARCH).storage.footage_bytes
    lines = out.splitlines()
    assert lines[:3] == [
        "period       2024-03-01 to 2024-03-31 (UTC days, both included)",
        "fine-tunes   1 (1 succeeded), 12.50 GPU-seconds",
        "generations  1 (1 succeeded), 2.50 GPU-seconds, 4.0 KiB of outputs",
    ]
    assert lines[3].startswith("storage now ") and f"adapters {len(ADAPTER)} B, outputs 4.0 KiB" in lines[3]
    assert footage > 0
    assert lines[4:9] == [
        "",
        "day         fine-tune GPU-s  generation GPU-s  generations",
        "2024-03-05            12.50              0.00            0",
        "2024-03-06             0.00              2.50            1",
        "",
    ]
    # Then the plan and its quotas, as `rushes quotas` prints them.
    assert lines[9:] == run(capsys, "quotas", "--api-key", api_key)[1].splitlines()
    assert lines[9] == "plan         default" and len(lines[9:]) == 5 + len(types.QUOTA_NAMES)

    code, out, _ = run(capsys, "usage", *march, "--json", "--api-key", api_key)
    assert code == 0
    assert json.loads(out) == {**client.usage.get(**MARCH).to_dict(), "quotas": client.quotas.get().to_dict()}
    code, out, _ = run(capsys, "usage", "--api-key", api_key)
    assert code == 0 and "no fine-tunes or generations in this period" in out.splitlines()

    admin_key = live_server.admin_api_key()
    code, admin_out, err = run(capsys, "admin", "tenants", "usage", worked, *march, "--api-key", admin_key)
    assert code == 0, err
    assert admin_out == run(capsys, "usage", *march, "--api-key", api_key)[1]
    code, out, _ = run(capsys, "admin", "tenants", "--limit", "1", "--api-key", admin_key)
    assert code == 0 and len(out.splitlines()) == 2  # the header, then one tenant

    code, out, err = run(
        capsys, "usage", "--since", "2024-03-02", "--until", "2024-03-01", "--api-key", api_key
    )
    assert (code, out) == (1, "")
    assert err.startswith("rushes: error: 422 since (2024-03-02) is after until (2024-03-01).")
    assert err.count("\n") == 1
    code, _, err = run(capsys, "admin", "tenants", "usage", worked, "--api-key", api_key)
    assert code == 1 and "403 Only platform admins may do this." in err
    with pytest.raises(SystemExit) as bad_day:
        main(["usage", "--since", "1 March"])
    assert bad_day.value.code == 2
