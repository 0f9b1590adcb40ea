"""The generation API as tenants use it, with no worker running: create, guardrails, read,
cancel, events and outputs. A worker's part is played through ``GenerationQueue``."""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.settings import Settings
from core.storage import ObjectStorage, TenantKeys
from core.storage.keys import OUTPUT_MEDIA_TYPES, OUTPUT_POSTER, OUTPUT_PREVIEW, OUTPUT_VIDEO
from service.db.engine import create_engine, session_factory
from service.generations.queue import ClaimedGeneration, GenerationQueue
from service.models.models import ModelVersion
from tests.conftest import Parallel
from tests.helpers import (
    Caller,
    add_member,
    fine_tune_body,
    make_model_version,
    parse_sse,
    sign_up,
    trainable_dataset,
)
from tests.media_samples import make_clip, pattern

Client = AsyncTestClient[Litestar]
PROMPT = "rain on a window at night"


@pytest.fixture
async def tenant(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> tuple[Caller, str]:
    """A tenant with one model of one version: (caller, model id)."""
    caller = await sign_up(client, "Film Co")
    version = await make_model_version(client, caller, settings, storage, make_clip(tmp_path / "a.mp4"))
    return caller, version["model_id"]


async def _create(client: Client, caller: Caller, body: dict[str, Any], key: str | None = None) -> dict:
    headers = {**caller.headers, **({"Idempotency-Key": key} if key else {})}
    response = await client.post("/v1/generations", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _listed(client: Client, caller: Caller, query: str = "") -> dict:
    response = await client.get(f"/v1/generations{query}", headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _outputs() -> dict[str, bytes]:
    """Real files of each kind the worker writes."""
    video = make_clip(Path(f"/tmp/{uuid.uuid4().hex}.mp4"))
    data = {OUTPUT_VIDEO: video.read_bytes()}
    video.unlink()
    poster, preview = io.BytesIO(), io.BytesIO()
    pattern(0, 64, 64).save(poster, format="JPEG")
    frames = [pattern(i, 32, 32) for i in range(4)]
    frames[0].save(preview, format="WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return {**data, OUTPUT_POSTER: poster.getvalue(), OUTPUT_PREVIEW: preview.getvalue()}


async def _claim(settings: Settings) -> tuple[GenerationQueue, ClaimedGeneration, Any]:
    engine = create_engine(settings.database_url)
    queue = GenerationQueue(session_factory(engine), settings.generations)
    (claimed,) = await queue.claim_batch("test-worker", ["tiny"], 1)
    return queue, claimed, engine


async def _render(settings: Settings, storage: ObjectStorage, outputs: dict[str, bytes]) -> None:
    """Play a worker: claim the oldest generation, store its outputs, mark it succeeded."""
    queue, claimed, engine = await _claim(settings)
    keys = TenantKeys(claimed.tenant_id)
    for name, data in outputs.items():
        storage.put_bytes(keys.output(claimed.id, name), data, OUTPUT_MEDIA_TYPES[name])
    size = sum(len(data) for data in outputs.values())
    assert await queue.finish_succeeded("test-worker", claimed.id, output_bytes=size, gpu_seconds=1.5)
    await engine.dispose()


async def test_create_fills_the_bases_defaults_and_draws_a_seed(
    client: Client, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    first = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    second = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})

    assert first["status"] == "queued" and first["model_id"] == model_id and first["version"] == 1
    shape = {k: first[k] for k in ("width", "height", "frames", "steps", "guidance", "adapter_strength")}
    assert shape == {
        "width": 64,
        "height": 64,
        "frames": 9,
        "steps": 8,
        "guidance": 5.0,
        "adapter_strength": 1.0,
    }
    assert (first["base_id"], first["negative_prompt"], first["outputs"]) == ("tiny", "", None)
    assert 0 <= first["seed"] < 2**31 and first["seed"] != second["seed"]
    events = (await client.get(f"/v1/generations/{first['id']}/events", headers=caller.headers)).json()
    assert [(e["seq"], e["type"], e["data"]) for e in events["items"]] == [
        (1, "queued", {"model_version": 1})
    ]


async def test_explicit_settings_and_an_older_version(
    client: Client, tenant: tuple[Caller, str], settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller, model_id = tenant
    clip = make_clip(tmp_path / "b.mp4", pattern_seed=1)
    await make_model_version(client, caller, settings, storage, clip, model_id=model_id)
    body = {
        "model_id": model_id,
        "version": 1,
        "prompt": PROMPT,
        "negative_prompt": "blur",
        "width": 96,
        "height": 48,
        "frames": 13,
        "steps": 3,
        "guidance": 1.0,
        "seed": 1234,
        "adapter_strength": 0.6,
    }
    explicit = await _create(client, caller, body)
    latest = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})

    assert {k: explicit[k] for k in body if k != "model_id"} == {
        k: v for k, v in body.items() if k != "model_id"
    }
    assert latest["version"] == 2 and latest["model_version_id"] != explicit["model_version_id"]


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"width": 72}, 422, "multiples of 16"),
        ({"frames": 10}, 422, "1 + a multiple of 4"),
        (
            {"width": 1296},
            422,
            "This service renders at most 1280 pixels of width; the request asks for 1296.",
        ),
        ({"height": 2048}, 422, "at most 1280 pixels of height"),
        # Within the platform's limits, past what the tiny base's transformer can place.
        ({"width": 1024}, 422, "height and width must be at most 512 on this base"),
        ({"frames": 133}, 422, "at most 129 frames"),
        ({"steps": 101}, 422, "at most 100 denoising steps"),
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": "x" * 2001}, 400, "prompt"),
        ({"adapter_strength": 2.5}, 400, "adapter_strength"),
        ({"guidance": 0.5}, 400, "guidance"),
        ({"seed": -1}, 400, "seed"),
        ({"colour": "teal"}, 400, "colour"),
        ({"version": 9}, 404, "no such model version"),
        ({"model_id": str(uuid.uuid4())}, 404, "no such model"),
    ],
)
async def test_bad_requests_say_what_is_wrong_and_make_nothing(
    client: Client, tenant: tuple[Caller, str], change: dict, status: int, words: str
) -> None:
    caller, model_id = tenant
    response = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": PROMPT, **change}, headers=caller.headers
    )

    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.text or words in response.text.lower()
    assert (await _listed(client, caller))["total"] == 0


async def test_a_model_without_versions_or_whose_base_is_gone_cannot_render(
    client: Client, tenant: tuple[Caller, str], settings: Settings, tmp_path: Path
) -> None:
    caller, model_id = tenant
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "c.mp4"))
    training = await client.post(
        "/v1/fine-tunes", json=fine_tune_body(dataset_id, number), headers=caller.headers
    )
    untrained = training.json()["model_id"]
    refused = await client.post(
        "/v1/generations", json={"model_id": untrained, "prompt": PROMPT}, headers=caller.headers
    )
    assert refused.status_code == 409 and "has no versions yet" in refused.json()["detail"]

    engine = create_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(update(ModelVersion).values(base_id="wan-retired"))
    await engine.dispose()
    gone = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": PROMPT}, headers=caller.headers
    )
    assert gone.status_code == 422 and "Unknown base 'wan-retired'" in gone.json()["detail"]
    assert (await _listed(client, caller))["total"] == 0


async def test_another_tenants_models_and_generations_are_not_found(
    client: Client, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    generation = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    other = await sign_up(client, "Other")

    stolen = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": PROMPT}, headers=other.headers
    )
    assert stolen.status_code == 404
    base = f"/v1/generations/{generation['id']}"
    for path in ("", "/events", "/events/stream", f"/outputs/{OUTPUT_VIDEO}"):
        assert (await client.get(f"{base}{path}", headers=other.headers)).status_code == 404
    assert (await client.post(f"{base}/cancel", headers=other.headers)).status_code == 404
    for method in ("GET", "PUT"):
        response = await client.request(
            method, f"/v1/models/{model_id}/guardrails", json={}, headers=other.headers
        )
        assert response.status_code == 404
    assert (await _listed(client, other))["total"] == 0
    assert (await _listed(client, caller))["total"] == 1


async def test_twenty_concurrent_creates_with_one_key_make_one_generation(
    client: Client, parallel: Parallel, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    body = {"model_id": model_id, "prompt": PROMPT}
    headers = {**caller.headers, "Idempotency-Key": "render-rain-once"}

    create = client.build_request("POST", "/v1/generations", json=body, headers=headers)
    statuses = [answer.status_code for answer in await parallel([create] * 20)]

    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    listed = await _listed(client, caller)
    assert listed["total"] == 1
    replay = await client.post("/v1/generations", json=body, headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == listed["items"][0]["id"]
    assert replay.headers["idempotent-replayed"] == "true"


GUARDRAILS = {
    "blocked_terms": ["Gore", "blood bath"],
    "max_width": 48,
    "max_height": 48,
    "max_frames": 5,
    "max_steps": 4,
    "memorisation_policy": "block",
}
ALLOWED = {"width": 48, "height": 48, "frames": 5, "steps": 4}


async def test_guardrails_are_set_by_owners_and_shown_with_the_model(
    client: Client, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    path = f"/v1/models/{model_id}/guardrails"
    unset = {
        "blocked_terms": [],
        "max_width": None,
        "max_height": None,
        "max_frames": None,
        "max_steps": None,
        "memorisation_policy": "record",
    }
    assert (await client.get(path, headers=caller.headers)).json() == unset

    member = await add_member(client, caller)
    refused = await client.put(path, json=GUARDRAILS, headers=member.headers)
    assert refused.status_code == 403
    saved = await client.put(
        path, json={**GUARDRAILS, "blocked_terms": ["Gore", " gore ", "blood bath"]}, headers=caller.headers
    )
    assert saved.status_code == 200 and saved.json() == GUARDRAILS  # one term per spelling, any case
    assert (await client.get(path, headers=member.headers)).json() == GUARDRAILS
    model = (await client.get(f"/v1/models/{model_id}", headers=caller.headers)).json()
    assert model["guardrails"] == GUARDRAILS

    for bad in (
        {"max_width": 0},
        {"blocked_terms": ["x" * 101]},
        {"blocked_terms": [""]},
        {"blocked_terms": ["t"] * 201},
        {"max_fps": 4},
        {"memorisation_policy": "delete"},
    ):
        assert (await client.put(path, json=bad, headers=caller.headers)).status_code == 400, bad
    assert (await client.get(path, headers=caller.headers)).json() == GUARDRAILS


@pytest.mark.parametrize(
    ("change", "rule", "reason"),
    [
        (
            {"prompt": "a GORE scene"},
            "blocked_terms",
            "This model's owner blocks the term 'Gore' in prompts.",
        ),
        ({"prompt": "a blood  bath, slowly"}, "blocked_terms", "blocks the term 'blood bath'"),
        # The text encoder's pipeline unescapes HTML twice: entities cannot smuggle a term in.
        ({"prompt": "a &#103;ore scene"}, "blocked_terms", "blocks the term 'Gore'"),
        ({"prompt": "a &amp;#103;ore scene"}, "blocked_terms", "blocks the term 'Gore'"),
        ({"prompt": "a \uff47\uff4f\uff52\uff45 scene"}, "blocked_terms", "blocks the term 'Gore'"),
        (
            {"width": 64},
            "max_width",
            "This model allows at most 48 pixels of width; the request asks for 64.",
        ),
        (
            {"height": 64},
            "max_height",
            "This model allows at most 48 pixels of height; the request asks for 64.",
        ),
        ({"frames": 9}, "max_frames", "This model allows at most 5 frames; the request asks for 9."),
        ({"steps": 8}, "max_steps", "This model allows at most 4 denoising steps; the request asks for 8."),
    ],
)
async def test_each_guardrail_refuses_with_its_reason(
    client: Client, tenant: tuple[Caller, str], change: dict, rule: str, reason: str
) -> None:
    caller, model_id = tenant
    await client.put(f"/v1/models/{model_id}/guardrails", json=GUARDRAILS, headers=caller.headers)
    body = {"model_id": model_id, "prompt": PROMPT, **ALLOWED, **change}
    refused = await client.post("/v1/generations", json=body, headers=caller.headers)

    assert refused.status_code == 422, refused.text
    assert reason in refused.json()["detail"]
    assert refused.json()["guardrail"] == rule
    assert (await _listed(client, caller))["total"] == 0


async def test_a_request_within_the_guardrails_is_queued(client: Client, tenant: tuple[Caller, str]) -> None:
    caller, model_id = tenant
    await client.put(f"/v1/models/{model_id}/guardrails", json=GUARDRAILS, headers=caller.headers)
    # Whole words only, and the negative prompt names what to avoid, so it is not checked.
    body = {"model_id": model_id, "prompt": "a gored ox; bloodbath", "negative_prompt": "gore", **ALLOWED}
    generation = await _create(client, caller, body)
    assert generation["status"] == "queued"
    # Omitted settings take the base's defaults, which are then held to the guardrails too.
    default = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": PROMPT}, headers=caller.headers
    )
    assert default.status_code == 422 and default.json()["guardrail"] == "max_width"


async def test_cancel_a_queued_and_a_running_generation(
    client: Client, tenant: tuple[Caller, str], settings: Settings
) -> None:
    caller, model_id = tenant
    running = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    queued = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    queue, claimed, engine = await _claim(settings)
    assert claimed.id == uuid.UUID(running["id"])

    cancelled = await client.post(f"/v1/generations/{queued['id']}/cancel", headers=caller.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["finished_at"]
    again = await client.post(f"/v1/generations/{queued['id']}/cancel", headers=caller.headers)
    assert again.status_code == 409 and "already cancelled" in again.text

    asked = await client.post(f"/v1/generations/{running['id']}/cancel", headers=caller.headers)
    assert (asked.json()["status"], asked.json()["cancel_requested"]) == ("running", True)
    # The worker learns of it at its next step, and ends it.
    assert await queue.heartbeat("test-worker", [claimed.id], 1) == {claimed.id}
    assert await queue.finish_cancelled("test-worker", claimed.id)
    await engine.dispose()
    events = (await client.get(f"/v1/generations/{running['id']}/events", headers=caller.headers)).json()
    assert [e["type"] for e in events["items"]] == [
        "queued",
        "started",
        "cancel_requested",
        "progress",
        "cancelled",
    ]
    final = await client.post(f"/v1/generations/{running['id']}/cancel", headers=caller.headers)
    assert final.status_code == 409


async def test_list_filters_by_status_and_model_and_pages(
    client: Client, tenant: tuple[Caller, str], settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller, model_id = tenant
    other = await make_model_version(
        client, caller, settings, storage, make_clip(tmp_path / "d.mp4", pattern_seed=2)
    )
    mine = [await _create(client, caller, {"model_id": model_id, "prompt": PROMPT}) for _ in range(3)]
    theirs = await _create(client, caller, {"model_id": other["model_id"], "prompt": PROMPT})
    await client.post(f"/v1/generations/{mine[0]['id']}/cancel", headers=caller.headers)

    queued = await _listed(client, caller, "?status=queued")
    cancelled = await _listed(client, caller, "?status=cancelled")
    of_model = await _listed(client, caller, f"?model_id={other['model_id']}")
    page = await _listed(client, caller, "?limit=3&offset=3")

    assert {g["id"] for g in queued["items"]} == {mine[1]["id"], mine[2]["id"], theirs["id"]}
    assert [g["id"] for g in cancelled["items"]] == [mine[0]["id"]]
    assert [g["id"] for g in of_model["items"]] == [theirs["id"]]
    assert page["total"] == 4 and len(page["items"]) == 1
    assert (await client.get("/v1/generations?status=sleeping", headers=caller.headers)).status_code == 400


async def test_stream_sends_every_event_then_ends_and_resumes_from_last_event_id(
    client: Client, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    generation = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    base = f"/v1/generations/{generation['id']}"
    await client.post(f"{base}/cancel", headers=caller.headers)

    whole = await client.get(f"{base}/events/stream", headers=caller.headers)
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/event-stream")
    assert [(e["id"], e["event"]) for e in parse_sse(whole.text)] == [(1, "queued"), (2, "cancelled")]

    rest = await client.get(f"{base}/events/stream", headers={**caller.headers, "Last-Event-ID": "1"})
    assert [e["id"] for e in parse_sse(rest.text)] == [2]
    after = (await client.get(f"{base}/events?after=1", headers=caller.headers)).json()
    assert [e["seq"] for e in after["items"]] == [2]
    bad = await client.get(f"{base}/events/stream", headers={**caller.headers, "Last-Event-ID": "x"})
    assert bad.status_code == 422


async def test_outputs_stream_from_local_storage_once_succeeded(
    client: Client, tenant: tuple[Caller, str], settings: Settings, storage: ObjectStorage
) -> None:
    caller, model_id = tenant
    generation = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    base = f"/v1/generations/{generation['id']}"
    assert (await client.get(f"{base}/outputs/{OUTPUT_VIDEO}", headers=caller.headers)).status_code == 404

    outputs = _outputs()
    await _render(settings, storage, outputs)

    done = (await client.get(base, headers=caller.headers)).json()
    assert (done["status"], done["step"], done["gpu_seconds"]) == ("succeeded", 8, 1.5)
    assert done["output_bytes"] == sum(len(data) for data in outputs.values())
    assert done["outputs"] == {name: f"{base}/outputs/{name}" for name in outputs}
    for name, data in outputs.items():
        response = await client.get(done["outputs"][name], headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.content == data
        assert response.headers["content-type"].startswith(OUTPUT_MEDIA_TYPES[name])
        assert f"generation-{generation['id']}-{name}" in response.headers["content-disposition"]
    assert (await client.get(f"{base}/outputs/other.gif", headers=caller.headers)).status_code == 404
    await _check_ranges(client, caller, done["outputs"][OUTPUT_VIDEO], outputs[OUTPUT_VIDEO])
    events = (await client.get(f"{base}/events", headers=caller.headers)).json()["items"]
    assert events[-1]["type"] == "succeeded"
    assert events[-1]["data"] == {"outputs": done["outputs"], "gpu_seconds": 1.5}


async def _check_ranges(client: Client, caller: Caller, url: str, data: bytes) -> None:
    """A ``<video>`` seeks with ranges: the bytes asked for (206), or 416 past the end."""
    whole = await client.get(url, headers=caller.headers)
    assert whole.headers["accept-ranges"] == "bytes"
    part = await client.get(url, headers={**caller.headers, "range": "bytes=2-5"})
    assert part.status_code == 206, part.text
    assert part.content == data[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(data)}"
    assert part.headers["content-length"] == "4"
    tail = await client.get(url, headers={**caller.headers, "range": "bytes=-3"})
    assert (tail.status_code, tail.content) == (206, data[-3:])
    beyond = await client.get(url, headers={**caller.headers, "range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-type"] == "application/problem+json"
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)
async def test_outputs_on_s3_redirect_to_a_signed_url(
    client: Client, tenant: tuple[Caller, str], settings: Settings, storage: ObjectStorage
) -> None:
    caller, model_id = tenant
    generation = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    outputs = _outputs()
    await _render(settings, storage, outputs)

    answer = await client.get(
        f"/v1/generations/{generation['id']}/outputs/{OUTPUT_POSTER}",
        headers=caller.headers,
        follow_redirects=False,
    )
    assert answer.status_code == 307
    signed = answer.headers["location"]
    assert "X-Amz-Expires=300" in signed
    # The URL itself is the credential: fetched with no API key at all.
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(signed)
    assert fetched.status_code == 200
    assert fetched.content == outputs[OUTPUT_POSTER]
    # Shown inline, as the API's own answer is.
    name = f"generation-{generation['id']}-{OUTPUT_POSTER}"
    assert fetched.headers["content-disposition"] == f"inline; filename*=UTF-8''{name}"
    # The store serves ranges itself.
    async with httpx.AsyncClient() as plain:
        part = await plain.get(signed, headers={"range": "bytes=1-3"})
    assert (part.status_code, part.content) == (206, outputs[OUTPUT_POSTER][1:4])


async def test_a_model_waiting_to_render_cannot_be_deleted(
    client: Client, tenant: tuple[Caller, str]
) -> None:
    caller, model_id = tenant
    generation = await _create(client, caller, {"model_id": model_id, "prompt": PROMPT})
    refused = await client.delete(f"/v1/models/{model_id}", headers=caller.headers)
    assert refused.status_code == 409 and refused.json()["generation_id"] == generation["id"]

    await client.post(f"/v1/generations/{generation['id']}/cancel", headers=caller.headers)
    assert (await client.delete(f"/v1/models/{model_id}", headers=caller.headers)).status_code == 204
    kept = (await client.get(f"/v1/generations/{generation['id']}", headers=caller.headers)).json()
    assert (kept["status"], kept["model_id"], kept["model_version_id"], kept["version"]) == (
        "cancelled",
        None,
        None,
        None,
    )
