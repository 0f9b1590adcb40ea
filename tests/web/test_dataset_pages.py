"""Datasets and starting a fine-tune in a browser: make a dataset from picked clips with
captions and a trigger word, edit a version until training freezes it, start a fine-tune,
cancel and resume it; another tenant's addresses answer the 404 page. No worker runs here,
so the fine-tune stays queued (the live journey is ``test_training_pages.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up, upload_clip


def test_dataset_and_fine_tune_forms(visit: Callable[..., Visit], server: str, tmp_path: Path) -> None:
    person = visit()
    page = person.page
    sign_up(person, "Rain Studio", new_email("editor"))
    person.goto("/app/datasets")
    expect(page.get_by_text("No datasets yet.")).to_be_visible()
    rain = upload_clip(person, make_clip(tmp_path / "rain.mp4"))
    upload_clip(person, make_clip(tmp_path / "dusk.mp4", pattern_seed=4))

    page.get_by_role("link", name="New dataset").click()
    page.get_by_label("Name").fill("Rain study")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.get_by_role("alert")).to_contain_text("Clips: choose at least one clip")
    expect(page.get_by_label("Name")).to_have_value("Rain study")  # what was typed is kept
    page.get_by_label("Trigger word").fill("sks_rain")
    page.get_by_role("checkbox", name="rain.mp4").check()
    page.get_by_label("Caption for rain.mp4").fill("rain running down a window at night")
    person.shoot("dataset-new")
    page.get_by_role("button", name="Create dataset").click()
    page.wait_for_url(re.compile(r"/app/datasets/[0-9a-f-]+\?notice=dataset-created"))
    dataset_url = page.url.split("?")[0]
    expect(page.locator("#messages")).to_contain_text("The dataset was created")
    first = page.get_by_role("article", name=re.compile("Version 1"))
    expect(first.get_by_text("Editable", exact=True)).to_be_visible()
    expect(first).to_contain_text("rain running down a window at night")
    expect(first).to_contain_text("sks_rain")
    expect(first.get_by_role("listitem")).to_have_count(1)

    # Version 1 is editable until it is trained on: add the second clip.
    page.get_by_role("link", name="Edit version 1").click()
    expect(page.get_by_role("checkbox", name="rain.mp4")).to_be_checked()
    page.get_by_role("checkbox", name="dusk.mp4").check()
    page.get_by_label("Caption for dusk.mp4").fill("dusk over the harbour")
    page.get_by_role("button", name="Save version 1").click()
    expect(page.locator("#messages")).to_contain_text("The version was saved.")
    expect(first.get_by_role("listitem")).to_have_count(2)
    expect(first).to_contain_text("dusk over the harbour")

    # Start a fine-tune on it: a setting the API refuses comes back in words, the rest kept.
    page.get_by_role("link", name="Fine-tune on version 1").click()
    expect(page.get_by_label("Dataset version")).to_have_value(re.compile(r":1$"))
    expect(page.get_by_label("Quick")).to_be_checked()
    page.get_by_text("Change settings").click()
    page.get_by_label("Steps").fill("four")
    page.get_by_label("Width").fill("32")
    person.shoot("fine-tune-new")
    page.get_by_role("button", name="Start fine-tune").click()
    expect(page.get_by_role("alert")).to_contain_text("Steps: input should be a valid integer")
    expect(page.get_by_label("Width")).to_have_value("32")
    page.get_by_label("Steps").fill("4")
    page.get_by_label("Height").fill("32")
    page.get_by_label("Frames per clip").fill("6")
    page.get_by_role("button", name="Start fine-tune").click()
    expect(page.get_by_role("alert")).to_contain_text("frames")  # the training rules' own sentence
    page.get_by_label("Frames per clip").fill("5")
    page.get_by_role("button", name="Start fine-tune").click()
    page.wait_for_url(re.compile(r"/app/fine-tunes/[0-9a-f-]+$"))
    job_url = page.url
    expect(page.locator("#job-status")).to_have_text("queued")
    expect(page.locator("#job-events")).to_contain_text("Queued")
    expect(page.locator("#job-step")).to_have_text("0 of 4")
    person.shoot("fine-tune-queued")

    # A queued fine-tune cancels at once; resuming queues it again.
    page.get_by_role("button", name="Cancel fine-tune").click()
    expect(page.locator("#messages")).to_contain_text("Cancelling")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel fine-tune")).to_be_hidden()
    page.get_by_role("button", name="Resume from the last checkpoint").click()
    expect(page.locator("#messages")).to_contain_text("queued again")
    expect(page.locator("#job-status")).to_have_text("queued")
    expect(page.locator("#job-events")).to_contain_text("Queued again, to resume from step 0")
    expect(page.get_by_role("button", name="Resume from the last checkpoint")).to_be_hidden()
    page.get_by_role("link", name="All fine-tunes").click()
    expect(page.get_by_role("row", name=re.compile("Rain study v1"))).to_contain_text("queued")

    # Training froze version 1; a new version starts from it and is editable.
    page.goto(dataset_url)
    expect(first.get_by_text("Frozen", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Edit version 1")).to_have_count(0)
    person.goto(dataset_url.removeprefix(server) + "/versions/1/edit")
    expect(page.get_by_text("This version is frozen")).to_be_visible()
    page.get_by_role("link", name="Start a new version from the latest").click()
    expect(page.get_by_role("checkbox", name="dusk.mp4")).to_be_checked()
    expect(page.get_by_label("Caption for dusk.mp4")).to_have_value("dusk over the harbour")
    page.get_by_label("Trigger word").fill("sks_dusk")
    page.get_by_role("button", name="Create version").click()
    second = page.get_by_role("article", name=re.compile("Version 2"))
    expect(second.get_by_text("Editable", exact=True)).to_be_visible()
    expect(second).to_contain_text("sks_dusk")
    person.shoot("dataset")
    person.goto("/app/datasets")
    expect(page.get_by_role("row", name=re.compile("Rain study"))).to_contain_text("v2, 2 clips")
    person.shoot("datasets")

    # Another tenant: the same addresses are simply not there.
    other = visit()
    sign_up(other, "Elsewhere", new_email("other"))
    for url in (dataset_url, job_url):
        seen = other.page.goto(url)
        assert seen is not None and seen.status == 404
        expect(other.page.get_by_role("heading", name="Page not found")).to_be_visible()
        expect(other.page.get_by_text("Rain study")).to_have_count(0)
    for action in (f"{job_url}/cancel", f"{server}/app/footage/{rain['id']}/delete"):
        refused = other.page.request.post(action, max_redirects=0)
        assert refused.status == 404 and "text/html" in refused.headers["content-type"]
    phone = person.page
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(dataset_url)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390, (
        "the page scrolls sideways on a phone"
    )

    for someone in (person, other):
        assert someone.foreign_requests() == []
        assert someone.console_errors == []
