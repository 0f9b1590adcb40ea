"""Database queries per second behind open, idle live event streams (SSE), side by side.

    .venv/bin/python -m bench.streams                          # this checkout only
    .venv/bin/python -m bench.streams --before /tmp/rushes-old # and an older checkout beside it

For each checkout, a child process serves that checkout's app (``service.app.create_app``)
under uvicorn with a counter on every SQL statement any engine executes. This process signs
up, uploads a clip, makes a dataset and a fine-tune that stays queued (no worker runs),
then opens N streams on that job's events and counts the statements the server executes
over a window, with 0 streams first (the app's own background work) and then with N. A
checkout made before the streams shared one poller (``git worktree add /tmp/rushes-old
5a4d852``) gives the before figure; both are printed in one table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
PASSWORD = "correct horse battery staple"


def _serve(port: int, counter: Path) -> None:
    """The child: this checkout's app, counting statements into ``counter`` once a second."""
    import threading

    import uvicorn
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from service.app import create_app

    executed = [0]

    def count(*_: object) -> None:
        executed[0] += 1

    event.listen(Engine, "before_cursor_execute", count)

    def report() -> None:
        while True:
            counter.write_text(str(executed[0]))
            time.sleep(0.2)

    threading.Thread(target=report, daemon=True).start()
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_level="warning")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _queued_job(http: httpx.AsyncClient, work: Path) -> str:
    from tests.helpers import file_sha256
    from tests.media_samples import make_clip

    signed = await http.post(
        "/v1/auth/signup", json={"email": "bench@example.com", "password": PASSWORD, "tenant_name": "Bench"}
    )
    signed.raise_for_status()
    clip = make_clip(work / "clip.mp4")
    upload = (
        await http.post(
            "/v1/uploads",
            json={
                "filename": clip.name,
                "size": clip.stat().st_size,
                "sha256": file_sha256(clip),
                "content_type": "video/mp4",
                "rights": {"kind": "owned"},
            },
        )
    ).json()
    (await http.put(f"/v1/uploads/{upload['id']}/parts/1", content=clip.read_bytes())).raise_for_status()
    asset = (await http.post(f"/v1/uploads/{upload['id']}/complete")).json()
    dataset = (await http.post("/v1/datasets", json={"name": "bench"})).json()
    version = await http.post(
        f"/v1/datasets/{dataset['id']}/versions",
        json={"trigger_word": "sks", "items": [{"asset_id": asset["id"], "caption": "rain"}]},
    )
    version.raise_for_status()
    job = await http.post(
        "/v1/fine-tunes",
        json={
            "dataset_id": dataset["id"],
            "dataset_version": version.json()["number"],
            "base": "tiny",
            "preset": "quick",
            "hyperparameters": {"steps": 4, "height": 32, "width": 32, "frames": 5},
        },
    )
    job.raise_for_status()
    return str(job.json()["id"])


async def _follow(
    http: httpx.AsyncClient, url: str, opened: asyncio.Event, count: list[int], of: int
) -> None:
    async with http.stream("GET", url, timeout=None) as response:
        response.raise_for_status()
        count[0] += 1
        if count[0] == of:
            opened.set()
        async for _ in response.aiter_bytes():
            pass


def _read(counter: Path) -> int:
    return int(counter.read_text() or 0)


async def _measure(base: str, counter: Path, streams: int, window: float, work: Path) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        job = await _queued_job(http, work)
        await asyncio.sleep(1.0)
        start, began = _read(counter), time.monotonic()
        await asyncio.sleep(window)
        idle = (_read(counter) - start) / (time.monotonic() - began)

        opened, count = asyncio.Event(), [0]
        limits = httpx.Limits(max_connections=streams + 10)
        async with httpx.AsyncClient(base_url=base, cookies=http.cookies, limits=limits) as watchers:
            tasks = [
                asyncio.create_task(
                    _follow(watchers, f"/v1/fine-tunes/{job}/events/stream", opened, count, streams)
                )
                for _ in range(streams)
            ]
            await asyncio.wait_for(opened.wait(), 120)
            await asyncio.sleep(1.0)  # past the first read each stream makes
            start, began = _read(counter), time.monotonic()
            await asyncio.sleep(window)
            busy = (_read(counter) - start) / (time.monotonic() - began)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"idle": idle, "streams": busy}


def _run_checkout(checkout: Path, streams: int, window: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rushes-bench-streams-") as tmp:
        work = Path(tmp)
        port, counter = _free_port(), work / "statements"
        counter.write_text("0")
        env = {
            **os.environ,
            "PYTHONPATH": str(checkout),
            "RUSHES_DATA_DIR": str(work / "data"),
            "RUSHES_LOG__LEVEL": "WARNING",
        }
        migrate = subprocess.run(
            [sys.executable, "-m", "service.cli", "migrate"], cwd=checkout, env=env, capture_output=True
        )
        if migrate.returncode:
            raise SystemExit(migrate.stderr.decode())
        # Run as a script, so that only the checkout under test is on the path for ``service``.
        server = subprocess.Popen(
            [sys.executable, __file__, "--child", str(port), str(counter)], cwd=checkout, env=env
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            return asyncio.run(_measure(base, counter, streams, window, work))
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0, help="seconds each rate is measured over")
    parser.add_argument(
        "--before", type=Path, default=None, help="an older checkout to measure beside this one"
    )
    parser.add_argument("--child", nargs=2, metavar=("PORT", "COUNTER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _serve(int(args.child[0]), Path(args.child[1]))
        return
    rows = []
    for name, checkout in (("before", args.before), ("this checkout", ROOT)):
        if checkout is not None:
            rows.append((name, _run_checkout(checkout.resolve(), args.streams, args.window)))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; SQLite")
    print(f"| checkout | statements/s, no stream | statements/s, {args.streams} idle streams | per stream |")
    print("|---|---|---|---|")
    for name, rate in rows:
        per = (rate["streams"] - rate["idle"]) / args.streams
        print(f"| {name} | {rate['idle']:.1f} | {rate['streams']:.1f} | {per:.2f} |")


if __name__ == "__main__":
    main()
