"""Every version a fine-tune makes carries its look: a real ``rushes-server worker`` trains the
tiny base, measures the version against the base and the footage, and the API shows it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from core.looks import MOVED_THRESHOLD
from core.settings import JobSettings, Settings, WorkerSettings
from core.storage import ObjectStorage
from service.db.engine import create_engine
from service.models.models import ModelVersion
from tests.helpers import PASSWORD, Caller, fine_tune_body, make_model_version, sign_up, trainable_dataset
from tests.media_samples import make_clip
from tests.workers import Workers

Client = AsyncTestClient[Litestar]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "jobs": JobSettings(lease_seconds=10.0),
            "worker": WorkerSettings(embedded=False, poll_seconds=0.3, heartbeat_seconds=0.3),
        }
    )


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(settings, tmp_path, roles="train")
    yield pool
    pool.stop_all()


@pytest.mark.timeout(300)
async def test_a_fine_tune_stores_its_versions_look_and_the_api_shows_it(
    client: Client, workers: Workers, tmp_path: Path
) -> None:
    caller: Caller = await sign_up(client, "Look Co")
    dataset_id, number = await trainable_dataset(client, caller, make_clip(tmp_path / "a.mp4"))
    body = fine_tune_body(dataset_id, number)
    # Twenty steps at the tiny runs' high rate: enough to take on a clip's colours.
    body["hyperparameters"] = {**body["hyperparameters"], "steps": 20}
    created = await client.post("/v1/fine-tunes", json=body, headers=caller.headers)
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    workers.start()
    deadline = time.monotonic() + 240
    while (job := (await client.get(f"/v1/fine-tunes/{job_id}", headers=caller.headers)).json())[
        "status"
    ] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.3)

    assert job["status"] == "succeeded", job
    versions = f"/v1/models/{job['model_id']}/versions"
    version = (await client.get(f"{versions}/1", headers=caller.headers)).json()
    look = version["look"]
    assert look["measured"] is True and look["reason"] is None
    # The version came well closer to the footage's look than the base, and says so.
    assert look["threshold"] == MOVED_THRESHOLD
    assert look["reduction"] >= MOVED_THRESHOLD and look["moved"] is True
    distance = look["distance"]
    assert distance["version"]["total"] == pytest.approx(
        (1 - look["reduction"]) * distance["base"]["total"], rel=1e-9
    )
    assert distance["version"]["colour"] < distance["base"]["colour"]
    # Each property for the base, the version and the footage: the bare tiny base renders
    # flat grey, the clip is colourful, and the version took on some of its colour.
    colourfulness = look["metrics"]["colourfulness"]
    assert colourfulness["base"] < 5.0 < colourfulness["footage"]
    assert colourfulness["base"] < colourfulness["version"]
    assert set(look["metrics"]) == {
        "a",
        "b",
        "colourfulness",
        "lightness",
        "contrast",
        "grain",
        "sharpness",
        "flicker",
    }
    # Rendered at the run's size with the base's generation defaults, four times each side;
    # the 9-frame clip at 24 fps, thinned to 16, fills one window of 5.
    assert look["renders"] == {
        "count": 4,
        "prompts": 1,
        "seeds": [0, 1, 2, 3],
        "frames": 5,
        "height": 32,
        "width": 32,
        "steps": 8,
        "guidance": 5.0,
    }
    assert look["footage_clips"] == 1
    assert 0 < look["seconds"] < 60
    assert "stats" not in look  # stored for recomputation, not part of the API
    listed = (await client.get(versions, headers=caller.headers)).json()
    assert listed["items"][0]["look"] == look


async def test_a_version_without_a_measured_look_says_why_in_the_api_and_on_its_page(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    caller = await sign_up(client, "Page Co")
    clip = make_clip(tmp_path / "a.mp4")
    # v1 predates measuring; v2's measuring failed (as the worker stores a failure).
    first = await make_model_version(client, caller, settings, storage, clip)
    model_id = first["model_id"]
    second = await make_model_version(client, caller, settings, storage, clip, model_id=model_id)
    reason = "The look could not be measured: clip-a: footage not found"
    engine = create_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(
            update(ModelVersion)
            .where(ModelVersion.id == uuid.UUID(second["id"]))
            .values(look={"measured": False, "reason": reason})
        )
    await engine.dispose()

    failed = (await client.get(f"/v1/models/{model_id}/versions/2", headers=caller.headers)).json()
    login = await client.post("/v1/auth/login", json={"email": caller.email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    page = (await client.get(f"/app/models/{model_id}")).text
    client.cookies.clear()

    assert first["look"] is None
    assert failed["look"] == {
        "measured": False,
        "reason": reason,
        "moved": None,
        "threshold": None,
        "reduction": None,
        "metrics": None,
        "distance": None,
        "renders": None,
        "footage_clips": None,
        "seconds": None,
    }
    assert "v1: not measured" in page and "made before look metrics existed" in page
    assert "v2: could not be measured" in page and f"Not measured. {reason}" in page
