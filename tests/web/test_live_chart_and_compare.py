"""A fine-tune's loss chart and the compare page in a browser, with a real worker: a two-step
fine-tune of the tiny base draws one point per step as it trains and again after a reload;
its version is then compared with the base alone (adapter strength 0) from the same prompt and
seed, both rendered live, and "Play both" starts both videos."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up
from tests.web.test_training_pages import _dataset, _until_ready
from tests.workers import Workers

# Records each number of points the chart shows, to see it fill as the run reports steps.
WATCH_CHART = """
document.addEventListener("DOMContentLoaded", () => {
  window.chartSteps = [];
  const chart = document.getElementById("loss-chart");
  if (chart) new MutationObserver(() => window.chartSteps.push(chart.dataset.steps))
    .observe(chart, { attributes: true, attributeFilter: ["data-steps"] });
});
"""


def _chart_points(page: Page) -> int:
    """The chart's points, after checking that its markers, line and words agree on how many."""
    chart = page.locator("#loss-chart")
    steps = int(chart.get_attribute("data-steps") or "0")
    expect(chart.locator("circle.chart-point")).to_have_count(steps)
    assert len((chart.locator("polyline").get_attribute("points") or "").split()) == steps
    expect(chart.locator("figcaption")).to_have_text(
        re.compile(rf"^Latest loss \S+ at step \d+ of 2; lowest \S+ at step \d+; {steps} steps? recorded\.$")
    )
    return steps


def test_loss_chart_then_compare_with_the_base(
    visit: Callable[..., Visit], server: str, workers: Workers, tmp_path: Path
) -> None:
    workers.start()  # it loads while the browser gets ready
    person = visit()
    page = person.page
    page.add_init_script(WATCH_CHART)
    sign_up(person, "Night Shoot", new_email("director"))
    dataset_id = _dataset(person, make_clip(tmp_path / "rain.mp4"))

    # Two steps and no sample clips: the chart is what this journey watches.
    person.goto(f"/app/fine-tunes/new?dataset_id={dataset_id}&version=1")
    page.get_by_text("Change settings").click()
    for label, value in [("Steps", "2"), ("Width", "32"), ("Height", "32"), ("Frames per clip", "5")]:
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Start fine-tune").click()
    page.wait_for_url(re.compile(r"/app/fine-tunes/[0-9a-f-]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    chart = page.get_by_role("img", name="Loss per step")
    expect(chart).to_be_visible()

    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=120_000)
    events = page.request.get(f"{server}/v1/fine-tunes/{job_id}/events?limit=200").json()["items"]
    seen = {event["data"]["step"] for event in events if event["type"] == "progress"}
    assert seen == {1, 2}
    expect(page.locator("#loss-chart")).to_have_attribute("data-steps", str(len(seen)))
    assert _chart_points(page) == len(seen)
    # It grew as steps were reported, never back and never twice; two steps reported within
    # one animation frame are drawn together.
    filled = [int(n) for n in page.evaluate("window.chartSteps")]
    assert filled == sorted(set(filled)) and filled[-1] == len(seen), filled
    person.shoot("fine-tune-loss")
    # A reload replays the whole stream: the same points, none twice.
    page.reload()
    expect(page.locator("#loss-chart")).to_have_attribute("data-steps", str(len(seen)))
    assert _chart_points(page) == len(seen)

    # Compare its only version with the base alone: the form offers that by default.
    person.goto("/app/generations")
    page.get_by_role("link", name="Compare two versions").click()
    expect(page.get_by_label("Model version").nth(1)).to_have_value(
        page.get_by_label("Model version").first.input_value()
    )
    expect(page.locator("#strength-a")).to_have_value("1.0")
    expect(page.locator("#strength-b")).to_have_value("0")
    page.get_by_label("Prompt", exact=True).fill("sks, rain on a harbour at night")
    for label, value in [("Width", "32"), ("Height", "32"), ("Frames", "5"), ("Steps", "2"), ("Seed", "3")]:
        page.get_by_label(label, exact=True).fill(value)
    person.shoot("compare-new")
    page.get_by_role("button", name="Render both").click()
    page.wait_for_url(re.compile(r"/app/compare\?a=[0-9a-f-]+&b=[0-9a-f-]+$"))
    ids = re.findall(r"[ab]=([0-9a-f-]+)", page.url)

    for side in ("a", "b"):
        expect(page.locator(f"#side-{side}-status")).to_have_text("succeeded", timeout=120_000)
    videos = page.locator("#compare video")
    expect(videos).to_have_count(2)
    for index in range(2):
        _until_ready(videos.nth(index), 2)  # HAVE_CURRENT_DATA: a frame to show
        assert videos.nth(index).evaluate("video => video.readyState") >= 2
    records = [page.request.get(f"{server}/v1/generations/{generation}").json() for generation in ids]
    assert [(r["prompt"], r["seed"]) for r in records] == [("sks, rain on a harbour at night", 3)] * 2
    assert [r["adapter_strength"] for r in records] == [1.0, 0.0]

    # "Play both" starts both (they are a fraction of a second long, so each start is recorded).
    page.evaluate(
        """() => {
            window.started = [];
            for (const video of document.querySelectorAll("#compare video")) {
                video.addEventListener("playing", () => window.started.push(video.id), { once: true });
            }
        }"""
    )
    page.get_by_role("button", name="Play both").click()
    # A polling promise, not wait_for_function's string: the page's CSP forbids what that evaluates.
    page.evaluate(
        """() => new Promise((done, fail) => {
            const check = () => window.started.length === 2 ? done() : setTimeout(check, 50);
            setTimeout(() => fail(new Error(`started: ${window.started}`)), 10_000);
            check();
        })"""
    )
    assert sorted(page.evaluate("window.started")) == ["side-a-video", "side-b-video"]
    person.shoot("compare")

    # From a video's own page, "Compare with another version" starts from its settings.
    page.get_by_role("link", name="Open this video").first.click()
    page.get_by_role("link", name="Compare with another version").click()
    expect(page.get_by_label("Seed", exact=True)).to_have_value("3")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("sks, rain on a harbour at night")

    assert person.foreign_requests() == []
    assert person.console_errors == []
