"""A file the library already holds is flagged by the upload manager, not stored twice, and
"Upload anyway" stores it on request."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import expect

from tests.media_samples import make_clip
from tests.web.conftest import Visit, new_email, sign_up

PART = re.compile(r"/v1/uploads/([0-9a-f-]+)/parts/\d+$")


def _upload(person: Visit, file: Path) -> None:
    person.page.get_by_label("Clips to upload").set_input_files([file])
    person.page.get_by_label("I confirm that I have the right").check()
    person.page.get_by_role("button", name="Start upload").click()


def test_a_duplicate_is_flagged_with_a_link_to_the_clip(
    visit: Callable[..., Visit], server: str, tmp_path: Path
) -> None:
    person = visit()
    page = person.page
    sign_up(person, "Harbour Films", new_email("editor"))
    person.goto("/app/footage")
    rain = make_clip(tmp_path / "rain.mp4", width=64, height=48, frames=9)
    _upload(person, rain)
    expect(page.locator("#uploads li", has_text="rain.mp4")).to_contain_text("Uploaded", timeout=30_000)
    (existing,) = page.request.get(f"{server}/v1/assets").json()["items"]
    parts_sent = len([url for url in person.requests if PART.search(url)])

    copy = tmp_path / "rain copy.mp4"
    shutil.copyfile(rain, copy)
    _upload(person, copy)
    row = page.locator("#uploads li", has_text="rain copy.mp4")
    expect(row).to_have_attribute("data-state", "duplicate")
    expect(row).to_contain_text("Already in your library")
    expect(row.get_by_role("link", name="see the clip")).to_have_attribute("href", f"#asset-{existing['id']}")
    assert len([url for url in person.requests if PART.search(url)]) == parts_sent  # nothing was sent
    assert page.request.get(f"{server}/v1/uploads").json()["items"] == []

    row.get_by_role("button", name="Upload anyway rain copy.mp4").click()
    expect(row).to_contain_text("Uploaded", timeout=30_000)
    names = sorted(a["filename"] for a in page.request.get(f"{server}/v1/assets").json()["items"])
    assert names == ["rain copy.mp4", "rain.mp4"]
