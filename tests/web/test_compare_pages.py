"""The compare page over HTTP, with no worker: the form makes two generations of one prompt,
seed and settings, refuses a bad side by name and makes nothing then, and shows another
tenant's generations as not found. (The browser journey is test_live_chart_and_compare.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage
from tests.helpers import Caller, make_model_version, sign_up
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]
PROMPT = "sks, rain on a window at night"


@pytest.fixture
async def studio(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> tuple[Caller, str]:
    """A tenant whose model has two versions: (caller, model id)."""
    caller = await sign_up(client, "Film Co")
    first = await make_model_version(client, caller, settings, storage, make_clip(tmp_path / "a.mp4"))
    await make_model_version(
        client, caller, settings, storage, make_clip(tmp_path / "b.mp4"), model_id=first["model_id"]
    )
    return caller, str(first["model_id"])


async def _generations(client: Client, caller: Caller) -> list[dict[str, Any]]:
    listed = await client.get("/v1/generations", headers=caller.headers)
    assert listed.status_code == 200, listed.text
    return list(listed.json()["items"])


async def test_the_form_renders_both_sides_with_one_prompt_and_seed(
    client: Client, studio: tuple[Caller, str]
) -> None:
    caller, model_id = studio
    form = {
        "version_a": f"{model_id}:2",
        "strength_a": "1",
        "version_b": f"{model_id}:2",
        "strength_b": "0",
        "prompt": PROMPT,
        "frames": "5",
        "steps": "2",
        "seed": "",
    }
    made = await client.post("/app/compare", data=form, headers=caller.headers, follow_redirects=False)
    assert made.status_code == 303, made.text
    query = parse_qs(urlsplit(made.headers["location"]).query)
    ids = [query["a"][0], query["b"][0]]

    pair = {g["id"]: g for g in await _generations(client, caller)}
    assert sorted(pair) == sorted(ids)
    a, b = pair[ids[0]], pair[ids[1]]
    assert (a["adapter_strength"], b["adapter_strength"]) == (1.0, 0.0)
    shared = (
        "prompt",
        "negative_prompt",
        "seed",
        "width",
        "height",
        "frames",
        "steps",
        "guidance",
        "version",
    )
    assert {k: a[k] for k in shared} == {k: b[k] for k in shared}
    assert (a["prompt"], a["frames"], a["steps"], a["version"]) == (PROMPT, 5, 2, 2)

    shown = await client.get(made.headers["location"], headers=caller.headers)
    assert shown.status_code == 200
    for generation in ids:
        assert f'data-stream="/v1/generations/{generation}/events/stream"' in shown.text
    name = (await client.get(f"/v1/models/{model_id}", headers=caller.headers)).json()["name"]
    assert f'<h2 id="side-a-title">A: {name}, version 2, at strength 1</h2>' in shown.text
    assert (
        f'<h2 id="side-b-title">B: the base (tiny) alone: {name}, version 2, at strength 0</h2>' in shown.text
    )
    assert "Not like for like" not in shown.text

    # "Compare with another version" starts from a generation: its settings, another version.
    again = await client.get(f"/app/compare?from={ids[0]}", headers=caller.headers)
    assert again.status_code == 200
    assert f'<option value="{model_id}:1" selected>' in again.text  # version B: the other one
    assert f'value="{a["seed"]}"' in again.text


async def test_a_refused_side_is_named_and_nothing_is_made(
    client: Client, studio: tuple[Caller, str]
) -> None:
    caller, model_id = studio
    form = {"version_a": f"{model_id}:1", "version_b": f"{model_id}:2", "strength_b": "3", "prompt": ""}
    refused = await client.post("/app/compare", data=form, headers=caller.headers)
    assert refused.status_code == 400
    assert "text/html" in refused.headers["content-type"]
    assert refused.text.count("Prompt: should have at least 1 character.") == 1
    assert "Video B: Adapter strength: input should be less than or equal to 2." in refused.text
    assert await _generations(client, caller) == []


async def test_another_tenants_generations_are_not_found(
    client: Client,
    studio: tuple[Caller, str],
    settings: Settings,
    storage: ObjectStorage,
    tmp_path: Path,
) -> None:
    caller, model_id = studio
    ids = [await _generate(client, caller, model_id) for _ in range(2)]
    assert (
        await client.get(f"/app/compare?a={ids[0]}&b={ids[1]}", headers=caller.headers)
    ).status_code == 200

    other = await sign_up(client, "Other")
    version = await make_model_version(client, other, settings, storage, make_clip(tmp_path / "c.mp4"))
    theirs = await _generate(client, other, str(version["model_id"]))
    assert (await client.get(f"/app/compare?a={theirs}&b={theirs}", headers=other.headers)).status_code == 200
    for query in (
        f"a={ids[0]}&b={ids[1]}",
        f"a={theirs}&b={ids[1]}",
        f"a={ids[0]}&b={theirs}",
        f"from={ids[0]}",
    ):
        response = await client.get(f"/app/compare?{query}", headers=other.headers)
        assert response.status_code == 404, query
        assert "text/html" in response.headers["content-type"]
        assert "Page not found" in response.text


async def _generate(client: Client, caller: Caller, model_id: str) -> str:
    made = await client.post(
        "/v1/generations", json={"model_id": model_id, "prompt": PROMPT, "seed": 7}, headers=caller.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])
