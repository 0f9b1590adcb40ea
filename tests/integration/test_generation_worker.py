"""Generation end to end: the API queues, a real ``rushes-server worker --roles generate`` renders.

Two tenants' models carry random adapters that change the tiny base's video visibly, so a
batch that crossed adapters, or a cache keyed without the tenant, would show in the pixels.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import psutil
import pytest
import torch
from litestar import Litestar
from litestar.testing import AsyncTestClient
from PIL import Image

from core.bases.quantization import Quantization
from core.settings import GenerationSettings, Settings, WorkerSettings
from core.storage import ObjectStorage, TenantKeys
from core.storage.keys import OUTPUT_VIDEO
from tests.adapters import random_adapter
from tests.credentials import read_credentials
from tests.helpers import Caller, make_model_version, sign_up
from tests.media_samples import make_clip
from tests.workers import Workers
from trainer.models import load_specification
from trainer.serving import AdapterKey, GenerationEngine, GenerationRequest
from trainer.video import encode_mp4
from worker.provenance import CA_FILE, GENERATION_ASSERTION

Client = AsyncTestClient[Litestar]
PROMPT = "a harbour at first light"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "worker": WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3),
            "generations": GenerationSettings(device_cache_bytes=64 << 20, host_cache_bytes=64 << 20),
        }
    )


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(settings, tmp_path, roles="generate")
    yield pool
    pool.stop_all()


async def _model(
    client: Client, caller: Caller, settings: Settings, storage: ObjectStorage, tmp: Path, adapter: bytes
) -> str:
    clip = make_clip(tmp / f"{uuid.uuid4().hex}.mp4")
    version = await make_model_version(client, caller, settings, storage, clip, adapter=adapter)
    return str(version["model_id"])


async def _generate(client: Client, caller: Caller, model_id: str, **body: Any) -> str:
    response = await client.post(
        "/v1/generations",
        json={"model_id": model_id, "prompt": PROMPT, "seed": 5, **body},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _until_final(client: Client, caller: Caller, generation_id: str, within: float = 120.0) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        shown = (await client.get(f"/v1/generations/{generation_id}", headers=caller.headers)).json()
        if shown["status"] in ("succeeded", "failed", "cancelled"):
            return dict(shown)
        await asyncio.sleep(0.2)
    raise AssertionError(f"generation {generation_id} still {shown['status']} after {within} s")


async def _events(client: Client, caller: Caller, generation_id: str) -> list[dict]:
    response = await client.get(f"/v1/generations/{generation_id}/events?limit=200", headers=caller.headers)
    return list(response.json()["items"])


async def _download(client: Client, caller: Caller, generation: dict, name: str) -> bytes:
    response = await client.get(generation["outputs"][name], headers=caller.headers)
    assert response.status_code == 200, response.text
    return bytes(response.content)


def _frames(mp4: bytes) -> np.ndarray:
    with av.open(io.BytesIO(mp4)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]) / 255.0


def _solo(storage: ObjectStorage, generations: list[dict], tenants: list[str]) -> list[np.ndarray]:
    """Each request rendered alone, in this process, straight from its tenant's adapter file,
    then through the same H.264 encoding, so that codec loss cancels out of comparisons."""
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)

    def fetch(key: AdapterKey) -> bytes:
        return storage.get_bytes(TenantKeys(uuid.UUID(key.tenant_id)).adapter_file(uuid.UUID(key.version_id)))

    engine = GenerationEngine(
        spec,
        quantization=Quantization.FP32,
        fetch=fetch,
        device_cache_bytes=64 << 20,
        host_cache_bytes=0,
        max_batch=1,
    )
    try:
        return [_frames(encode_mp4(frames)) for frames in _renders(engine, generations, tenants)]
    finally:
        engine.close()


def _renders(engine: GenerationEngine, generations: list[dict], tenants: list[str]) -> list[torch.Tensor]:
    return [
        engine.generate(
            [
                GenerationRequest(
                    adapter=AdapterKey(tenant, g["model_version_id"]),
                    prompt=g["prompt"],
                    width=g["width"],
                    height=g["height"],
                    frames=g["frames"],
                    steps=g["steps"],
                    guidance=g["guidance"],
                    seed=g["seed"],
                )
            ]
        )[0]
        for g, tenant in zip(generations, tenants, strict=True)
    ]


async def test_two_tenants_render_in_one_batch_each_with_its_own_adapter(
    client: Client, settings: Settings, storage: ObjectStorage, workers: Workers, tmp_path: Path
) -> None:
    a = await sign_up(client, "Harbour Films")
    b = await sign_up(client, "Night Shift")
    model_a = await _model(client, a, settings, storage, tmp_path, random_adapter(1))
    model_b = await _model(client, b, settings, storage, tmp_path, random_adapter(2))
    broken = await _model(client, b, settings, storage, tmp_path, b"not an adapter")
    # Queued before the worker starts, so its first claim takes all three as one batch.
    ids = [
        await _generate(client, a, model_a),
        await _generate(client, b, model_b),
        await _generate(client, b, broken),
    ]
    workers.start()
    done = [await _until_final(client, caller, i) for caller, i in zip([a, b, b], ids, strict=True)]

    assert [g["status"] for g in done] == ["succeeded", "succeeded", "failed"]
    assert "cannot be served" in done[2]["failure_reason"] and "safetensors" in done[2]["failure_reason"]
    first_started = [
        next(e for e in await _events(client, c, i) if e["type"] == "started")
        for c, i in zip([a, b], ids[:2], strict=True)
    ]
    assert [e["data"]["batch_size"] for e in first_started] == [3, 3]
    for caller, generation in zip([a, b], done[:2], strict=True):
        types = [e["type"] for e in await _events(client, caller, generation["id"])]
        assert types[:2] == ["queued", "started"] and types[-1] == "succeeded"
        assert generation["step"] == generation["steps"] and generation["gpu_seconds"] > 0

    mp4s = [await _download(client, c, g, OUTPUT_VIDEO) for c, g in zip([a, b], done[:2], strict=True)]
    videos = [_frames(mp4) for mp4 in mp4s]
    # Each video's content credentials name its own generation and model, signed under the
    # deployment's CA (here the local one the worker made in the data folder).
    ca = (settings.data_dir / "provenance" / CA_FILE).read_bytes()
    for mp4, generation, model_id in zip(mp4s, done[:2], [model_a, model_b], strict=True):
        credentials = read_credentials(mp4, trust_anchor=ca)
        assert credentials.state == "Trusted"
        lineage = credentials.assertion(GENERATION_ASSERTION)
        assert (lineage["generation_id"], lineage["model_id"]) == (generation["id"], model_id)
        assert (lineage["model_version_id"], lineage["model_version"]) == (generation["model_version_id"], 1)
    assert videos[0].shape == (9, 64, 64, 3)
    solos = _solo(storage, done[:2], [a.tenant_id, b.tenant_id])
    # Each tenant's video is its own adapter's, and far from the other's.
    for index, video in enumerate(videos):
        errors = [float(np.abs(video - solo).mean()) for solo in solos]
        # Its own adapter's render up to the codec's noise (about 0.003), the other's far away.
        assert errors[index] < 0.01 and errors[1 - index] > 0.05, errors
    assert float(np.abs(videos[0] - videos[1]).mean()) > 0.01

    poster = Image.open(io.BytesIO(await _download(client, a, done[0], "poster.jpg")))
    preview = Image.open(io.BytesIO(await _download(client, a, done[0], "preview.webp")))
    assert poster.format == "JPEG" and poster.size == (64, 64)
    assert preview.format == "WEBP"
    # Nine frames' time; WebP merges identical neighbours (the tiny base repeats each latent
    # frame four times) into longer ones.
    durations = []
    for index in range(preview.n_frames):
        preview.seek(index)
        preview.load()  # a WebP frame's duration is read with the frame
        durations.append(preview.info["duration"])
    assert sum(durations) == 9 * round(1000 / 16)


async def test_cancel_stops_a_running_generation_between_steps(
    client: Client, settings: Settings, storage: ObjectStorage, workers: Workers, tmp_path: Path
) -> None:
    caller = await sign_up(client, "Harbour Films")
    model_id = await _model(client, caller, settings, storage, tmp_path, random_adapter(1))
    long_one = await _generate(client, caller, model_id, width=256, height=256, frames=65, steps=100)
    workers.start()
    deadline = time.monotonic() + 60
    while not any(e["type"] == "progress" for e in await _events(client, caller, long_one)):
        assert time.monotonic() < deadline, "the generation never made progress"
        await asyncio.sleep(0.1)
    asked = await client.post(f"/v1/generations/{long_one}/cancel", headers=caller.headers)
    assert asked.status_code == 200
    cancelled_at = time.monotonic()
    final = await _until_final(client, caller, long_one)
    assert final["status"] == "cancelled" and final["step"] < 100
    assert time.monotonic() - cancelled_at < 10
    assert final["outputs"] is None
    assert storage.list_objects(TenantKeys(uuid.UUID(caller.tenant_id)).outputs(uuid.UUID(long_one))) == []
    # The worker goes on to the next request.
    after = await _until_final(client, caller, await _generate(client, caller, model_id))
    assert after["status"] == "succeeded"


async def test_a_killed_generation_process_is_restarted_and_its_batch_rendered_again(
    client: Client, settings: Settings, storage: ObjectStorage, workers: Workers, tmp_path: Path
) -> None:
    caller = await sign_up(client, "Harbour Films")
    model_id = await _model(client, caller, settings, storage, tmp_path, random_adapter(1))
    # Long enough (about 2300 tokens a step, 100 steps) that the first progress beat, at most
    # half a second in, comes long before the end on any machine.
    generation = await _generate(client, caller, model_id, width=256, height=256, frames=33, steps=100)
    supervisor = psutil.Process(workers.start().pid)
    deadline = time.monotonic() + 60
    while not any(e["type"] == "progress" for e in await _events(client, caller, generation)):
        assert time.monotonic() < deadline, "the generation never made progress"
        await asyncio.sleep(0.1)
    (child,) = [p for p in supervisor.children() if "worker.generate" in " ".join(p.cmdline())]
    # Frozen first, so the render cannot finish between the check below and the kill.
    child.suspend()
    mid_render = await client.get(f"/v1/generations/{generation}", headers=caller.headers)
    assert mid_render.json()["status"] == "running"
    child.kill()

    final = await _until_final(client, caller, generation, within=180)
    assert final["status"] == "succeeded" and final["attempts"] == 2
    events = await _events(client, caller, generation)
    requeued = next(e for e in events if e["type"] == "requeued")
    assert requeued["data"]["reason"] == "worker process died"
    assert [e["type"] for e in events].count("started") == 2
    new_children = [p for p in supervisor.children() if "worker.generate" in " ".join(p.cmdline())]
    assert [p.pid for p in new_children] != [child.pid] and len(new_children) == 1
