"""Train, watch and generate in a browser, with a real worker: a fine-tune of the tiny base
started from its form, followed live (step, loss, time left, sample clips, events) to its
model; the model's page offers the adapter; a video generated with it plays in the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up, upload_clip
from tests.workers import Workers

# Records every value the page shows as time left, since a tiny run passes in a moment.
WATCH_TIME_LEFT = """
document.addEventListener("DOMContentLoaded", () => {
  window.timeLeft = [];
  const shown = document.getElementById("job-eta");
  if (shown) new MutationObserver(() => window.timeLeft.push(shown.textContent))
    .observe(shown, { childList: true, characterData: true, subtree: true });
});
"""


def _dataset(person: Visit, clip: Path) -> str:
    """A dataset whose version 1 holds ``clip``, made over the API with the visitor's session."""
    asset = upload_clip(person, clip)
    api = person.page.request
    dataset = api.post(f"{person.base}/v1/datasets", data={"name": "Night rain"}).json()
    item = {"asset_id": asset["id"], "caption": "rain on a window at night"}
    made = api.post(
        f"{person.base}/v1/datasets/{dataset['id']}/versions", data={"trigger_word": "sks", "items": [item]}
    )
    assert made.status == 201, made.text()
    return str(dataset["id"])


def _until_ready(video: Locator, state: int) -> None:
    """Wait until a <video> reaches ``readyState >= state``."""
    video.evaluate(
        """(video, state) => new Promise(done => {
            const check = () => video.readyState >= state && done();
            for (const name of ["loadedmetadata", "loadeddata"]) video.addEventListener(name, check);
            check();
        })""",
        state,
    )


def test_train_watch_and_generate(
    visit: Callable[..., Visit], server: str, workers: Workers, tmp_path: Path
) -> None:
    workers.start()  # it loads while the browser gets ready
    # Two steps, one sample clip: on two busy CPU cores a sample alone takes many seconds.
    person = visit()
    page = person.page
    page.add_init_script(WATCH_TIME_LEFT)
    sign_up(person, "Night Shoot", new_email("director"))
    dataset_id = _dataset(person, make_clip(tmp_path / "rain.mp4"))

    person.goto(f"/app/fine-tunes/new?dataset_id={dataset_id}&version=1")
    page.get_by_text("Change settings").click()
    for label, value in [
        ("Steps", "2"),
        ("Width", "32"),
        ("Height", "32"),
        ("Frames per clip", "5"),
        ("Checkpoint every", "1"),
        ("Sample every", "2"),
        ("Validation prompt", "sks, rain at night"),
    ]:
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Start fine-tune").click()
    page.wait_for_url(re.compile(r"/app/fine-tunes/[0-9a-f-]+$"))

    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=120_000)
    expect(page.locator("#job-step")).to_have_text("2 of 2")
    expect(page.locator("#job-loss")).to_have_text(re.compile(r"^\d+(\.\d+)?(e[-+]\d+)?$"))
    events = page.locator("#job-events")
    for said in ("Queued", "Started on a worker", "Step 1 of 2", "Checkpoint saved at step 1"):
        expect(events).to_contain_text(said)
    expect(events).to_contain_text("Sample clip rendered at step 2")
    expect(events).to_contain_text("Succeeded")
    assert any(re.fullmatch(r"\d+ (s|min)", value) for value in page.evaluate("window.timeLeft"))
    samples = page.locator("#samples video")
    expect(samples).to_have_count(1)
    _until_ready(samples.first, 1)  # HAVE_METADATA
    expect(page.get_by_role("button", name="Cancel fine-tune")).to_be_hidden()
    expect(page.get_by_role("button", name="Resume from the last checkpoint")).to_be_hidden()
    person.shoot("fine-tune")

    # Its model: the version with its adapter to download.
    page.get_by_role("link", name="Open the model").click()
    expect(page.get_by_role("heading", name="Night rain v1")).to_be_visible()
    adapter = page.get_by_role("link", name="Download v1 adapter")
    fetched = page.request.get(server + (adapter.get_attribute("href") or ""))
    assert fetched.status == 200 and fetched.body()[8:9] == b"{"  # a safetensors header
    # Its look, measured after training: two steps at the preset's rate cannot have learned
    # the footage's, and the page says so in words, then shows each property's numbers.
    expect(
        page.get_by_role(
            "link", name=re.compile(r"^did not move the look \(\d+ % (closer to|further from) the footage\)$")
        )
    ).to_be_visible()
    look = page.locator("#look-v1")
    expect(look).to_contain_text("This version did not move the look")
    properties = look.get_by_role("table", name="v1: base → this version → footage")
    number = r"-?\d+\.\d"
    for label in ("Brightness (median L*)", "Colourfulness (RMS chroma)", "Grain (noise, L*)"):
        expect(properties.get_by_role("row", name=label).get_by_role("cell")).to_have_text(
            re.compile(rf"^{number} → {number} → {number}$")
        )
    distances = look.get_by_role("table", name="v1: distance to the footage's look, base → this version")
    expect(distances.get_by_role("row", name="Overall").get_by_role("cell")).to_have_text(
        re.compile(r"^\d+\.\d\d → \d+\.\d\d visible differences$")
    )
    person.shoot("model")

    # Generate with it: the video plays in the page.
    page.get_by_role("link", name="Generate with v1").click()
    page.get_by_label("Prompt", exact=True).fill("sks, rain on a harbour at night")
    for label, value in [("Width", "32"), ("Height", "32"), ("Frames", "5"), ("Steps", "2"), ("Seed", "3")]:
        page.get_by_label(label, exact=True).fill(value)
    person.shoot("generate")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(re.compile(r"/app/generations/[0-9a-f-]+$"))
    expect(page.locator("#generation-status")).to_have_text("succeeded", timeout=90_000)
    video = page.get_by_label("The generated video")
    _until_ready(video, 2)  # HAVE_CURRENT_DATA: a frame to show
    assert video.evaluate("video => video.readyState") >= 2
    # It plays to its end. (Seeking needs range requests, which the output route does not answer yet.)
    played = video.evaluate(
        """async video => {
            video.muted = true;
            const ended = new Promise(done => video.addEventListener('ended', done, { once: true }));
            await video.play();
            await ended;
            return video.currentTime;
        }"""
    )
    assert played > 0
    source = page.request.get(server + (video.get_attribute("src") or ""))
    assert source.headers["content-type"] == "video/mp4"
    assert source.headers["content-disposition"].startswith("inline;")
    person.shoot("generation")

    page.get_by_role("link", name="All videos").click()
    expect(page.get_by_role("link", name="sks, rain on a harbour at night")).to_be_visible()

    assert person.foreign_requests() == []
    assert person.console_errors == []
