"""Quotas at admission: plans and overrides set by admins, 402/413/429 naming the quota, exact
under parallel requests, concurrency caps that queue, and a past-due tenant that starts nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage
from core.work.status import WorkStatus
from service.db.engine import create_engine, session_factory
from service.generations.queue import GenerationQueue
from service.jobs.queue import JobQueue
from service.jobs.scheduling import WorkerSlot
from tests.conftest import Parallel
from tests.helpers import (
    Caller,
    fine_tune_body,
    make_model_version,
    sign_up,
    sign_up_admin,
    trainable_dataset,
    upload_body,
)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
PARALLEL = 50
SLOT = WorkerSlot(free_bytes=2**40)


async def _override(client: Client, admin: Caller, tenant: Caller, **limits: int | None) -> dict[str, Any]:
    response = await client.patch(
        f"/v1/admin/tenants/{tenant.tenant_id}/quotas", json={"overrides": limits}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _total(client: Client, caller: Caller, path: str) -> int:
    response = await client.get(path, headers=caller.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


async def _trained_dataset(client: Client, caller: Caller) -> tuple[str, int]:
    """The dataset ``make_model_version`` trained on, and its version."""
    (dataset,) = (await client.get("/v1/datasets", headers=caller.headers)).json()["items"]
    return str(dataset["id"]), 1


def _quota(problem: dict[str, Any]) -> tuple[Any, ...]:
    return problem["quota"], problem["limit"], problem["used"]


async def test_parallel_fine_tunes_against_three_models_left_admit_exactly_three(
    client: Client, parallel: Parallel, settings: Settings, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    dataset_id, number = await trainable_dataset(client, studio, make_clip(tmp_path / "a.mp4"))
    await _override(client, admin, studio, models=3)

    answers = await parallel(
        [
            client.build_request(
                "POST",
                "/v1/fine-tunes",
                json=fine_tune_body(dataset_id, number, model_name=f"look {n}"),
                headers=studio.headers,
            )
            for n in range(PARALLEL)
        ]
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [402] * (PARALLEL - 3)
    refused = next(a for a in answers if a.status_code == 402)
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"].endswith("/quota-exceeded")
    assert _quota(refused.json()) == ("models", 3, 3)
    assert "at most 3 models" in refused.json()["detail"]
    # Nothing half-made: only the admitted fine-tunes and their models exist.
    assert await _total(client, studio, "/v1/models") == 3
    assert await _total(client, studio, "/v1/fine-tunes") == 3
    # A version added to an existing model needs no new model.
    models = (await client.get("/v1/models", headers=studio.headers)).json()["items"]
    more = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(dataset_id, number, model_id=models[0]["id"]),
        headers=studio.headers,
    )
    assert more.status_code == 201, more.text


async def test_parallel_generations_beyond_the_rate_get_429_with_retry_after(
    client: Client, parallel: Parallel, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    version = await make_model_version(client, studio, settings, storage, make_clip(tmp_path / "a.mp4"))
    await _override(client, admin, studio, generations_per_minute=3)
    body = {"model_id": version["model_id"], "prompt": "rain on a window"}

    answers = await parallel(
        [
            client.build_request("POST", "/v1/generations", json=body, headers=studio.headers)
            for _ in range(PARALLEL)
        ]
    )

    assert sorted(a.status_code for a in answers) == [201] * 3 + [429] * (PARALLEL - 3)
    limited = next(a for a in answers if a.status_code == 429)
    assert limited.json()["type"].endswith("/rate-limited")
    assert _quota(limited.json()) == ("generations_per_minute", 3, 3)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["retry_after"] == int(limited.headers["retry-after"])
    assert await _total(client, studio, "/v1/generations") == 3


async def test_parallel_uploads_never_reserve_more_storage_than_the_quota(
    client: Client, parallel: Parallel, settings: Settings, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    clip = make_clip(tmp_path / "a.mp4")
    size = clip.stat().st_size
    await _override(client, admin, studio, storage_bytes=2 * size + size // 2)

    answers = await parallel(
        [
            client.build_request("POST", "/v1/uploads", json=upload_body(clip), headers=studio.headers)
            for _ in range(10)
        ]
    )

    assert sorted(a.status_code for a in answers) == [201] * 2 + [402] * 8
    refused = next(a for a in answers if a.status_code == 402).json()
    assert _quota(refused) == ("storage_bytes", 2 * size + size // 2, 2 * size)
    assert "reserved by open uploads" in refused["detail"]
    # Aborting an upload gives its reservation back.
    opened = next(a for a in answers if a.status_code == 201).json()
    assert (await client.delete(f"/v1/uploads/{opened['id']}", headers=studio.headers)).status_code == 204
    again = await client.post("/v1/uploads", json=upload_body(clip), headers=studio.headers)
    assert again.status_code == 201, again.text
    quotas = (await client.get("/v1/quotas", headers=studio.headers)).json()
    storage = next(q for q in quotas["quotas"] if q["quota"] == "storage_bytes")
    assert (storage["used"], storage["remaining"], storage["when_reached"]) == (
        2 * size,
        size // 2,
        "refused_402",
    )


async def test_used_gpu_seconds_refuse_new_work_until_the_month_resets(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    version = await make_model_version(client, studio, settings, storage, make_clip(tmp_path / "a.mp4"))
    dataset_id, number = await _trained_dataset(client, studio)
    await _override(client, admin, studio, gpu_seconds_per_month=100)
    # A worker runs one fine-tune to 100 GPU seconds: the allowance is used up.
    created = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(dataset_id, number, model_id=version["model_id"]),
        headers=studio.headers,
    )
    assert created.status_code == 201, created.text
    engine = create_engine(settings.database_url)
    queue = JobQueue(session_factory(engine), settings.jobs)
    lease = await queue.lease("quota-test", SLOT)
    assert lease is not None and str(lease.job_id) == created.json()["id"]
    assert (await queue.heartbeat(lease, step=1, gpu_seconds=60.0)).held
    assert await queue.finish(lease, WorkStatus.SUCCEEDED, gpu_seconds=40.0)
    await engine.dispose()
    jobs_before = await _total(client, studio, "/v1/fine-tunes")

    train = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(dataset_id, number, model_id=version["model_id"]),
        headers=studio.headers,
    )
    render = await client.post(
        "/v1/generations", json={"model_id": version["model_id"], "prompt": "rain"}, headers=studio.headers
    )

    now = datetime.now(UTC)
    first_of_next = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    for refused in (train, render):
        assert refused.status_code == 402, refused.text
        problem = refused.json()
        assert _quota(problem) == ("gpu_seconds_per_month", 100, 100.0)
        assert datetime.fromisoformat(problem["resets_at"]) == first_of_next
        assert f"{first_of_next:%Y-%m-%d}" in problem["detail"]
    assert await _total(client, studio, "/v1/fine-tunes") == jobs_before
    assert await _total(client, studio, "/v1/generations") == 0
    # Growing the allowance lets work start again.
    await _override(client, admin, studio, gpu_seconds_per_month=1000)
    again = await client.post(
        "/v1/generations", json={"model_id": version["model_id"], "prompt": "rain"}, headers=studio.headers
    )
    assert again.status_code == 201, again.text


async def test_a_past_due_tenant_starts_nothing_new_but_reads_its_work(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    clip = make_clip(tmp_path / "a.mp4")
    tenant = f"/v1/admin/tenants/{studio.tenant_id}"
    assert (await client.patch(tenant, json={"status": "past_due"}, headers=admin.headers)).status_code == 200

    refused = await client.post("/v1/uploads", json=upload_body(clip), headers=studio.headers)
    assert refused.status_code == 402 and refused.json()["type"].endswith("/payment-required")
    assert "past due" in refused.json()["detail"]
    assert (await client.get("/v1/assets", headers=studio.headers)).status_code == 200
    quotas = (await client.get("/v1/quotas", headers=studio.headers)).json()
    assert quotas["status"] == "past_due"

    assert (await client.patch(tenant, json={"status": "active"}, headers=admin.headers)).status_code == 200
    assert (
        await client.post("/v1/uploads", json=upload_body(clip), headers=studio.headers)
    ).status_code == 201


async def test_the_plans_largest_upload_is_a_413_naming_the_quota(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    clip = make_clip(tmp_path / "a.mp4")
    await _override(client, admin, studio, max_upload_bytes=clip.stat().st_size - 1)

    refused = await client.post("/v1/uploads", json=upload_body(clip), headers=studio.headers)

    assert refused.status_code == 413, refused.text
    assert _quota(refused.json()) == ("max_upload_bytes", clip.stat().st_size - 1, clip.stat().st_size)


async def test_work_beyond_a_concurrency_cap_waits_in_the_queue(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    version = await make_model_version(client, studio, settings, storage, make_clip(tmp_path / "a.mp4"))
    dataset_id, number = await _trained_dataset(client, studio)
    await _override(client, admin, studio, concurrent_generations=1, concurrent_fine_tunes=0)
    body = {"model_id": version["model_id"], "prompt": "rain"}
    for _ in range(2):
        assert (await client.post("/v1/generations", json=body, headers=studio.headers)).status_code == 201
    job = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(dataset_id, number, model_id=version["model_id"]),
        headers=studio.headers,
    )
    assert job.status_code == 201, job.text  # admitted: a cap queues work rather than refusing it
    engine = create_engine(settings.database_url)
    generations = GenerationQueue(session_factory(engine), settings.generations)
    jobs = JobQueue(session_factory(engine), settings.jobs)

    first = await generations.claim_batch("quota-test", ["tiny"], 4)
    assert len(first) == 1
    assert await generations.claim_batch("quota-test", ["tiny"], 4) == []
    assert await jobs.lease("quota-test", SLOT) is None
    assert await generations.finish_succeeded("quota-test", first[0].id, output_bytes=10, gpu_seconds=1.0)
    assert len(await generations.claim_batch("quota-test", ["tiny"], 4)) == 1
    await _override(client, admin, studio, concurrent_fine_tunes=None)
    lease = await jobs.lease("quota-test", SLOT)
    assert lease is not None and str(lease.job_id) == job.json()["id"]
    await engine.dispose()


async def test_admins_manage_plans_and_tenants_see_theirs(client: Client, settings: Settings) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    plans = "/v1/admin/plans"
    # The embedded default: one unlimited plan, so a new deployment refuses nothing.
    (default,) = (await client.get(plans, headers=admin.headers)).json()
    assert default["name"] == "default" and default["is_default"]
    assert all(default[q] is None for q in ("gpu_seconds_per_month", "storage_bytes", "models"))

    indie = await client.post(
        plans, json={"name": "Indie", "gpu_seconds_per_month": 36_000, "models": 5}, headers=admin.headers
    )
    assert indie.status_code == 201, indie.text
    duplicate = await client.post(plans, json={"name": "Indie"}, headers=admin.headers)
    assert duplicate.status_code == 409 and "exists already" in duplicate.json()["detail"]
    bad = await client.post(plans, json={"name": "Neg", "models": -1}, headers=admin.headers)
    assert bad.status_code == 400

    quotas = f"/v1/admin/tenants/{studio.tenant_id}/quotas"
    moved = await client.patch(
        quotas, json={"plan_id": indie.json()["id"], "overrides": {"models": 7}}, headers=admin.headers
    )
    assert moved.status_code == 200, moved.text
    own = (await client.get("/v1/quotas", headers=studio.headers)).json()
    assert own["plan"] == "Indie" and own["overrides"] == {"models": 7}
    by_name = {q["quota"]: q for q in own["quotas"]}
    assert by_name["gpu_seconds_per_month"]["limit"] == 36_000
    assert by_name["gpu_seconds_per_month"]["remaining"] == 36_000
    assert by_name["models"]["limit"] == 7 and by_name["storage_bytes"]["limit"] is None
    assert by_name["concurrent_fine_tunes"]["when_reached"] == "queued"
    assert own == (await client.get(quotas, headers=admin.headers)).json()

    in_use = await client.delete(f"{plans}/{indie.json()['id']}", headers=admin.headers)
    assert in_use.status_code == 409 and "1 tenant(s)" in in_use.json()["detail"]
    # Making Indie the default unmakes the old one; a tenant without a plan follows the default.
    await client.patch(quotas, json={"plan_id": None}, headers=admin.headers)
    renamed = await client.put(
        f"{plans}/{indie.json()['id']}",
        json={"name": "Indie", "models": 2, "is_default": True},
        headers=admin.headers,
    )
    assert renamed.status_code == 200 and renamed.json()["gpu_seconds_per_month"] is None
    listed = {p["name"]: p["is_default"] for p in (await client.get(plans, headers=admin.headers)).json()}
    assert listed == {"default": False, "Indie": True}
    assert (await client.get("/v1/quotas", headers=studio.headers)).json()["plan"] == "Indie"
    missing = await client.patch(quotas, json={"plan_id": str(uuid.uuid4())}, headers=admin.headers)
    assert missing.status_code == 404
    assert (await client.delete(f"{plans}/{indie.json()['id']}", headers=admin.headers)).status_code == 204


async def test_parallel_fine_tunes_onto_one_new_model_all_succeed(
    client: Client, parallel: Parallel, settings: Settings, tmp_path: Path
) -> None:
    """Admission serialises a tenant's creates, so 50 that make the same target model at once
    make it once and each add a version: none answers 409 for a race of our own."""
    studio = await sign_up(client, "Harbour Films")
    dataset_id, number = await trainable_dataset(client, studio, make_clip(tmp_path / "a.mp4"))

    answers = await parallel(
        [
            client.build_request(
                "POST",
                "/v1/fine-tunes",
                json=fine_tune_body(dataset_id, number),
                headers={**studio.headers, "Idempotency-Key": uuid.uuid4().hex},
            )
            for _ in range(PARALLEL)
        ]
    )

    assert [a.status_code for a in answers] == [201] * PARALLEL, {
        a.text for a in answers if a.status_code != 201
    }
    assert len({a.json()["model_id"] for a in answers}) == 1
    assert await _total(client, studio, "/v1/models") == 1


async def test_an_allowance_at_80_and_100_percent_is_noticed_once_each_month(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    admin, studio = await sign_up_admin(client, settings), await sign_up(client, "Harbour Films")
    other = await sign_up(client, "Night Shift")
    version = await make_model_version(client, studio, settings, storage, make_clip(tmp_path / "a.mp4"))
    dataset_id, number = await _trained_dataset(client, studio)
    await _override(client, admin, studio, gpu_seconds_per_month=100)
    created = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(dataset_id, number, model_id=version["model_id"]),
        headers=studio.headers,
    )
    assert created.status_code == 201, created.text
    engine = create_engine(settings.database_url)
    queue = JobQueue(session_factory(engine), settings.jobs)
    lease = await queue.lease("quota-test", SLOT)
    assert lease is not None

    async def notices(caller: Caller) -> list[dict[str, Any]]:
        listed = await client.get("/v1/quotas/notices", headers=caller.headers)
        assert listed.status_code == 200, listed.text
        return list(listed.json()["items"])

    try:
        assert (await queue.heartbeat(lease, step=1, gpu_seconds=60.0)).held
        assert await notices(studio) == []  # 60 %
        assert (await queue.heartbeat(lease, step=2, gpu_seconds=25.0)).held
        (warning,) = await notices(studio)  # 85 %: the running job's heartbeat noticed it
        assert (warning["type"], warning["quota"], warning["level"]) == (
            "warning",
            "gpu_seconds_per_month",
            80,
        )
        assert warning["data"]["limit"] == 100 and warning["data"]["used"] == 85.0
        assert warning["period"] == f"{datetime.now(UTC):%Y-%m}"
        # Running work finishes past the limit: exhausted, once, whatever follows.
        assert await queue.finish(lease, WorkStatus.SUCCEEDED, gpu_seconds=20.0)
        refused = await client.post(
            "/v1/generations",
            json={"model_id": version["model_id"], "prompt": "rain"},
            headers=studio.headers,
        )
        assert refused.status_code == 402
    finally:
        await engine.dispose()
    exhausted, again = await notices(studio)
    assert (exhausted["type"], exhausted["level"], exhausted["data"]["used"]) == ("exhausted", 100, 105.0)
    assert again["id"] == warning["id"]
    assert exhausted["data"]["resets_at"] is not None
    assert await notices(other) == []  # another tenant's notices are its own
