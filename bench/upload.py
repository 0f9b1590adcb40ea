"""Upload throughput and server memory: a big file through the HTTP API on loopback.

Starts the real server (``rushes-server serve``) as a subprocess with its data folder on
the same disk as the source file, signs up, and uploads a >= 1 GiB ProRes 4444 XQ file
with N parts in flight, then completes it (the server re-reads the object for its
sha256, probes it with PyAV and makes a poster). Each round is timed against a plain
``shutil.copyfile`` of the same file on the same disk, and a thread samples the
server's RSS (children included) every 50 ms.

    .venv/bin/python -m bench.upload                    # 1 GiB, 4 parts in flight, 3 rounds
    .venv/bin/python -m bench.upload --size-gib 4 --parallel 8 --part-size-mib 32

The source file is generated once and cached under ``--work-dir`` (default
/tmp/rushes-bench): a handful of noise frames are encoded and their packets repeated,
which gives a valid, probe-clean file of any size in a second or two.

Page cache: nothing is dropped. The source file is hot once it has been read (it is
generated, hashed or copied before every upload; only the first copy of a run may read
it from disk); destination writes land in the page cache and are written back by the
kernel afterwards. Neither the copy nor the server fsyncs. ``os.sync()`` runs before each
measured phase so that one phase's writeback is not billed to the next.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

MiB = 1 << 20
GiB = 1 << 30
REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
RSS_TARGET_MIB = 100
RATIO_TARGET = 0.5
#: Everything from this line on in the report file is kept when the benchmark rewrites it.
NOTES_MARKER = "<!-- notes: kept when bench/upload.py rewrites this file -->"

# --------------------------------------------------------------------------- media


def make_media(path: Path, size_bytes: int, distinct_frames: int = 6, seed: int = 7) -> None:
    """A ProRes 4444 XQ 1920x1080 MOV of at least ``size_bytes``.

    Noise frames defeat ProRes' compression (about 10 MB a frame); ``distinct_frames``
    are encoded and then their packets are muxed again and again with fresh timestamps.
    ProRes is intra-only, so every packet is a keyframe and the result probes as a normal
    clip.
    """
    import av
    import numpy as np
    from av.video.stream import VideoStream

    width, height, fps = 1920, 1080, 24
    rng = np.random.default_rng(seed)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payloads: list[bytes] = []
    try:
        with av.open(str(tmp), mode="w", format="mov") as out:
            stream = out.add_stream("prores_ks", rate=fps, options={"profile": "5"})  # 5 = 4444 XQ
            assert isinstance(stream, VideoStream)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuva444p10le"
            stream.codec_context.thread_count = os.cpu_count() or 1
            for index in range(distinct_frames):
                if sum(map(len, payloads)) >= size_bytes:
                    break
                noise = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(noise, format="rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    payloads.append(bytes(packet))
                    out.mux(packet)
            for packet in stream.encode(None):
                payloads.append(bytes(packet))
                out.mux(packet)
            # The header is written now, so the stream's time base is known.
            time_base = stream.time_base
            assert time_base is not None
            step = round(1 / (fps * time_base))
            total = math.ceil(size_bytes / min(len(p) for p in payloads))
            for index in range(len(payloads), total):
                packet = av.Packet(payloads[index % len(payloads)])
                packet.stream = stream
                packet.time_base = time_base
                packet.pts = packet.dts = index * step
                packet.duration = step
                packet.is_keyframe = True
                out.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def cached_media(cache_dir: Path, size_gib: float) -> tuple[Path, str]:
    """The cached source file for ``size_gib`` and its sha256, made if missing."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"prores4444xq-1080p-{size_gib:g}GiB.mov"
    meta_path = path.with_suffix(".json")
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        stat = path.stat()
        if meta.get("size") == stat.st_size and meta.get("mtime_ns") == stat.st_mtime_ns:
            return path, str(meta["sha256"])
    started = time.perf_counter()
    make_media(path, int(size_gib * GiB))
    made = time.perf_counter() - started
    digest = sha256_file(path)
    stat = path.stat()
    meta_path.write_text(json.dumps({"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}))
    print(f"made {path} ({stat.st_size / MiB:.0f} MiB) in {made:.1f} s", flush=True)
    return path, digest


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command() -> list[str]:
    script = Path(sys.executable).with_name("rushes-server")
    if script.is_file():
        return [str(script), "serve"]
    return [sys.executable, "-m", "service.cli", "serve"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextmanager
def run_server(
    data_dir: Path, extra_env: dict[str, str] | None = None, startup_timeout: float = 60.0
) -> Iterator[Server]:
    port = free_port()
    env = os.environ | {
        "RUSHES_DATA_DIR": str(data_dir),
        "RUSHES_SERVER__PORT": str(port),
        "RUSHES_SERVER__HOST": "127.0.0.1",
        "RUSHES_LOG__LEVEL": "WARNING",
        # The embedded worker (torch, polling the queue) is no part of an upload, and its RSS
        # would be counted in the server's process tree.
        "RUSHES_WORKER__EMBEDDED": "false",
        **(extra_env or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir.parent
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {startup_timeout:.0f} s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class RssSampler(threading.Thread):
    """Samples a process tree's resident set size every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def rss(self) -> int:
        total = 0
        for proc in [self.process, *self.process.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                sample = (time.perf_counter(), self.rss())
            except psutil.NoSuchProcess:
                return
            with self._lock:
                self.samples.append(sample)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def window(self, start: float, end: float) -> list[int]:
        with self._lock:
            return [rss for t, rss in self.samples if start <= t <= end]

    def peak(self, start: float, end: float) -> int:
        return max(self.window(start, end), default=0)

    def settle(self, seconds: float = 1.0) -> int:
        """The median RSS over the next ``seconds``."""
        start = time.perf_counter()
        time.sleep(seconds)
        values = self.window(start, time.perf_counter())
        return int(statistics.median(values)) if values else self.rss()

    def loop_cpu_seconds(self) -> float:
        """CPU time of the server's main thread, which runs uvicorn's event loop."""
        try:
            threads = self.process.threads()
        except psutil.NoSuchProcess:
            return 0.0
        return float(sum(t.user_time + t.system_time for t in threads if t.id == self.process.pid))

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total


# --------------------------------------------------------------------------- client


def sign_up(base_url: str) -> dict[str, str]:
    """A new tenant's API-key header."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post(
            "/v1/auth/signup", json={"email": email, "password": PASSWORD, "tenant_name": "Bench"}
        )
        response.raise_for_status()
        key = client.post("/v1/api-keys", json={"name": "bench"})
        key.raise_for_status()
    return {"Authorization": f"Bearer {key.json()['key']}"}


@dataclass
class UploadTiming:
    create_s: float
    parts_s: float
    complete_s: float
    part_count: int
    part_size: int
    part_latencies: list[float]
    parts_window: tuple[float, float]
    complete_window: tuple[float, float]
    server_cpu_parts_s: float
    server_loop_cpu_parts_s: float
    server_cpu_complete_s: float
    client_cpu_parts_s: float
    asset: dict[str, Any]

    @property
    def total_s(self) -> float:
        return self.parts_s + self.complete_s


def client_cpu() -> float:
    times = os.times()
    return times.user + times.system


def upload(
    client: httpx.Client,
    path: Path,
    sha256: str,
    parallel: int,
    part_size: int | None,
    sampler: RssSampler,
) -> UploadTiming:
    size = path.stat().st_size
    body: dict[str, Any] = {
        "filename": path.name,
        "size": size,
        "sha256": sha256,
        "content_type": "video/quicktime",
        "rights": {"kind": "owned"},
    }
    if part_size is not None:
        body["part_size"] = part_size
    started = time.perf_counter()
    created = client.post("/v1/uploads", json=body)
    if created.status_code != 201:
        raise RuntimeError(f"create upload: {created.status_code} {created.text}")
    session = created.json()
    create_s = time.perf_counter() - started
    upload_id, count, psize = session["id"], session["part_count"], session["part_size"]

    fd = os.open(path, os.O_RDONLY)
    latencies: list[float] = [0.0] * count

    def send(number: int) -> None:
        offset = (number - 1) * psize
        data = os.pread(fd, min(psize, size - offset), offset)
        t0 = time.perf_counter()
        response = client.put(f"/v1/uploads/{upload_id}/parts/{number}", content=data)
        latencies[number - 1] = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"part {number}: {response.status_code} {response.text}")

    try:
        cpu0, loop0, client0 = sampler.cpu_seconds(), sampler.loop_cpu_seconds(), client_cpu()
        parts_start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="part") as pool:
            for future in [pool.submit(send, n) for n in range(1, count + 1)]:
                future.result()
        parts_end = time.perf_counter()
        cpu1, loop1, client1 = sampler.cpu_seconds(), sampler.loop_cpu_seconds(), client_cpu()
    finally:
        os.close(fd)

    done = client.post(f"/v1/uploads/{upload_id}/complete")
    complete_end = time.perf_counter()
    cpu2 = sampler.cpu_seconds()
    if done.status_code != 201:
        raise RuntimeError(f"complete: {done.status_code} {done.text}")
    asset = done.json()
    if asset["size"] != size or asset["sha256"] != sha256:
        raise RuntimeError(f"asset does not match the source: {asset}")
    return UploadTiming(
        create_s=create_s,
        parts_s=parts_end - parts_start,
        complete_s=complete_end - parts_end,
        part_count=count,
        part_size=psize,
        part_latencies=latencies,
        parts_window=(parts_start, parts_end),
        complete_window=(parts_end, complete_end),
        server_cpu_parts_s=cpu1 - cpu0,
        server_loop_cpu_parts_s=loop1 - loop0,
        server_cpu_complete_s=cpu2 - cpu1,
        client_cpu_parts_s=client1 - client0,
        asset=asset,
    )


def plain_copy(src: Path, dest: Path) -> float:
    os.sync()
    started = time.perf_counter()
    shutil.copyfile(src, dest)
    elapsed = time.perf_counter() - started
    dest.unlink()
    return elapsed


# --------------------------------------------------------------------------- report


def machine_description(path: Path) -> dict[str, str]:
    mem = psutil.virtual_memory().total
    device, fstype = "?", "?"
    best = ""
    for part in psutil.disk_partitions(all=False):
        if str(path).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
            best, device, fstype = part.mountpoint, part.device, part.fstype
    disk = f"{device} ({fstype})"
    name = Path(device).name
    rotational = Path(f"/sys/block/{name}/queue/rotational")
    if rotational.is_file():
        flag = rotational.read_text().strip()
        # Virtual block devices (virtio "vd*") report 1 whatever backs them.
        kind = (
            "virtio block device, backing store unknown"
            if name.startswith("vd")
            else ("rotational" if flag == "1" else "non-rotational (SSD/NVMe)")
        )
        disk += f", {kind}, rotational flag {flag}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "CPU": f"{os.cpu_count()} cores (nproc), {cpu}",
        "RAM": f"{mem / GiB:.1f} GiB",
        "Disk": disk,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "httpx / psutil": f"{httpx.__version__} / {psutil.__version__}",
    }


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "service"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        return rev + (" (service/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def mibps(size: int, seconds: float) -> float:
    return size / MiB / seconds if seconds > 0 else float("inf")


@dataclass
class Results:
    size: int
    parallel: int
    copies: list[float] = field(default_factory=list)
    uploads: list[UploadTiming] = field(default_factory=list)
    server_env: dict[str, str] = field(default_factory=dict)
    startup_rss: int = 0
    warmup_parts: int = 0
    baseline_rss: int = 0
    start_rss: list[int] = field(default_factory=list)
    peak_parts: list[int] = field(default_factory=list)
    peak_complete: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)


def render(results: Results, source: Path, command: str, machine: dict[str, str]) -> str:
    size = results.size
    median = statistics.median
    copy_s = min(results.copies)
    parts_s = median([u.parts_s for u in results.uploads])
    complete_s = median([u.complete_s for u in results.uploads])
    total_s = median([u.total_s for u in results.uploads])
    growth_parts = (max(results.peak_parts) - results.baseline_rss) / MiB
    growth_complete = (max(results.peak_complete) - results.baseline_rss) / MiB
    growth = max(growth_parts, growth_complete)
    own_parts = max(p - r for p, r in zip(results.peak_parts, results.start_rss, strict=True)) / MiB
    own_complete = max(c - p for c, p in zip(results.peak_complete, results.peak_parts, strict=True)) / MiB
    absolute_peak = max(*results.peak_parts, *results.peak_complete) / MiB
    ratio = mibps(size, total_s) / mibps(size, copy_s)
    ratio_parts = mibps(size, parts_s) / mibps(size, copy_s)
    first = results.uploads[0]
    rounds = len(results.uploads)
    gib = size / GiB
    cpu_parts = median([u.server_cpu_parts_s for u in results.uploads]) / gib
    cpu_loop = median([u.server_loop_cpu_parts_s for u in results.uploads]) / gib
    cpu_client = median([u.client_cpu_parts_s for u in results.uploads]) / gib
    cpu_complete = median([u.server_cpu_complete_s for u in results.uploads])
    lat = sorted(x for u in results.uploads for x in u.part_latencies)
    env_note = (
        ", extra environment " + " ".join(f"`{k}={v}`" for k, v in results.server_env.items())
        if results.server_env
        else ""
    )

    def ok(passed: bool) -> str:
        return "**met**" if passed else "**NOT met**"

    lines = [
        "# Upload benchmark",
        "",
        f"Generated by `bench/upload.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"server at git {git_revision()}.",
        "",
        "```",
        command,
        "```",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        f"- 1-minute load average at each round's start: {', '.join(f'{x:.1f}' for x in results.load)} "
        f"(above {os.cpu_count()} means other jobs shared the CPUs and the wall-clock figures are "
        "pessimistic; the CPU-seconds figures are steadier)",
        "",
        "## Method",
        "",
        f"- Source: `{source.name}`, {size:,} bytes ({size / GiB:.2f} GiB), ProRes 4444 XQ 1920x1080 noise "
        f"in MOV; server data folder and copy destination on the same filesystem as the source.",
        f"- Server: `rushes-server serve` (uvicorn, one process), local storage, SQLite, log level WARNING, "
        f"on 127.0.0.1{env_note}. Client: httpx in this process, {results.parallel} parts in flight, "
        f"{first.part_count} parts of {first.part_size / MiB:g} MiB, each read with `pread` at its offset.",
        f"- {rounds} round(s), each: `os.sync()`, plain copy (`shutil.copyfile`, i.e. `sendfile`) of the "
        "source to the same disk, `os.sync()`, upload (create, all parts, complete), asset deleted; "
        "one more copy after the last round. Figures are medians over rounds; the copy baseline is the "
        "*fastest* copy, so the ratio is the strict one.",
        "- Page cache: not dropped. The source is in the page cache for every upload (each follows a "
        "copy of it); only the first copy of a run may read it from disk. Writes go to the page cache "
        "and neither side fsyncs, so both figures are memory-bandwidth/CPU bound, not disk bound.",
        "- RSS: server process tree sampled every 50 ms; baseline is the median over 1 s after a warm-up "
        f"upload ({results.warmup_parts} parts, completed, so PyAV and its decoders are loaded). Growth is "
        "the peak over that baseline, across all rounds.",
        "",
        "## Results",
        "",
        "| metric | value |",
        "|---|---|",
        f"| plain copy, fastest of {len(results.copies)} "
        f"| {copy_s:.2f} s, {mibps(size, copy_s):,.0f} MiB/s |",
        f"| plain copy, all | {', '.join(f'{c:.2f} s' for c in results.copies)} |",
        f"| upload parts only ({results.parallel} in flight) "
        f"| {parts_s:.2f} s, {mibps(size, parts_s):,.0f} MiB/s |",
        f"| complete (re-read + sha256, probe, poster) | {complete_s:.2f} s |",
        f"| end to end (parts + complete) | {total_s:.2f} s, **{mibps(size, total_s):,.0f} MiB/s** |",
        f"| ratio end to end / copy | **{ratio:.2f}** |",
        f"| ratio parts only / copy | {ratio_parts:.2f} |",
        f"| part latency min / median / max | {lat[0]:.2f} / {median(lat):.2f} / {lat[-1]:.2f} s |",
        f"| server CPU, parts | {cpu_parts:.2f} CPU-s per GiB ({cpu_loop:.2f} in the event-loop thread, "
        f"{cpu_parts - cpu_loop:.2f} in worker threads) |",
        f"| server CPU, complete | {cpu_complete:.2f} CPU-s (mostly a fixed cost: probe decodes a sample of "
        "frames; the sha256 re-read scales with size) |",
        f"| client CPU, parts (httpx, this process) | {cpu_client:.2f} CPU-s per GiB |",
        f"| server RSS after start-up / after warm-up (baseline) "
        f"| {results.startup_rss / MiB:.0f} / {results.baseline_rss / MiB:.0f} MiB |",
        f"| server peak RSS, absolute | {absolute_peak:.0f} MiB |",
        f"| server peak RSS growth over baseline, parts / complete "
        f"| {growth_parts:.1f} / **{growth_complete:.1f} MiB** |",
        f"| largest rise within one phase: parts over the RSS at its start / complete over the parts peak "
        f"| {own_parts:.1f} / {own_complete:.1f} MiB |",
        "",
        "Per round (RSS absolute, MiB):",
        "",
        "| round | copy before | parts | complete | end to end | RSS at start | parts peak | complete peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, u in enumerate(results.uploads):
        lines.append(
            f"| {index + 1} | {mibps(size, results.copies[index]):,.0f} MiB/s "
            f"| {u.parts_s:.2f} s ({mibps(size, u.parts_s):,.0f} MiB/s) | {u.complete_s:.2f} s "
            f"| {u.total_s:.2f} s ({mibps(size, u.total_s):,.0f} MiB/s) "
            f"| {results.start_rss[index] / MiB:.0f} | {results.peak_parts[index] / MiB:.0f} "
            f"| {results.peak_complete[index] / MiB:.0f} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        f"- Server RSS growth under {RSS_TARGET_MIB} MiB: {growth:.1f} MiB, {ok(growth < RSS_TARGET_MIB)}.",
        f"- Throughput at least {RATIO_TARGET:g} x the plain copy: end to end {ratio:.2f}, "
        f"{ok(ratio >= RATIO_TARGET)}; parts only {ratio_parts:.2f}, {ok(ratio_parts >= RATIO_TARGET)}.",
        "",
    ]
    return "\n".join(lines)


def write_trace(path: Path, sampler: RssSampler, results: Results) -> None:
    """RSS samples as CSV (seconds, MiB, phase), for plotting or finding where the peak is."""
    start = sampler.samples[0][0] if sampler.samples else 0.0
    windows = [
        (name, window, index)
        for index, u in enumerate(results.uploads, 1)
        for name, window in (("parts", u.parts_window), ("complete", u.complete_window))
    ]
    rows = ["seconds,rss_mib,phase"]
    for t, rss in sampler.samples:
        phase = next((f"{name}{index}" for name, (a, b), index in windows if a <= t <= b), "")
        rows.append(f"{t - start:.3f},{rss / MiB:.1f},{phase}")
    path.write_text("\n".join(rows) + "\n")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.upload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=1.0, help="source file size (default 1)")
    parser.add_argument("--parallel", type=int, default=4, help="parts in flight (default 4)")
    parser.add_argument(
        "--part-size-mib", type=float, default=None, help="part size; default: the server's (16 MiB)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="copy+upload rounds (default 3)")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rushes-bench",
        help="cache and scratch folder; the server's data folder goes here too (default /tmp/rushes-bench)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=REPO_ROOT / "docs" / "bench-upload.md",
        help="markdown report (default docs/bench-upload.md); '-' for none",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the server, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    parser.add_argument("--rss-trace", type=Path, default=None, help="write the RSS samples here as CSV")
    parser.add_argument("--keep", action="store_true", help="keep the server's data folder and log")
    args = parser.parse_args(argv)
    if args.size_gib < 1 / 64 or args.parallel < 1 or args.rounds < 1:
        parser.error("--size-gib must be at least 1/64, --parallel and --rounds at least 1")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    return args


def run(args: argparse.Namespace, work_dir: Path) -> tuple[Results, Path]:
    source, digest = cached_media(work_dir / "cache", args.size_gib)
    warmup, warmup_digest = cached_media(work_dir / "cache", 1 / 32)  # 32 MiB: a few parts
    size = source.stat().st_size
    part_size = int(args.part_size_mib * MiB) if args.part_size_mib else None
    free = shutil.disk_usage(work_dir).free
    if free < 3 * size:
        raise SystemExit(f"need {3 * size / GiB:.1f} GiB free under {work_dir}, have {free / GiB:.1f}")
    server_env = dict(item.split("=", 1) for item in args.server_env)
    results = Results(size=size, parallel=args.parallel, server_env=server_env)
    data_dir = Path(tempfile.mkdtemp(prefix="server-", dir=work_dir))
    try:
        with run_server(data_dir, server_env) as server:
            sampler = RssSampler(server.process.pid)
            sampler.start()
            results.startup_rss = sampler.settle(0.5)
            headers = sign_up(server.base_url)
            limits = httpx.Limits(max_connections=args.parallel, max_keepalive_connections=args.parallel)
            with httpx.Client(
                base_url=server.base_url, headers=headers, timeout=600, limits=limits
            ) as client:
                warm = upload(client, warmup, warmup_digest, args.parallel, part_size, sampler)
                results.warmup_parts = warm.part_count
                client.delete(f"/v1/assets/{warm.asset['id']}").raise_for_status()
                results.baseline_rss = sampler.settle()
                print(
                    f"server RSS after start-up {results.startup_rss / MiB:.0f} MiB, "
                    f"after warm-up (baseline) {results.baseline_rss / MiB:.0f} MiB",
                    flush=True,
                )
                for round_number in range(1, args.rounds + 1):
                    results.load.append(os.getloadavg()[0])
                    results.copies.append(plain_copy(source, work_dir / "copy.bin"))
                    os.sync()
                    results.start_rss.append(sampler.rss())
                    timing = upload(client, source, digest, args.parallel, part_size, sampler)
                    results.uploads.append(timing)
                    results.peak_parts.append(sampler.peak(*timing.parts_window))
                    results.peak_complete.append(sampler.peak(*timing.complete_window))
                    client.delete(f"/v1/assets/{timing.asset['id']}").raise_for_status()
                    peak = max(results.peak_parts[-1], results.peak_complete[-1]) - results.baseline_rss
                    print(
                        f"round {round_number}: copy {mibps(size, results.copies[-1]):,.0f} MiB/s, "
                        f"parts {timing.parts_s:.2f} s, complete {timing.complete_s:.2f} s, "
                        f"end to end {mibps(size, timing.total_s):,.0f} MiB/s, "
                        f"peak RSS +{peak / MiB:.1f} MiB",
                        flush=True,
                    )
                results.copies.append(plain_copy(source, work_dir / "copy.bin"))
            sampler.stop()
            if args.rss_trace:
                write_trace(args.rss_trace, sampler, results)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
            data_dir.with_name(f"{data_dir.name}.log").unlink(missing_ok=True)
    return results, source


def write_report(path: Path, report: str) -> None:
    """Write ``report``, keeping any hand-written notes after ``NOTES_MARKER`` in the old file."""
    notes = ""
    if path.is_file():
        old = path.read_text()
        if NOTES_MARKER in old:
            notes = old[old.index(NOTES_MARKER) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report + ("\n" + notes if notes else ""))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir: Path = args.work_dir.resolve()
    results, source = run(args, work_dir)
    command = shlex.join([Path(sys.executable).as_posix(), "-m", "bench.upload", *sys.argv[1:]])
    report = render(results, source, command, machine_description(work_dir))
    print(report)
    if str(args.output) != "-":
        write_report(args.output, report)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
