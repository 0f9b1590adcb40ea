"""The API reference at /schema works offline: its viewer's scripts come from this server."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect

from tests.web.conftest import Visit


def test_the_api_reference_renders_from_this_server_alone(visit: Callable[..., Visit]) -> None:
    reader = visit()
    # The first request builds the OpenAPI document and the viewer's bundle is 2 MB: on a busy
    # machine that takes longer than a page of ours.
    reader.page.goto(reader.base + "/schema", timeout=60_000)
    # Swagger UI marks each operation's path; it renders only once its scripts have run.
    operation = reader.page.locator('[data-path="/v1/uploads/{upload_id}/parts/{part_number}"]')
    expect(operation.first).to_be_visible(timeout=30_000)
    assert reader.foreign_requests() == []
    assert reader.console_errors == []
