"""Driving the footage page's upload manager from a test: choosing files, finding a file's
row, and holding its part requests in flight."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Error, Locator, Route

from tests.web.conftest import Visit

PART = re.compile(r"/v1/uploads/([0-9a-f-]+)/parts/(\d+)$")  # session, part number


def row(person: Visit, filename: str) -> Locator:
    return person.page.locator("#uploads li", has_text=filename)


def start(person: Visit, files: list[Path]) -> None:
    """Choose files and start; the rights statement is ticked (it survives no reload)."""
    person.page.get_by_label("Clips to upload").set_input_files(files)
    person.page.get_by_label("I confirm that I have the right").check()
    person.page.get_by_role("button", name="Start upload").click()


def wait_for(person: Visit, condition: Callable[[], bool]) -> None:
    """Routes are handled while Playwright waits, so wait in its own sleeps."""
    for _ in range(100):
        if condition():
            return
        person.page.wait_for_timeout(100)
    raise AssertionError("the browser never sent what was expected")


def release(held: list[Route]) -> None:
    """Let go of requests held in flight (the browser may have dropped them already)."""
    for route in held:
        with contextlib.suppress(Error):
            route.abort()
    held.clear()
