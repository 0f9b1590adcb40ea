"""The README's command-line quickstart runs as written, from sign-up to a downloaded MP4.

The blocks marked ``<!-- quickstart -->`` run in one bash, with ``set -euo pipefail``, against
a real ``rushes-server serve`` (its embedded worker trains and renders on the CPU) on SQLite
in a temporary folder. The README's own assumptions are met the way a reader meets them:
the password comes from ``RUSHES_PASSWORD`` (which ``rushes signup`` documents), the server
from ``RUSHES_BASE_URL`` (the test's port, not 8000), and ``clip.mp4`` is a short clip put in
the folder the commands run in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest
import rushes

from core.bases.catalogue import TINY_GENERATION
from tests.conftest import free_port, wait_for_http
from tests.helpers import PASSWORD
from tests.integration.test_server_cli import env_for
from tests.media_samples import make_clip

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
HEADING = "## Quickstart: from sign-up to a video, with the command line"


def quickstart_blocks() -> list[str]:
    """The shell blocks marked ``<!-- quickstart -->`` in the README's quickstart section."""
    section = README.read_text().split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"<!-- quickstart -->\n```sh\n(.*?)```", section, re.DOTALL)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[str]:
    """``rushes-server serve`` with its embedded worker, on SQLite in a temporary folder."""
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = env_for(
        data,
        f"sqlite+aiosqlite:///{data / 'rushes.db'}",
        RUSHES_WORKER__DEVICE="cpu",
        RUSHES_WORKER__MEMORY_BYTES=str(8 << 30),
        RUSHES_WORKER__POLL_SECONDS="0.3",
    )
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=60)


@pytest.mark.timeout(600)  # about two minutes of two cores: a 60-step fine-tune and a render
def test_the_readme_quickstart_runs_as_written(serve: str, tmp_path: Path) -> None:
    blocks = quickstart_blocks()
    assert len(blocks) == 4, "the quickstart's marked blocks changed: update this test with them"
    assert "rushes signup" in blocks[0] and "-o tram.mp4" in blocks[-1]

    work = tmp_path / "work"
    work.mkdir()
    make_clip(work / "clip.mp4")
    config = tmp_path / "config"
    # The reader's environment, less any Rushes settings of the machine running the test.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHES_")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "RUSHES_BASE_URL": serve,
        "RUSHES_PASSWORD": PASSWORD,
        "XDG_CONFIG_HOME": str(config),
    }
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", "\n".join(blocks)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    log = (tmp_path / "serve.log").read_text()[-3000:]
    assert ran.returncode == 0, f"stdout:\n{ran.stdout}\nstderr:\n{ran.stderr}\nserver log:\n{log}"
    assert "Signed up as you@example.com" in ran.stdout
    assert "succeeded, step 60 of 60" in ran.stdout

    # The download has the mode any new file gets here (not a temporary file's private 0600).
    (work / "new-file").touch()
    assert (work / "tram.mp4").stat().st_mode == (work / "new-file").stat().st_mode

    # The video is the tiny base's default render: every frame there, at its size.
    with av.open(str(work / "tram.mp4")) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == TINY_GENERATION.frames
    assert frames[0].shape == (TINY_GENERATION.height, TINY_GENERATION.width, 3)

    # `rushes signup` kept a session, with which `keys create` made the key that every
    # later command then used (a command that fell back on the session would not mark it).
    stored = json.loads((config / "rushes" / "config.json").read_text())
    with rushes.Client(session=stored["session"], base_url=serve) as client:
        (key,) = list(client.api_keys.list())
        assert key.name == "laptop" and key.last_used_at is not None
        (job,) = list(client.fine_tunes.list())
        assert job.status == "succeeded" and job.total_steps == 60
