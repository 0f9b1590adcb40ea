"""Platform admins set a tenant's share of the GPUs; the next lease any worker makes obeys it."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.settings import Settings
from service.accounts.models import User
from service.db.engine import create_engine, session_factory
from service.jobs.queue import JobQueue
from service.jobs.scheduling import WorkerSlot
from tests.helpers import fine_tune_body, sign_up, trainable_dataset
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
SLOT = WorkerSlot(free_bytes=80 << 30, total_bytes=80 << 30)


async def test_a_cap_of_zero_holds_a_tenants_jobs_until_lifted(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    studio = await sign_up(client, "Studio")
    admin = await sign_up(client, "Platform")
    engine = create_engine(settings.database_url)
    async with engine.begin() as conn:
        await conn.execute(update(User).where(User.email == admin.email).values(is_platform_admin=True))
    dataset_id, number = await trainable_dataset(client, studio, make_clip(tmp_path / "a.mp4"))
    job = (
        await client.post("/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=studio.headers)
    ).json()
    compute = f"/v1/admin/tenants/{studio.tenant_id}/compute"
    queue = JobQueue(session_factory(engine), settings.jobs)

    assert (await client.get(compute, headers=admin.headers)).json()["weight"] == 1.0
    held = await client.put(compute, json={"weight": 3, "concurrency_cap": 0}, headers=admin.headers)
    assert held.status_code == 200 and held.json()["concurrency_cap"] == 0
    assert await queue.lease("w1", SLOT) is None

    lifted = await client.put(compute, json={"weight": 3, "concurrency_cap": None}, headers=admin.headers)
    assert lifted.json() == {**held.json(), "concurrency_cap": None}
    lease = await queue.lease("w1", SLOT)
    assert lease is not None and str(lease.job_id) == job["id"]

    refused = await client.put(compute, json={"weight": 0}, headers=admin.headers)
    assert refused.status_code == 400
    assert (await client.get(compute, headers=admin.headers)).json()["weight"] == 3.0
    await engine.dispose()
