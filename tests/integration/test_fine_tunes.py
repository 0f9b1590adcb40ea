"""The fine-tune API as tenants use it, with no worker running: create, read, cancel, resume, events."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import Parallel
from tests.helpers import Caller, fine_tune_body, parse_sse, sign_up, trainable_dataset
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def tenant(client: Client, tmp_path: Path) -> tuple[Caller, str, int]:
    caller = await sign_up(client, "Film Co")
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"), name="Rain")
    return caller, dataset_id, number


async def _create(client: Client, caller: Caller, body: dict, key: str | None = None) -> dict:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    response = await client.post("/v1/fine-tunes", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_queues_a_planned_job_and_freezes_the_version(
    client: Client, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    job = await _create(client, caller, fine_tune_body(dataset_id, number))

    assert job["status"] == "queued"
    assert job["total_steps"] == 4 and job["step"] == 0
    assert job["config"]["lora"] == {"rank": 4, "alpha": 8.0, "targets": None, "dropout": 0.0}
    assert job["config"]["trigger_word"] == "sks"
    # The preset fills what was not given; warm-up shrinks to fit a short run.
    assert job["config"]["lr_scheduler"] == "constant_with_warmup"
    assert job["config"]["lr_warmup_steps"] == 0
    assert job["estimated_bytes"] > 0.75 * (1 << 30)  # at least the CUDA context
    assert job["model_version"] is None
    model = (await client.get(f"/v1/models/{job['model_id']}", headers=caller.headers)).json()
    assert (model["name"], model["base_id"], model["version_count"]) == ("Rain v1", "tiny", 0)

    events = (await client.get(f"/v1/fine-tunes/{job['id']}/events", headers=caller.headers)).json()
    assert [(e["seq"], e["type"]) for e in events["items"]] == [(1, "queued")]
    version_path = f"/v1/datasets/{dataset_id}/versions/{number}"
    version = (await client.get(version_path, headers=caller.headers)).json()
    assert version["locked"] is True
    frozen = await client.put(version_path, json={"items": version["items"]}, headers=caller.headers)
    assert frozen.status_code == 409


async def test_training_a_version_again_adds_to_its_model(
    client: Client, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    first = await _create(client, caller, fine_tune_body(dataset_id, number))
    second = await _create(client, caller, fine_tune_body(dataset_id, number))
    named = await _create(client, caller, fine_tune_body(dataset_id, number, model_name="Look B"))
    into = await _create(client, caller, fine_tune_body(dataset_id, number, model_id=named["model_id"]))

    assert first["model_id"] == second["model_id"] != named["model_id"] == into["model_id"]
    taken = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number, model_name="Look B"), headers=caller.headers
    )
    assert taken.status_code == 409


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"base": "sdxl"}, 422, "offers: tiny"),
        ({"hyperparameters": {"frames": 6}}, 422, "1 + a multiple of 4"),
        ({"hyperparameters": {"height": 40}}, 422, "multiples of 16"),
        ({"hyperparameters": {"steps": 10, "lr_warmup_steps": 10}}, 422, "fewer than steps"),
        ({"hyperparameters": {"validation_every": 2}}, 422, "validation prompt"),
        ({"hyperparameters": {"rank": 0}}, 422, "rank must be at least 1"),
        ({"hyperparameters": {"rank": "four"}}, 400, "rank"),
        ({"hyperparameters": {"colour": "teal"}}, 400, "colour"),
        ({"preset": "huge"}, 400, "preset"),
        ({"dataset_version": 9}, 404, "dataset version"),
        ({"dataset_id": str(uuid.uuid4())}, 404, "dataset"),
        ({"model_id": str(uuid.uuid4())}, 404, "model"),
    ],
)
async def test_bad_requests_say_what_is_wrong_and_make_nothing(
    client: Client, tenant: tuple[Caller, str, int], change: dict, status: int, words: str
) -> None:
    caller, dataset_id, number = tenant
    response = await client.post(
        "/v1/fine-tunes", json={**fine_tune_body(dataset_id, number), **change}, headers=caller.headers
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.text.lower() or words in response.text
    listed = (await client.get("/v1/fine-tunes", headers=caller.headers)).json()
    assert listed["total"] == 0
    version = (
        await client.get(f"/v1/datasets/{dataset_id}/versions/{number}", headers=caller.headers)
    ).json()
    assert version["locked"] is False


async def test_another_tenants_dataset_model_and_jobs_are_not_found(
    client: Client, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    job = await _create(client, caller, fine_tune_body(dataset_id, number))
    other = await sign_up(client, "Other")

    stolen = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=other.headers
    )
    assert stolen.status_code == 404
    other_ds, other_number = dataset_id, number  # reuse the ids: they are tenant A's
    borrowed_model = await client.post(
        "/v1/fine-tunes",
        json=fine_tune_body(other_ds, other_number, model_id=job["model_id"]),
        headers=other.headers,
    )
    assert borrowed_model.status_code == 404
    for path in ("", "/events", "/events/stream"):
        assert (
            await client.get(f"/v1/fine-tunes/{job['id']}{path}", headers=other.headers)
        ).status_code == 404
    for action in ("cancel", "resume"):
        assert (
            await client.post(f"/v1/fine-tunes/{job['id']}/{action}", headers=other.headers)
        ).status_code == 404
    assert (await client.get("/v1/fine-tunes", headers=other.headers)).json()["total"] == 0


async def test_cancel_and_resume(client: Client, tenant: tuple[Caller, str, int]) -> None:
    caller, dataset_id, number = tenant
    job = await _create(client, caller, fine_tune_body(dataset_id, number))
    base = f"/v1/fine-tunes/{job['id']}"

    assert (await client.post(f"{base}/resume", headers=caller.headers)).status_code == 409
    cancelled = await client.post(f"{base}/cancel", headers=caller.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    again = await client.post(f"{base}/cancel", headers=caller.headers)
    assert again.status_code == 409 and "already cancelled" in again.text

    resumed = await client.post(f"{base}/resume", headers=caller.headers)
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "queued" and resumed.json()["finished_at"] is None
    events = (await client.get(f"{base}/events", headers=caller.headers)).json()["items"]
    assert [e["type"] for e in events] == ["queued", "cancelled", "queued"]
    assert events[2]["data"] == {"resumed_from_step": 0}


async def test_list_filters_by_status_and_pages(client: Client, tenant: tuple[Caller, str, int]) -> None:
    caller, dataset_id, number = tenant
    jobs = [await _create(client, caller, fine_tune_body(dataset_id, number)) for _ in range(3)]
    await client.post(f"/v1/fine-tunes/{jobs[0]['id']}/cancel", headers=caller.headers)

    queued = (await client.get("/v1/fine-tunes?status=queued", headers=caller.headers)).json()
    cancelled = (await client.get("/v1/fine-tunes?status=cancelled", headers=caller.headers)).json()
    page = (await client.get("/v1/fine-tunes?limit=2&offset=2", headers=caller.headers)).json()

    assert {j["id"] for j in queued["items"]} == {jobs[1]["id"], jobs[2]["id"]}
    assert [j["id"] for j in cancelled["items"]] == [jobs[0]["id"]]
    assert page["total"] == 3 and len(page["items"]) == 1
    bad = await client.get("/v1/fine-tunes?status=sleeping", headers=caller.headers)
    assert bad.status_code == 400


async def test_events_page_after_a_sequence_number(client: Client, tenant: tuple[Caller, str, int]) -> None:
    caller, dataset_id, number = tenant
    job = await _create(client, caller, fine_tune_body(dataset_id, number))
    base = f"/v1/fine-tunes/{job['id']}"
    await client.post(f"{base}/cancel", headers=caller.headers)
    await client.post(f"{base}/resume", headers=caller.headers)

    after = (await client.get(f"{base}/events?after=1", headers=caller.headers)).json()
    assert [e["seq"] for e in after["items"]] == [2, 3]


async def test_stream_sends_every_event_then_ends_and_resumes_from_last_event_id(
    client: Client, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    job = await _create(client, caller, fine_tune_body(dataset_id, number))
    base = f"/v1/fine-tunes/{job['id']}"
    await client.post(f"{base}/cancel", headers=caller.headers)

    whole = await client.get(f"{base}/events/stream", headers=caller.headers)
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/event-stream")
    assert [(e["id"], e["event"]) for e in parse_sse(whole.text)] == [(1, "queued"), (2, "cancelled")]

    rest = await client.get(f"{base}/events/stream", headers={**caller.headers, "Last-Event-ID": "1"})
    assert [e["id"] for e in parse_sse(rest.text)] == [2]
    bad = await client.get(f"{base}/events/stream", headers={**caller.headers, "Last-Event-ID": "x"})
    assert bad.status_code == 422


async def test_fifty_concurrent_creates_with_one_key_make_one_job(
    client: Client, parallel: Parallel, tenant: tuple[Caller, str, int]
) -> None:
    caller, dataset_id, number = tenant
    headers = {**caller.headers, "Idempotency-Key": "train-rain-once"}

    create = client.build_request(
        "POST", "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=headers
    )
    statuses = [answer.status_code for answer in await parallel([create] * 50)]

    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    listed = (await client.get("/v1/fine-tunes", headers=caller.headers)).json()
    assert listed["total"] == 1
    replay = await client.post("/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == listed["items"][0]["id"]


async def test_bases_lists_the_builtin(client: Client, tenant: tuple[Caller, str, int]) -> None:
    caller, _, _ = tenant
    bases = (await client.get("/v1/bases", headers=caller.headers)).json()

    assert [(b["id"], b["family"]) for b in bases] == [("tiny", "wan2.1")]
    assert bases[0]["parameters"] > 0
