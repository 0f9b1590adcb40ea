"""A model's page over HTTP: rename (any member, as ``PATCH /v1/models/{id}``), guardrails and
delete (owners, as the API's), refusals in words, and another tenant's model not found."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

from core.settings import Settings
from core.storage import ObjectStorage
from tests.helpers import (
    PASSWORD,
    Caller,
    add_member,
    fine_tune_body,
    make_model_version,
    sign_up,
    trainable_dataset,
)
from tests.media_samples import make_clip

Client = AsyncTestClient[Litestar]


async def signed_in(client: Client, caller: Caller, tenant_id: str | None = None) -> None:
    client.cookies.clear()
    done = await client.post("/signin", data={"email": caller.email, "password": PASSWORD})
    assert done.status_code == 200, done.text
    if tenant_id:
        assert (await client.post("/app/switch-tenant", data={"tenant_id": tenant_id})).status_code == 200


async def test_owners_rename_set_guardrails_and_delete(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Models")
    version = await make_model_version(client, owner, settings, storage, make_clip(tmp_path / "a.mp4"))
    second_clip = make_clip(tmp_path / "b.mp4", pattern_seed=2)
    other = await make_model_version(client, owner, settings, storage, second_clip)
    model = f"/app/models/{version['model_id']}"
    api = f"/v1/models/{version['model_id']}"
    taken = (await client.get(f"/v1/models/{other['model_id']}", headers=owner.headers)).json()["name"]
    await signed_in(client, owner)

    clash = await client.post(model, data={"name": taken, "description": ""})
    assert clash.status_code == 400 and f"A model named &#39;{taken}&#39; already exists." in clash.text
    blank = await client.post(model, data={"name": "", "description": ""})
    assert blank.status_code == 400 and "Name: should have at least 1 character." in blank.text
    renamed = await client.post(
        model, data={"name": "Harbour look", "description": "dusk"}, follow_redirects=False
    )
    assert renamed.status_code == 303
    shown = (await client.get(api, headers=owner.headers)).json()
    assert (shown["name"], shown["description"]) == ("Harbour look", "dusk")

    bad = await client.post(f"{model}/guardrails", data={"max_width": "wide", "max_frames": "0"})
    assert bad.status_code == 400
    assert "Widest video (pixels): enter a whole number" in bad.text
    saved = await client.post(
        f"{model}/guardrails",
        data={
            "blocked_terms": "logo\n  Brand X \n\nlogo",
            "max_width": "512",
            "max_steps": "",
            "memorisation_policy": "block",
        },
    )
    assert saved.status_code == 200 and "The guardrails were saved" in saved.text
    rails = (await client.get(f"{api}/guardrails", headers=owner.headers)).json()
    assert rails == {
        "blocked_terms": ["logo", "Brand X"],
        "max_width": 512,
        "max_height": None,
        "max_frames": None,
        "max_steps": None,
        "memorisation_policy": "block",
    }
    too_few = await client.post(f"{model}/guardrails", data={"max_frames": "0"})
    assert too_few.status_code == 400 and "Most frames: enter a whole number from 1" in too_few.text

    # A fine-tune still training the model holds it: refused in words, and the model stays.
    dataset_id, number = await trainable_dataset(client, owner, make_clip(tmp_path / "c.mp4", pattern_seed=3))
    body = fine_tune_body(dataset_id, number, model_id=version["model_id"])
    assert (await client.post("/v1/fine-tunes", json=body, headers=owner.headers)).status_code == 201
    confirm = await client.get(f"{model}/delete")
    assert "Delete the model “Harbour look”?" in confirm.text
    held = await client.post(f"{model}/delete")
    assert held.status_code == 409
    assert "A fine-tune is still training this model; cancel it first." in held.text

    deleted = await client.post(f"/app/models/{other['model_id']}/delete")
    assert deleted.status_code == 200 and "The model was deleted" in deleted.text
    assert (await client.get(f"/v1/models/{other['model_id']}", headers=owner.headers)).status_code == 404


async def test_members_rename_only_and_strangers_find_nothing(
    client: Client, settings: Settings, storage: ObjectStorage, tmp_path: Path
) -> None:
    owner = await sign_up(client, "Owner")
    version = await make_model_version(client, owner, settings, storage, make_clip(tmp_path / "a.mp4"))
    model = f"/app/models/{version['model_id']}"
    member = await add_member(client, owner)
    await signed_in(client, member, owner.tenant_id)
    page = (await client.get(model)).text
    assert "Save guardrails" not in page and "Delete this model" not in page
    assert "Owners of this tenant change the guardrails." in page
    renamed = await client.post(
        model, data={"name": "Member's name", "description": ""}, follow_redirects=False
    )
    assert renamed.status_code == 303

    stranger = await sign_up(client, "Stranger")
    await signed_in(client, stranger)
    for method, path in [
        ("GET", model),
        ("POST", model),
        ("POST", f"{model}/guardrails"),
        ("POST", f"{model}/delete"),
    ]:
        response = await client.request(method, path, data={"name": "mine", "description": ""})
        assert response.status_code == 404, (method, path)
        assert "Page not found" in response.text
    shown = (await client.get(f"/v1/models/{version['model_id']}", headers=owner.headers)).json()
    assert shown["name"] == "Member's name"
