"""On S3 the footage page sends parts straight to storage through signed URLs, never through
the API, and a real ``ingest`` worker checks each whole file: the page shows the check, then
the clip in the library, or why the check refused it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from playwright.sync_api import Request, Route, expect

from core.settings import MiB, Settings
from tests.media_samples import make_clip, make_noise_png
from tests.web.conftest import Visit, new_email, sign_up
from tests.web.uploading import PART, release, row, start, wait_for
from tests.workers import Workers

pytestmark = pytest.mark.parametrize("storage_kind", ["s3"], indirect=True)
# Each journey ends well within this; the worker's start (its imports) is most of it.
OUTCOME_MS = 40_000


@pytest.fixture
def ingest(web_settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    """A real worker taking the ``ingest`` role only; start it with ``start()``."""
    pool = Workers(web_settings, tmp_path, roles="ingest")
    yield pool
    pool.stop_all()


def record(person: Visit) -> list[Request]:
    """Every request the page makes from now on."""
    requests: list[Request] = []
    # A function of ours: Playwright marks its handlers, which a bound builtin cannot carry.
    person.page.on("request", lambda request: requests.append(request))
    return requests


def expire_once(person: Visit, storage: str, part_number: int) -> list[str]:
    """Storage refuses the first PUT of part ``part_number`` as it does once its signed URL has
    run out (403, with CORS headers so the page can read it); the refused URLs are returned."""
    refused: list[str] = []

    def answer(route: Route) -> None:
        request = route.request
        number = parse_qs(urlsplit(request.url).query).get("partNumber")
        if request.method == "PUT" and number == [str(part_number)] and not refused:
            refused.append(request.url)
            route.fulfill(
                status=403,
                headers={"Access-Control-Allow-Origin": person.base},
                body="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
        else:
            route.continue_()

    person.page.route(f"http://{storage}/**", answer)
    return refused


def open_footage(person: Visit, tenant: str) -> str:
    """Sign up and open the footage page; returns its Content-Security-Policy."""
    sign_up(person, tenant, new_email("editor"))
    response = person.page.goto(f"{person.base}/app/footage")
    assert response is not None and response.ok
    return response.headers["content-security-policy"]


def test_parts_go_straight_to_storage_and_the_clips_reach_the_library(
    visit: Callable[..., Visit], ingest: Workers, s3_server: str, tmp_path: Path
) -> None:
    ingest.start()
    person = visit()
    requests = record(person)
    policy = open_footage(person, "Harbour Films")
    assert f"connect-src 'self' http://{s3_server};" in policy
    refused = expire_once(person, s3_server, 2)

    clip = make_clip(tmp_path / "rain.mp4", width=64, height=48, frames=9)
    # Two 5 MiB parts, the second short.
    plate = make_noise_png(tmp_path / "plate.png", 1450, seed=1450)
    assert 5 * MiB < plate.stat().st_size < 10 * MiB
    start(person, [clip, plate])
    for name in ("rain.mp4", "plate.png"):
        expect(row(person, name)).to_contain_text("Uploaded", timeout=OUTCOME_MS)
    library = person.page.locator("#library")
    expect(library).to_contain_text("rain.mp4")
    expect(library).to_contain_text("plate.png")

    # Every byte went to storage (moto's origin), one PUT per part and one more for the part
    # whose URL ran out; none through the API.
    puts = [r.url for r in requests if r.method == "PUT"]
    assert [url for url in puts if PART.search(urlsplit(url).path)] == []
    assert all(urlsplit(url).netloc == s3_server for url in puts), puts
    assert {urlsplit(url).netloc for url in person.foreign_requests()} == {s3_server}
    numbers = sorted(parse_qs(urlsplit(url).query)["partNumber"][0] for url in puts)
    assert numbers == ["1", "1", "2", "2"]
    # URLs are asked for in batches, and once more for the refused part alone.
    asks = [r for r in requests if r.url.endswith("/part-urls")]
    assert sorted(json.loads(r.post_data or "")["part_numbers"] for r in asks) == [[1], [1, 2], [2]]
    assert len(refused) == 1
    assert person.console_errors == []


def test_the_page_waits_for_the_check_and_tells_why_it_refused_a_file(
    visit: Callable[..., Visit], ingest: Workers, tmp_path: Path
) -> None:
    person = visit()
    page = person.page
    open_footage(person, "Tidewater")
    rain = make_clip(tmp_path / "rain.mp4", width=64, height=48, frames=9)
    # The same bytes under another name: both are new to the library until one is checked.
    copy = tmp_path / "rain copy.mp4"
    copy.write_bytes(rain.read_bytes())
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(3).bytes(4096))
    start(person, [rain, copy, broken])

    # No worker yet: every file is stored whole and waits for its check.
    for name in ("rain.mp4", "rain copy.mp4", "broken.mp4"):
        expect(row(person, name)).to_contain_text("Checking…", timeout=OUTCOME_MS)
        expect(row(person, name)).to_have_attribute("data-state", "checking")
    # Stored whole, yet not uploaded until checked.
    expect(page.locator("[data-overall-text]")).to_contain_text("0 of 3 files uploaded")
    person.shoot("footage-checking")
    ingest.start()

    failed = row(person, "broken.mp4")
    expect(failed).to_have_attribute("data-state", "failed", timeout=OUTCOME_MS)
    expect(failed).to_contain_text("is not a video or image")
    done = page.locator("#uploads li[data-state=done]")
    duplicate = page.locator("#uploads li[data-state=duplicate]")
    expect(done).to_have_count(1, timeout=OUTCOME_MS)
    expect(duplicate).to_have_count(1)
    (asset,) = page.request.get(f"{person.base}/v1/assets").json()["items"]
    expect(done).to_contain_text(asset["filename"])
    expect(duplicate).to_contain_text("Already in your library")
    expect(duplicate.get_by_role("link", name="see the clip")).to_have_attribute(
        "href", f"#asset-{asset['id']}"
    )

    # Stored anyway on request, checked again, and in the library.
    duplicate.get_by_role("button", name="Upload anyway").click()
    expect(page.locator("#uploads li[data-state=done]")).to_have_count(2, timeout=OUTCOME_MS)
    names = sorted(a["filename"] for a in page.request.get(f"{person.base}/v1/assets").json()["items"])
    assert names == ["rain copy.mp4", "rain.mp4"]


def test_going_offline_pauses_and_coming_back_sends_only_what_storage_lacks(
    visit: Callable[..., Visit], ingest: Workers, s3_server: str, tmp_path: Path
) -> None:
    ingest.start()
    person = visit()
    page = person.page
    requests = record(person)
    open_footage(person, "Harbour Films")
    held: list[Route] = []

    def hold_part_two(route: Route) -> None:
        if parse_qs(urlsplit(route.request.url).query).get("partNumber") == ["2"]:
            held.append(route)
        else:
            route.continue_()

    page.route(f"http://{s3_server}/**", hold_part_two)
    plate = make_noise_png(tmp_path / "plate.png", 1450, seed=1450)
    start(person, [plate])
    wait_for(person, lambda: bool(held))

    def stored() -> list[int]:
        (upload,) = page.request.get(f"{person.base}/v1/uploads").json()["items"]
        return [part["part_number"] for part in upload["parts"]]

    wait_for(person, lambda: stored() == [1])
    person.context.set_offline(True)
    expect(row(person, "plate.png")).to_have_attribute("data-state", "paused")
    expect(row(person, "plate.png")).to_contain_text("The network is down")
    release(held)
    page.unroute(f"http://{s3_server}/**")
    person.context.set_offline(False)
    expect(row(person, "plate.png")).to_contain_text("Uploaded", timeout=OUTCOME_MS)

    # Part 1 went once; on resuming, only part 2 was signed again and sent.
    numbers = [parse_qs(urlsplit(r.url).query)["partNumber"][0] for r in requests if r.method == "PUT"]
    assert sorted(numbers) == ["1", "2", "2"]
    asks = [json.loads(r.post_data or "")["part_numbers"] for r in requests if r.url.endswith("/part-urls")]
    assert asks == [[1, 2], [2]]
