"""Pausing and resuming uploads in the browser: a paused file keeps what the server has and
sends only the rest when resumed, one bar sums the batch, and a file that loses the network
pauses itself and finishes when it is back."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Route, expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up
from tests.web.uploading import PART, release, row, start, wait_for


def _parts(person: Visit, session: str) -> list[int]:
    """Part numbers the page asked to send for one upload session, in order."""
    return [int(m[2]) for url in person.requests if (m := PART.search(url)) and m[1] == session]


def _session(person: Visit, server: str, filename: str) -> dict[str, Any]:
    """The open upload session of one file, as the API lists it."""
    items: list[dict[str, Any]] = person.page.request.get(f"{server}/v1/uploads").json()["items"]
    (found,) = [u for u in items if u["filename"] == filename]
    return found


def _sessions(held: list[Route]) -> set[str]:
    return {m[1] for route in held if (m := PART.search(route.request.url))}


def test_pause_resume_and_the_overall_bar(visit: Callable[..., Visit], server: str, tmp_path: Path) -> None:
    person = visit()
    page = person.page
    sign_up(person, "Harbour Films", new_email("editor"))
    person.goto("/app/footage")
    overall = page.locator("#upload-overall")
    expect(overall).to_be_hidden()

    # Parts 1 and 2 of each file reach the server; the rest are held in flight.
    held: list[Route] = []

    def first_two_only(route: Route) -> None:
        match = PART.search(route.request.url)
        if match and int(match[2]) <= 2:
            route.continue_()
        else:
            held.append(route)

    page.route(PART, first_two_only)
    dawn = make_clip(tmp_path / "dawn.mp4", width=160, height=120, frames=24, pattern_seed=11)
    dusk = make_clip(tmp_path / "dusk.mp4", width=160, height=120, frames=24, pattern_seed=12)
    start(person, [dawn, dusk])
    wait_for(person, lambda: len(_sessions(held)) == 2)
    wait_for(person, lambda: len(_session(person, server, "dawn.mp4")["parts"]) == 2)
    expect(overall).to_be_visible()
    expect(overall).to_contain_text("0 of 2 files uploaded")

    row(person, "dawn.mp4").get_by_role("button", name="Pause dawn.mp4").click()
    expect(row(person, "dawn.mp4")).to_have_attribute("data-state", "paused")
    expect(row(person, "dawn.mp4")).to_contain_text("Paused.")
    dawn_session = _session(person, server, "dawn.mp4")["id"]
    asked_before_pause = len(_parts(person, dawn_session))
    release(held)  # dusk's held parts fail as dropped connections and are sent again
    page.unroute(PART)

    expect(row(person, "dusk.mp4")).to_contain_text("Uploaded", timeout=30_000)
    expect(overall).to_contain_text("1 of 2 files uploaded")
    expect(overall).to_contain_text("1 paused")
    expect(overall).not_to_contain_text("/s")  # nothing is on the wire: no speed, no time left
    person.shoot("footage-paused")
    bar = overall.locator("progress")
    value, maximum = bar.evaluate("bar => [bar.value, bar.max]")
    assert maximum == dawn.stat().st_size + dusk.stat().st_size
    assert dusk.stat().st_size < value < maximum  # dusk, and the two parts of dawn the server has
    # Paused means paused: nothing of dawn was asked for since.
    assert len(_parts(person, dawn_session)) == asked_before_pause
    assert sorted(p["part_number"] for p in _session(person, server, "dawn.mp4")["parts"]) == [1, 2]

    row(person, "dawn.mp4").get_by_role("button", name="Resume dawn.mp4").click()
    expect(row(person, "dawn.mp4")).to_contain_text("Uploaded", timeout=30_000)
    expect(overall).to_contain_text("2 of 2 files uploaded")
    value, maximum = bar.evaluate("bar => [bar.value, bar.max]")
    assert value == maximum
    sent = _parts(person, dawn_session)
    assert sent.count(1) == 1 and sent.count(2) == 1  # the stored parts were never sent again
    assert set(sent) == set(range(1, math.ceil(dawn.stat().st_size / 1024) + 1))

    # The network goes away mid-upload: the file pauses itself, then finishes when it is back.
    page.route(PART, first_two_only)
    rain = make_clip(tmp_path / "rain.mp4", width=160, height=120, frames=24, pattern_seed=13)
    start(person, [rain])
    wait_for(person, lambda: bool(held))
    person.context.set_offline(True)
    expect(row(person, "rain.mp4")).to_have_attribute("data-state", "paused")
    expect(row(person, "rain.mp4")).to_contain_text("The network is down")
    release(held)
    page.unroute(PART)
    person.context.set_offline(False)
    expect(row(person, "rain.mp4")).to_contain_text("Uploaded", timeout=30_000)
    # A new batch: the first one had finished, so the bar counts only the new file.
    expect(overall).to_be_hidden()

    names = sorted(a["filename"] for a in page.request.get(f"{server}/v1/assets").json()["items"])
    assert names == ["dawn.mp4", "dusk.mp4", "rain.mp4"]
    assert page.request.get(f"{server}/v1/uploads").json()["items"] == []
    assert person.foreign_requests() == []
    assert [e for e in person.console_errors if "net::ERR_" not in e] == []
