"""The memorisation check end to end: footage uploaded over the API is indexed, a real
generation worker renders, and a generation forced to reproduce a training frame is caught.

The forcing: the training clip *is* what the worker will render for the prompt and seed
(rendered first in this process with the same engine, adapter and settings, then encoded as
an upload), so the generation's frames are the footage's frames through another encoding.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, select

from core.bases.quantization import Quantization
from core.fingerprints import MATCH_DISTANCE
from core.settings import GenerationSettings, Settings, WorkerSettings
from core.storage import ObjectStorage, TenantKeys
from service.db.engine import create_engine, session_factory
from service.db.tenancy import mark_unscoped
from service.fingerprints.models import FrameHash
from service.generations.memorisation import WITHHELD
from tests.adapters import random_adapter
from tests.helpers import PASSWORD, Caller, make_model_version, sign_up
from tests.integration.test_generation_worker import PROMPT, _generate, _until_final
from tests.workers import Workers
from trainer.models import load_specification
from trainer.serving import AdapterKey, GenerationEngine, GenerationRequest
from trainer.video import encode_mp4

Client = AsyncTestClient[Litestar]
ADAPTER = random_adapter(1)


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


def _rendered_clip(path: Path, seeds: list[int]) -> Path:
    """What the tiny base with ``ADAPTER`` renders for ``PROMPT`` at the base's defaults (as the
    API resolves a request naming only prompt and seed), one render per seed, as one MP4."""
    spec = load_specification("tiny", device=torch.device("cpu"), dtype=torch.float32)
    engine = GenerationEngine(
        spec,
        quantization=Quantization.FP32,
        fetch=lambda _: ADAPTER,
        device_cache_bytes=64 << 20,
        host_cache_bytes=0,
        max_batch=1,
    )
    try:
        renders = [
            engine.generate(
                [
                    GenerationRequest(
                        adapter=AdapterKey("any", "any"),
                        prompt=PROMPT,
                        width=64,
                        height=64,
                        frames=9,
                        steps=8,
                        guidance=5.0,
                        seed=seed,
                    )
                ]
            )[0]
            for seed in seeds
        ]
    finally:
        engine.close()
    path.write_bytes(encode_mp4(torch.cat(renders)))
    return path


async def _model(
    client: Client, caller: Caller, settings: Settings, storage: ObjectStorage, clip: Path
) -> str:
    version = await make_model_version(client, caller, settings, storage, clip, adapter=ADAPTER)
    return str(version["model_id"])


async def _hashes(settings: Settings, *, forget: bool = False) -> int:
    """How many frame hashes are indexed; ``forget`` drops them first, as for footage
    uploaded before the index existed."""
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session:
            mark_unscoped(session)
            if forget:
                await session.execute(delete(FrameHash))
                await session.commit()
            return int(await session.scalar(select(func.count()).select_from(FrameHash)) or 0)
    finally:
        await engine.dispose()


async def test_a_generation_that_reproduces_a_training_frame_is_caught_and_block_withholds_it(
    client: Client, settings: Settings, storage: ObjectStorage, workers: Workers, tmp_path: Path
) -> None:
    caller = await sign_up(client, "Harbour Films")
    # Trained on what seed 5 renders; the other model on what seeds 6 and 7 render.
    copied = await _model(client, caller, settings, storage, _rendered_clip(tmp_path / "copy.mp4", [5]))
    other = await _model(client, caller, settings, storage, _rendered_clip(tmp_path / "other.mp4", [6, 7]))
    # Indexed when each upload completed.
    assert await _hashes(settings) > 0
    # Dropped, as for footage uploaded before hashing: the worker hashes it from storage.
    assert await _hashes(settings, forget=True) == 0
    assets = (await client.get("/v1/assets", headers=caller.headers)).json()["items"]
    copy_asset = next(a["id"] for a in assets if a["filename"] == "copy.mp4")

    first = [await _generate(client, caller, model_id) for model_id in (copied, other)]
    workers.start()
    recorded, clear = [await _until_final(client, caller, generation) for generation in first]

    assert recorded["status"] == "succeeded" and recorded["outputs"]
    verdict = recorded["memorisation"]
    assert verdict["verdict"] == "near_copy" and verdict["policy"] == "record"
    assert verdict["closest_distance"] <= MATCH_DISTANCE == verdict["threshold"]
    assert verdict["asset_id"] == copy_asset and verdict["frames_checked"] > 0
    assert 0 <= verdict["frame"] < 9 and verdict["asset_seconds"] >= 0
    assert clear["status"] == "succeeded"
    assert clear["memorisation"]["verdict"] == "clear"
    assert clear["memorisation"]["closest_distance"] > MATCH_DISTANCE
    assert await _hashes(settings) > 0

    policy = await client.put(
        f"/v1/models/{copied}/guardrails", json={"memorisation_policy": "block"}, headers=caller.headers
    )
    assert policy.status_code == 200 and policy.json()["memorisation_policy"] == "block"
    blocked = await _until_final(client, caller, await _generate(client, caller, copied))
    assert blocked["status"] == "failed" and blocked["failure_reason"] == WITHHELD
    assert blocked["memorisation"]["verdict"] == "near_copy" and blocked["memorisation"]["policy"] == "block"
    assert blocked["outputs"] is None and blocked["output_bytes"] is None
    outputs = TenantKeys(uuid.UUID(caller.tenant_id)).outputs(uuid.UUID(blocked["id"]))
    assert storage.list_objects(outputs) == []
    ledger = (await client.get("/v1/usage/ledger?limit=200", headers=caller.headers)).json()["items"]
    charged = {entry["work_id"] for entry in ledger}
    assert recorded["id"] in charged and blocked["id"] not in charged
    # Another render of the blocked model that copies nothing still goes out.
    fresh = await _until_final(client, caller, await _generate(client, caller, copied, seed=9))
    assert fresh["status"] == "succeeded" and fresh["memorisation"]["verdict"] == "clear"

    # The generation page says it in words.
    signed_in = await client.post(
        "/signin", data={"email": caller.email, "password": PASSWORD}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    pages = {
        g["id"]: (await client.get(f"/app/generations/{g['id']}")).text for g in (recorded, clear, blocked)
    }
    client.cookies.clear()
    assert "Near copy." in pages[recorded["id"]] and "“copy.mp4”" in pages[recorded["id"]]
    assert "the video was kept" in pages[recorded["id"]]
    assert "Clear." in pages[clear["id"]] and "Near copy" not in pages[clear["id"]]
    assert "this video was not kept" in pages[blocked["id"]]


async def test_the_document_describes_the_verdict_and_the_policy(client: Client) -> None:
    schemas = (await client.get("/schema/openapi.json")).json()["components"]["schemas"]
    assert schemas["Guardrails"]["properties"]["memorisation_policy"]["enum"] == ["record", "block"]
    verdict = schemas["Memorisation"]["properties"]
    assert verdict["verdict"]["enum"] == ["clear", "near_copy"]
    assert "memorisation" in schemas["GenerationOut"]["required"]
