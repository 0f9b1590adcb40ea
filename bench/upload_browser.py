"""A big upload from the browser: the footage page's JS heap and the server's RSS while it runs.

Starts the real server (``rushes-server serve``, as ``bench.upload`` does) on loopback, signs up on
the sign-up page in Debian's Chromium (Playwright, ``/usr/bin/chromium``), and uploads a
``--size-gib`` ProRes file (``bench.upload``'s generator) through the footage page's upload
manager, as a person would: pick the file, tick the rights statement, start. Every half second
it reads the page's JS heap (the DevTools protocol's ``Performance.getMetrics``) and the
server's RSS (children included) until the clip is in the library.

    .venv/bin/python -m bench.upload_browser                # 2 GiB
    .venv/bin/python -m bench.upload_browser --size-gib 4

Targets (issue #12): JS heap under 200 MiB, server RSS growth under 100 MiB.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from bench.upload import (
    PASSWORD,
    GiB,
    MiB,
    RssSampler,
    cached_media,
    git_revision,
    machine_description,
    run_server,
)

CHROMIUM = Path("/usr/bin/chromium")
# The upload manager hashes the file before it creates the session, then sends its parts.
DEADLINE_SECONDS = 1800


def _sign_up(page: Page, base: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Studio name").fill("Bench")
    page.get_by_label("Email").fill(f"bench-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(f"{base}/app")


def _upload(page: Page, base: str, path: Path, heap: Callable[[], int], *, expected: int) -> int:
    """Upload ``path`` through the footage page until the library holds ``expected`` clips;
    the peak of ``heap`` meanwhile, read every half second."""
    page.get_by_label("Clips to upload").set_input_files([path])
    page.get_by_label("I confirm that I have the right").check()
    page.get_by_role("button", name="Start upload").click()
    started, peak = time.perf_counter(), heap()
    while page.request.get(f"{base}/v1/assets").json()["total"] < expected:
        if time.perf_counter() - started > DEADLINE_SECONDS:
            raise RuntimeError(f"{path.name} not in the library after {DEADLINE_SECONDS} s")
        page.wait_for_timeout(500)
        peak = max(peak, heap())
    return peak


def run(size_gib: float, work_dir: Path) -> dict[str, float]:
    source, _ = cached_media(work_dir / "media", size_gib)
    warm_up, _ = cached_media(work_dir / "media", 1 / 64)
    with (
        tempfile.TemporaryDirectory(dir=work_dir) as data,
        run_server(Path(data)) as server,
        sync_playwright() as driver,
    ):
        sampler = RssSampler(server.process.pid, interval=0.1)
        sampler.start()
        browser = driver.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context().new_page()
            _sign_up(page, server.base_url)
            page.goto(f"{server.base_url}/app/footage")
            devtools = page.context.new_cdp_session(page)
            devtools.send("Performance.enable")

            def heap() -> int:
                metrics = devtools.send("Performance.getMetrics")["metrics"]
                return int(next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize"))

            # A small upload first, as bench.upload's warm-up: the baseline then holds what any
            # completion loads once (PyAV and its decoders), and the figures are the big file's.
            _upload(page, server.base_url, warm_up, heap, expected=1)
            page.reload()
            server_before, heap_before = sampler.settle(1.0), heap()
            started = time.perf_counter()
            heap_peak = _upload(page, server.base_url, source, heap, expected=2)
            seconds = time.perf_counter() - started
            server_peak = sampler.peak(started, time.perf_counter())
        finally:
            sampler.stop()
            browser.close()
    return {
        "size_bytes": source.stat().st_size,
        "seconds": seconds,
        "heap_before": heap_before,
        "heap_peak": heap_peak,
        "server_before": server_before,
        "server_peak": server_peak,
    }


def render(figures: dict[str, float], command: str, machine: dict[str, str]) -> str:
    size, seconds = figures["size_bytes"], figures["seconds"]
    growth = figures["server_peak"] - figures["server_before"]
    rows = [
        ("file", f"{size / GiB:.2f} GiB ProRes 4444 XQ"),
        ("upload, hashing included", f"{seconds:.1f} s ({size / MiB / seconds:.0f} MiB/s)"),
        (
            "page JS heap, before → peak",
            f"{figures['heap_before'] / MiB:.1f} → {figures['heap_peak'] / MiB:.1f} MiB",
        ),
        (
            "server RSS, before → peak",
            f"{figures['server_before'] / MiB:.0f} → {figures['server_peak'] / MiB:.0f} MiB",
        ),
        ("server RSS growth", f"{growth / MiB:.0f} MiB"),
    ]
    lines = [
        f"`{command}` on {machine['CPU']}, {machine['RAM']}, {machine['Disk']}; git {git_revision()}:",
        "",
        "| measure | value |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/rushes-bench"))
    args = parser.parse_args(argv)
    work_dir: Path = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    figures = run(args.size_gib, work_dir)
    command = shlex.join([Path(sys.executable).as_posix(), "-m", "bench.upload_browser", *sys.argv[1:]])
    print(render(figures, command, machine_description(work_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
