"""The README's quickstart runs as written against the live server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.media_samples import make_clip
from tests.sdk.conftest import LiveServer

README = Path(__file__).parents[2] / "sdk" / "README.md"


def quickstart() -> str:
    section = README.read_text().split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the quickstart has no python block"
    return match.group(1)


def test_quickstart_runs(
    live_server: LiveServer,
    api_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUSHES_API_KEY", api_key)
    monkeypatch.setenv("RUSHES_BASE_URL", live_server.url)
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "clip.mp4")
    exec(compile(quickstart(), str(README), "exec"), {"__name__": "__quickstart__"})
    out = capsys.readouterr().out
    assert "version 1 with 1 clip(s)" in out and "clip.mp4" in out and "not found; request id" in out
