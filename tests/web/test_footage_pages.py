"""The footage library in a browser: the upload manager sends files through the JSON upload
API in parts (retrying a part that fails, cancelling on request), insists on the rights
statement, says the server's refusals in words, and the library shows and deletes clips."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Route, expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up
from tests.web.uploading import PART, release, row, start, wait_for

BY = "\N{MULTIPLICATION SIGN}"  # the sign the pages write picture sizes with


def _check_fingerprints(person: Visit) -> None:
    """The upload manager's sha256, over slices of every awkward size, against hashlib's."""
    lengths = [0, 1, 55, 56, 63, 64, 65, 1000, 100_003]
    digests = person.page.evaluate(
        """async (lengths) => {
            const { hashFile } = await import("/static/js/sha256.js");
            const results = [];
            for (const length of lengths) {
                const bytes = new Uint8Array(length);
                for (let i = 0; i < length; i++) bytes[i] = (i * 31 + (i >> 8)) & 255;
                results.push(await hashFile(new Blob([bytes]), { sliceBytes: length > 1000 ? 997 : 7 }));
            }
            return results;
        }""",
        lengths,
    )
    expected = [
        hashlib.sha256(bytes((i * 31 + (i >> 8)) & 255 for i in range(n))).hexdigest() for n in lengths
    ]
    assert digests == expected


def test_upload_manager_and_library(visit: Callable[..., Visit], server: str, tmp_path: Path) -> None:
    person = visit()
    page = person.page
    sign_up(person, "Harbour Films", new_email("editor"))
    person.goto("/app/footage")
    expect(page.get_by_text("No footage yet.")).to_be_visible()
    expect(page.get_by_text("needs JavaScript")).to_be_hidden()

    rain = make_clip(tmp_path / "rain.mp4", width=160, height=120, frames=24)
    dusk = make_clip(tmp_path / "dusk.mov", width=96, height=64, frames=12, pattern_seed=3)
    assert rain.stat().st_size > 4 * 1024  # several 1 KiB parts
    page.get_by_label("Clips to upload").set_input_files([rain, dusk])

    # Nothing leaves the browser before the rights statement is ticked.
    page.get_by_role("button", name="Start upload").click()
    expect(page.get_by_role("alert")).to_contain_text("Tick the statement")
    page.get_by_label("They are licensed to me").check()
    page.get_by_label("I confirm that I have the right").check()
    page.get_by_role("button", name="Start upload").click()
    expect(page.get_by_role("alert")).to_contain_text("Licensed clips need a licence reference.")
    assert not [url for url in person.requests if "/v1/uploads" in url]

    # The first try of part 2 of each file fails as a dropped connection would; each is sent again.
    failed: list[str] = []

    def flaky(route: Route) -> None:
        if (
            route.request.method == "PUT"
            and route.request.url.endswith("/parts/2")
            and route.request.url not in failed
        ):
            failed.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(PART, flaky)
    page.get_by_label("I own them").check()
    page.get_by_role("button", name="Start upload").click()
    for name in ("rain.mp4", "dusk.mov"):
        expect(row(person, name)).to_contain_text("Uploaded", timeout=30_000)
        done = row(person, name).locator("progress").evaluate("bar => [bar.value, bar.max]")
        assert done[0] == done[1] > 0
    expect(row(person, "rain.mp4")).to_contain_text(f"160{BY}120 h264")
    assert len(failed) == 2
    sent = [url for url in person.requests if url in failed]
    assert len(sent) == 4  # each failed part was sent twice

    # The library is refreshed in place with the new clips and what the server found in them.
    library = page.locator("#library")
    card = library.get_by_role("listitem").filter(has_text="rain.mp4")
    expect(card).to_contain_text(f"160{BY}120")
    expect(card).to_contain_text("1.0 s")
    expect(card).to_contain_text("24 fps")
    expect(card).to_contain_text("attested by you")
    expect(library.get_by_role("listitem").filter(has_text="dusk.mov")).to_contain_text(f"96{BY}64")
    poster = card.get_by_role("img", name="First frame of rain.mp4")
    expect(poster).to_have_js_property("complete", True)
    assert poster.evaluate("img => img.naturalWidth") == 160
    person.shoot("footage")
    _check_fingerprints(person)

    # A file the server cannot read is refused in words, and nothing of it is kept.
    notes = tmp_path / "notes.mp4"
    notes.write_text("These are my notes, not a video.\n" * 40)
    page.get_by_label("Clips to upload").set_input_files([notes])
    page.get_by_role("button", name="Start upload").click()
    refused = row(person, "notes.mp4")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused).to_contain_text("the file is not a video or image")
    assert "{" not in (refused.text_content() or "")  # words, not the problem's JSON

    # Reloading the page mid-upload loses nothing the server has: choosing the file again
    # finds its open session (same name, size and contents) and sends only the missing parts.
    held: list[Route] = []

    def first_three_only(route: Route) -> None:
        match = PART.search(route.request.url)
        if match and int(match[2]) <= 3:
            route.continue_()
        else:
            held.append(route)

    page.unroute(PART)
    page.route(PART, first_three_only)
    long = make_clip(tmp_path / "long.mp4", width=160, height=120, frames=24, pattern_seed=5)
    start(person, [long])
    wait_for(person, lambda: len(held) == 3)  # parts 1-3 are stored; 4-6 hang in flight
    found = PART.search(held[0].request.url)
    assert found
    session = found[1]
    release(held)
    page.unroute(PART)
    page.reload()
    start(person, [long])
    expect(row(person, "long.mp4")).to_contain_text("Uploaded", timeout=30_000)
    sent = [int(m[2]) for url in person.requests if (m := PART.search(url)) and m[1] == session]
    assert sorted(sent[:3]) == [1, 2, 3] and min(sent[3:]) > 3  # parts 1-3 were sent once, before
    assert set(sent) == set(range(1, math.ceil(long.stat().st_size / 1024) + 1))

    # Cancel stops a file in flight and removes its upload session from the server.
    page.route(PART, lambda route: held.append(route))
    slow = make_clip(tmp_path / "slow.mp4", width=64, height=48, frames=9, pattern_seed=9)
    start(person, [slow])
    wait_for(person, lambda: bool(held))
    row(person, "slow.mp4").get_by_role("button", name="Cancel slow.mp4").click()
    expect(row(person, "slow.mp4")).to_contain_text("Cancelled; nothing of it was kept.")
    release(held)
    page.unroute(PART)
    open_uploads = page.request.get(f"{server}/v1/uploads").json()
    assert [u["filename"] for u in open_uploads["items"]] == []

    # Delete, after a confirmation, swaps the grid and says so.
    page.once("dialog", lambda dialog: dialog.accept())
    library.get_by_role("button", name="Delete dusk.mov").click()
    expect(library.get_by_role("listitem").filter(has_text="dusk.mov")).to_have_count(0)
    expect(page.locator("#messages")).to_contain_text("The clip was deleted.")
    assert [a["filename"] for a in page.request.get(f"{server}/v1/assets").json()["items"]] == [
        "long.mp4",
        "rain.mp4",
    ]

    page.set_viewport_size({"width": 390, "height": 844})
    person.goto("/app/footage")
    person.shoot("footage-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, (
        "the page scrolls sideways on a phone"
    )

    assert person.foreign_requests() == []
    # The only console errors are the browser reporting the parts made to fail on purpose.
    assert [e for e in person.console_errors if "net::ERR_" not in e] == []
