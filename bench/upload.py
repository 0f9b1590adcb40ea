"""Upload throughput and API cost: a big file through Rushes on loopback, local and S3 backends.

One run measures, side by side:

- **local backend**: the real server (``rushes-server serve``) as a subprocess, its data
  folder on the same disk as the source file; a >= 1 GiB ProRes 4444 XQ file uploaded
  through the API (``PUT /v1/uploads/{id}/parts/{n}``, N parts in flight), then completed
  (the server re-reads the object for its sha256, probes it with PyAV and makes a poster).
  Each round is timed against a plain ``shutil.copyfile`` of the same file on the same disk,
  and a thread samples the server's RSS (children included) every 50 ms.
- **S3 backend** against moto on loopback (``python -m moto.server``), the same file, part
  size and parallelism in three ways: *direct PUTs* (the baseline: the bench itself creates
  a multipart upload, PUTs each part to a URL it signed, completes), *Rushes presigned*
  (a session with ``direct: true``: part URLs from the API, parts PUT straight to moto,
  complete answers 202; a ``python -m worker --roles ingest`` subprocess then reads the file
  and makes the asset) and the *API path* (the same session flow as the local backend, the
  API writing each part to moto).

For every Rushes variant the serve process's own CPU time (user + system, children
excluded: with the embedded worker off it has none) is read before and after the measured
phase and reported per GiB.

    .venv/bin/python -m bench.upload                    # 1 GiB, 4 parts in flight, 3 + 3 rounds
    .venv/bin/python -m bench.upload --size-gib 4 --parallel 8 --part-size-mib 32
    .venv/bin/python -m bench.upload --backends s3 --s3-rounds 5

The source file is generated once and cached under ``--work-dir`` (default
/tmp/rushes-bench): a handful of noise frames are encoded and their packets repeated,
which gives a valid, probe-clean file of any size in a second or two.

Page cache: nothing is dropped. The source file is hot once it has been read (it is
generated, hashed or copied before every upload; only the first copy of a run may read
it from disk); destination writes land in the page cache and are written back by the
kernel afterwards. Neither the copy nor the server fsyncs. ``os.sync()`` runs before each
measured phase so that one phase's writeback is not billed to the next. moto keeps parts
and objects in spooled temporary files (memory up to a few MiB, then /tmp), so on S3 the
bytes also pass through the page cache, not through a network or a disk.
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import psutil

from core.settings import UploadSettings
from core.storage.s3 import S3Storage

MiB = 1 << 20
GiB = 1 << 30
REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
RSS_TARGET_MIB = 100
RATIO_TARGET = 0.5
PRESIGNED_RATIO_TARGET = 0.8
API_CPU_TARGET = 0.05  # CPU-s per GiB on the presigned path
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
    #: The environment it runs under: a worker started with it reads the same settings.
    env: dict[str, str]


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_up(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 60.0) -> None:
    """Until ``url`` answers 200; the process's log tail if it exits or the time runs out."""

    def tail() -> str:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])

    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} not ready after {timeout:.0f} s:\n{tail()}")
        time.sleep(0.1)


@contextmanager
def logged_process(
    command: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running with its output in ``log_path``; stopped on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=log_path.parent
        )
    try:
        yield process
    finally:
        stop_process(process)


@contextmanager
def run_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    port = free_port()
    env = os.environ | {
        "RUSHES_DATA_DIR": str(data_dir),
        "RUSHES_SERVER__PORT": str(port),
        "RUSHES_SERVER__HOST": "127.0.0.1",
        "RUSHES_LOG__LEVEL": "WARNING",
        # The embedded worker (torch, polling the queue) is no part of an upload, and its RSS
        # and CPU would be counted in the server's process tree. The S3 phase runs its own
        # ingest-only worker.
        "RUSHES_WORKER__EMBEDDED": "false",
        **(extra_env or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}.log"
    with logged_process(server_command(), log_path, env) as process:
        server = Server(process, f"http://127.0.0.1:{port}", log_path, env)
        wait_until_up(process, f"{server.base_url}/readyz", log_path)
        yield server


@contextmanager
def run_moto(log_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """moto's standalone S3 server on loopback, as tests/conftest.py's ``s3_server`` starts it."""
    port = free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with logged_process(command, log_path) as process:
        wait_until_up(process, f"http://127.0.0.1:{port}/moto-api/", log_path)
        yield f"127.0.0.1:{port}", process


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """The server's settings for moto (core/settings.py ``StorageSettings``)."""
    return {
        "RUSHES_STORAGE__BACKEND": "s3",
        "RUSHES_STORAGE__S3_ENDPOINT": endpoint,
        "RUSHES_STORAGE__S3_BUCKET": bucket,
        "RUSHES_STORAGE__S3_ACCESS_KEY": "testing",
        "RUSHES_STORAGE__S3_SECRET_KEY": "testing",
        "RUSHES_STORAGE__S3_SECURE": "false",
        "RUSHES_STORAGE__S3_REGION": "us-east-1",
        "RUSHES_STORAGE__S3_CREATE_BUCKET": "true",
    }


@contextmanager
def run_ingest_worker(server: Server) -> Iterator[subprocess.Popen[bytes]]:
    """A worker that only checks direct uploads, reading the server's settings."""
    command = [sys.executable, "-m", "worker", "--device", "cpu", "--roles", "ingest"]
    with logged_process(command, server.log_path.with_suffix(".worker.log"), server.env) as process:
        yield process


def process_cpu(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` itself (its children not counted)."""
    times = process.cpu_times()
    return float(times.user + times.system)


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
        try:
            return process_cpu(self.process)
        except psutil.NoSuchProcess:
            return 0.0


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
    """One upload: the parts phase (part URLs and PUTs to storage, for a direct session), then
    complete. For a direct session ``asset`` is None: complete answered 202 and the ingest
    role makes it (``IngestTiming``)."""

    upload_id: str
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
    asset: dict[str, Any] | None

    @property
    def total_s(self) -> float:
        return self.parts_s + self.complete_s

    @property
    def create_to_complete_s(self) -> float:
        return self.create_s + self.total_s

    @property
    def server_cpu_s(self) -> float:
        """The API's CPU over the measured phase: parts (or part URLs) and complete."""
        return self.server_cpu_parts_s + self.server_cpu_complete_s


def client_cpu() -> float:
    times = os.times()
    return times.user + times.system


PutPart = Callable[[int, bytes], None]


def send_parts(path: Path, part_size: int, parallel: int, put: PutPart) -> list[float]:
    """Every part of ``path``, ``parallel`` in flight, each read with ``pread`` at its offset
    and handed to ``put(number, data)``; each part's latency."""
    size = path.stat().st_size
    count = max(1, math.ceil(size / part_size))
    latencies = [0.0] * count
    fd = os.open(path, os.O_RDONLY)

    def send(number: int) -> None:
        offset = (number - 1) * part_size
        data = os.pread(fd, min(part_size, size - offset), offset)
        started = time.perf_counter()
        put(number, data)
        latencies[number - 1] = time.perf_counter() - started

    try:
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="part") as pool:
            for future in [pool.submit(send, n) for n in range(1, count + 1)]:
                future.result()
    finally:
        os.close(fd)
    return latencies


def put_to_url(storage_http: httpx.Client, url: str, data: bytes) -> str:
    """PUT one part to a signed URL, with no credentials of ours; storage's ETag."""
    response = storage_http.put(url, content=data)
    if response.status_code != 200:
        raise RuntimeError(f"PUT to storage: {response.status_code} {response.text[:500]}")
    return response.headers["ETag"].strip('"')


def part_urls(client: httpx.Client, upload_id: str, count: int) -> dict[int, str]:
    """The signed URL of every part, asked for in the API's batches of at most 100."""
    urls: dict[int, str] = {}
    for first in range(1, count + 1, 100):
        numbers = list(range(first, min(first + 100, count + 1)))
        signed = client.post(f"/v1/uploads/{upload_id}/part-urls", json={"part_numbers": numbers})
        if signed.status_code != 200:
            raise RuntimeError(f"part-urls: {signed.status_code} {signed.text}")
        urls.update((p["part_number"], p["url"]) for p in signed.json()["parts"])
    return urls


def upload(
    client: httpx.Client,
    path: Path,
    sha256: str,
    parallel: int,
    part_size: int | None,
    sampler: RssSampler,
    storage_http: httpx.Client | None = None,
) -> UploadTiming:
    """Create, send every part, complete. With ``storage_http`` the session asks for
    ``direct: true`` and the parts go to storage through signed URLs (complete: 202);
    otherwise through the API (complete: 201 with the asset)."""
    direct = storage_http is not None
    size = path.stat().st_size
    body: dict[str, Any] = {
        "filename": path.name,
        "size": size,
        "sha256": sha256,
        "content_type": "video/quicktime",
        "rights": {"kind": "owned"},
        "direct": direct,
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
    if session["transfer"] != ("direct" if direct else "api"):
        raise RuntimeError(f"asked for direct={direct}, the server chose transfer {session['transfer']!r}")

    def through_api(number: int, data: bytes) -> None:
        response = client.put(f"/v1/uploads/{upload_id}/parts/{number}", content=data)
        if response.status_code != 200:
            raise RuntimeError(f"part {number}: {response.status_code} {response.text}")

    cpu0, loop0, client0 = sampler.cpu_seconds(), sampler.loop_cpu_seconds(), client_cpu()
    parts_start = time.perf_counter()
    if storage_http is None:
        latencies = send_parts(path, psize, parallel, through_api)
    else:
        urls = part_urls(client, upload_id, count)

        def to_storage(number: int, data: bytes) -> None:
            put_to_url(storage_http, urls[number], data)

        latencies = send_parts(path, psize, parallel, to_storage)
    parts_end = time.perf_counter()
    cpu1, loop1, client1 = sampler.cpu_seconds(), sampler.loop_cpu_seconds(), client_cpu()

    done = client.post(f"/v1/uploads/{upload_id}/complete")
    complete_end = time.perf_counter()
    cpu2 = sampler.cpu_seconds()
    if done.status_code != (202 if direct else 201):
        raise RuntimeError(f"complete: {done.status_code} {done.text}")
    asset = None if direct else done.json()
    if asset is not None and (asset["size"] != size or asset["sha256"] != sha256):
        raise RuntimeError(f"asset does not match the source: {asset}")
    return UploadTiming(
        upload_id=upload_id,
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


@dataclass
class IngestTiming:
    """From complete's 202 until the upload is ``completed`` (the ingest role made the asset)."""

    seconds: float
    worker_cpu_s: float
    asset: dict[str, Any]


def wait_for_asset(
    client: httpx.Client, upload_id: str, worker: psutil.Process, timeout: float = 600.0
) -> IngestTiming:
    """Poll the session (every 50 ms) until the ingest role has checked it."""
    cpu0, started = process_cpu(worker), time.perf_counter()
    deadline = started + timeout
    while True:
        session = client.get(f"/v1/uploads/{upload_id}")
        session.raise_for_status()
        state = session.json()
        if state["status"] == "completed":
            break
        if state["status"] == "failed" or time.perf_counter() > deadline:
            raise RuntimeError(f"upload {upload_id} not completed: {state['status']} {state.get('failure')}")
        time.sleep(0.05)
    seconds, worker_cpu = time.perf_counter() - started, process_cpu(worker) - cpu0
    asset = client.get(f"/v1/assets/{state['asset_id']}")
    asset.raise_for_status()
    return IngestTiming(seconds, worker_cpu, asset.json())


@dataclass
class DirectTiming:
    """The baseline: the bench's own multipart upload to storage, no Rushes in the path."""

    create_s: float
    parts_s: float
    complete_s: float
    client_cpu_parts_s: float

    @property
    def create_to_complete_s(self) -> float:
        return self.create_s + self.parts_s + self.complete_s


def direct_put(
    storage: S3Storage, storage_http: httpx.Client, path: Path, part_size: int, parallel: int
) -> DirectTiming:
    """Create a multipart upload, PUT every part to a URL signed here, complete; the object is
    deleted afterwards. The same signing, client and part reader as the presigned variant."""
    key = f"bench/direct-{uuid.uuid4().hex}"
    size = path.stat().st_size
    count = max(1, math.ceil(size / part_size))
    started = time.perf_counter()
    upload_id = storage.create_multipart(key)
    parts_start, client0 = time.perf_counter(), client_cpu()
    # Signing is local arithmetic, as the API's part-urls is, so it counts as transfer time.
    urls = {
        n: storage.presigned_part(
            key, upload_id, n, min(part_size, size - (n - 1) * part_size), timedelta(hours=1)
        )
        for n in range(1, count + 1)
    }
    etags: dict[int, str] = {}

    def to_storage(number: int, data: bytes) -> None:
        etags[number] = put_to_url(storage_http, urls[number], data)

    send_parts(path, part_size, parallel, to_storage)
    parts_end, client1 = time.perf_counter(), client_cpu()
    storage.complete_multipart(key, upload_id, list(etags.items()))
    complete_end = time.perf_counter()
    storage.delete(key)
    return DirectTiming(
        parts_start - started, parts_end - parts_start, complete_end - parts_end, client1 - client0
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
        "httpx / psutil / moto": f"{httpx.__version__} / {psutil.__version__} / {version('moto')}",
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
class LocalResults:
    size: int
    parallel: int
    copies: list[float] = field(default_factory=list)
    uploads: list[UploadTiming] = field(default_factory=list)
    startup_rss: int = 0
    warmup_parts: int = 0
    baseline_rss: int = 0
    start_rss: list[int] = field(default_factory=list)
    peak_parts: list[int] = field(default_factory=list)
    peak_complete: list[int] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """End to end against the fastest copy."""
        return min(self.copies) / statistics.median([u.total_s for u in self.uploads])

    @property
    def api_cpu_per_gib(self) -> float:
        return statistics.median([u.server_cpu_s for u in self.uploads]) / (self.size / GiB)


S3_PHASES = ("direct", "presigned", "ingest", "api")
#: The variants of an S3 round, in the order of a round that starts with the first.
S3_VARIANTS = ("direct", "presigned", "api")
#: How long the API's idle CPU is measured before the S3 rounds.
IDLE_SECONDS = 5.0


@dataclass
class S3Results:
    size: int
    parallel: int
    part_size: int = 0
    direct: list[DirectTiming] = field(default_factory=list)
    presigned: list[UploadTiming] = field(default_factory=list)
    ingests: list[IngestTiming] = field(default_factory=list)
    api: list[UploadTiming] = field(default_factory=list)
    #: moto's CPU seconds per round, by phase: direct, presigned, ingest, api.
    storage_cpu: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in S3_PHASES})
    load: list[float] = field(default_factory=list)
    #: The variant each round started with.
    first: list[str] = field(default_factory=list)
    #: The serve process's CPU seconds per second while nothing is asked of it.
    api_idle_cpu_per_s: float = 0.0

    @property
    def direct_s(self) -> float:
        return statistics.median([d.create_to_complete_s for d in self.direct])

    @property
    def presigned_s(self) -> float:
        return statistics.median([u.create_to_complete_s for u in self.presigned])

    @property
    def ratio(self) -> float:
        """Presigned (create to 202) throughput over the direct PUTs'."""
        return self.direct_s / self.presigned_s

    def api_cpu_per_gib(self, uploads: list[UploadTiming]) -> float:
        return statistics.median([u.server_cpu_s for u in uploads]) / (self.size / GiB)

    @property
    def net_api_cpu_per_gib(self) -> float:
        """The presigned path's API CPU less what the process burns idle over as long."""
        idle = self.api_idle_cpu_per_s * statistics.median([u.total_s for u in self.presigned])
        return self.api_cpu_per_gib(self.presigned) - idle / (self.size / GiB)


@contextmanager
def cpu_into(process: psutil.Process, into: list[float]) -> Iterator[None]:
    """Appends the CPU seconds ``process`` spends inside the block."""
    before = process_cpu(process)
    yield
    into.append(process_cpu(process) - before)


def ok(passed: bool) -> str:
    return "**met**" if passed else "**NOT met**"


def render(
    local: LocalResults | None,
    s3: S3Results | None,
    source: Path,
    server_env: dict[str, str],
    command: str,
    machine: dict[str, str],
) -> str:
    size = source.stat().st_size
    load = [*(local.load if local else []), *(s3.load if s3 else [])]
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
        f"- 1-minute load average at each round's start (local rounds, then S3 rounds): "
        f"{', '.join(f'{x:.1f}' for x in load)} "
        f"(above {os.cpu_count()} means other jobs shared the CPUs and the wall-clock figures are "
        "pessimistic; the CPU-seconds figures are steadier)",
        f"- Source: `{source.name}`, {size:,} bytes ({size / GiB:.2f} GiB), ProRes 4444 XQ 1920x1080 "
        "noise in MOV, the same file for every variant.",
        "- Server: `rushes-server serve` (uvicorn, one process), SQLite, log level WARNING, embedded "
        "worker off, on 127.0.0.1"
        + (
            ", extra environment " + " ".join(f"`{k}={v}`" for k, v in server_env.items())
            if server_env
            else ""
        )
        + ". API CPU is the serve process's own user + system time over the measured phase (it has "
        "no children with the embedded worker off).",
        "",
        "## Summary",
        "",
        "| backend | variant | seconds | MiB/s | vs baseline | API CPU-s per GiB |",
        "|---|---|---|---|---|---|",
    ]
    if local:
        copy_s, total_s = min(local.copies), statistics.median([u.total_s for u in local.uploads])
        lines += [
            f"| local | plain copy (baseline, fastest) | {copy_s:.2f} "
            f"| {mibps(size, copy_s):,.0f} | 1.00 | - |",
            f"| local | Rushes through the API, parts + complete (201) | {total_s:.2f} "
            f"| {mibps(size, total_s):,.0f} | **{local.ratio:.2f}** | {local.api_cpu_per_gib:.2f} |",
        ]
    if s3:
        api_s = statistics.median([u.create_to_complete_s for u in s3.api])
        to_asset = statistics.median(
            [u.create_to_complete_s + i.seconds for u, i in zip(s3.presigned, s3.ingests, strict=True)]
        )
        lines += [
            f"| S3 (moto) | direct PUTs (baseline), create to complete | {s3.direct_s:.2f} "
            f"| {mibps(size, s3.direct_s):,.0f} | 1.00 | - |",
            f"| S3 (moto) | Rushes presigned, create to 202 | {s3.presigned_s:.2f} "
            f"| {mibps(size, s3.presigned_s):,.0f} | **{s3.ratio:.2f}** "
            f"| **{s3.api_cpu_per_gib(s3.presigned):.3f}** |",
            f"| S3 (moto) | Rushes presigned, create to asset made by the ingest role | {to_asset:.2f} "
            f"| {mibps(size, to_asset):,.0f} | {s3.direct_s / to_asset:.2f} "
            "| (as above: the API has no part in the check) |",
            f"| S3 (moto) | Rushes through the API (old path), create to 201 | {api_s:.2f} "
            f"| {mibps(size, api_s):,.0f} | {s3.direct_s / api_s:.2f} | {s3.api_cpu_per_gib(s3.api):.2f} |",
        ]
    lines += ["", "Targets:", ""]
    if local:
        lines.append(
            f"- Local backend at least {RATIO_TARGET:g} x a plain copy: {local.ratio:.2f}, "
            f"{ok(local.ratio >= RATIO_TARGET)}."
        )
    if s3:
        cpu = s3.api_cpu_per_gib(s3.presigned)
        lines += [
            f"- Presigned path at least {PRESIGNED_RATIO_TARGET:g} x the direct PUTs: {s3.ratio:.2f}, "
            f"{ok(s3.ratio >= PRESIGNED_RATIO_TARGET)}.",
            f"- API CPU on the presigned path under {API_CPU_TARGET:g} s per GiB: {cpu:.3f}, "
            f"{ok(cpu < API_CPU_TARGET)} ({s3.net_api_cpu_per_gib:.3f} net of the process's idle CPU "
            "over the same window; CPU times tick in 10 ms steps).",
        ]
    if local:
        lines += render_local(local)
    if s3:
        lines += render_s3(s3)
    return "\n".join(lines) + "\n"


def render_local(results: LocalResults) -> list[str]:
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
    ratio_parts = copy_s / parts_s
    first = results.uploads[0]
    rounds = len(results.uploads)
    gib = size / GiB
    cpu_parts = median([u.server_cpu_parts_s for u in results.uploads]) / gib
    cpu_loop = median([u.server_loop_cpu_parts_s for u in results.uploads]) / gib
    cpu_client = median([u.client_cpu_parts_s for u in results.uploads]) / gib
    cpu_complete = median([u.server_cpu_complete_s for u in results.uploads])
    lat = sorted(x for u in results.uploads for x in u.part_latencies)
    lines = [
        "",
        "## Local backend",
        "",
        "### Method",
        "",
        "- Server data folder and copy destination on the same filesystem as the source. Client: httpx "
        f"in this process, {results.parallel} parts in flight, {first.part_count} parts of "
        f"{first.part_size / MiB:g} MiB, each read with `pread` at its offset.",
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
        "### Results",
        "",
        "| metric | value |",
        "|---|---|",
        f"| plain copy, fastest of {len(results.copies)} "
        f"| {copy_s:.2f} s, {mibps(size, copy_s):,.0f} MiB/s |",
        f"| plain copy, all | {', '.join(f'{c:.2f} s' for c in results.copies)} |",
        f"| upload parts only ({results.parallel} in flight) "
        f"| {parts_s:.2f} s, {mibps(size, parts_s):,.0f} MiB/s |",
        f"| complete (re-read + sha256, probe, poster, fingerprints) | {complete_s:.2f} s |",
        f"| end to end (parts + complete) | {total_s:.2f} s, **{mibps(size, total_s):,.0f} MiB/s** |",
        f"| ratio end to end / copy | **{results.ratio:.2f}** |",
        f"| ratio parts only / copy | {ratio_parts:.2f} |",
        f"| part latency min / median / max | {lat[0]:.2f} / {median(lat):.2f} / {lat[-1]:.2f} s |",
        f"| API CPU, whole upload (parts + complete) | **{results.api_cpu_per_gib:.2f} CPU-s per GiB** |",
        f"| API CPU, parts | {cpu_parts:.2f} CPU-s per GiB ({cpu_loop:.2f} in the event-loop thread, "
        f"{cpu_parts - cpu_loop:.2f} in worker threads) |",
        f"| API CPU, complete | {cpu_complete:.2f} CPU-s (mostly a fixed cost per file: probe, poster and "
        "fingerprints decode samples of frames; the sha256 re-read scales with size) |",
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
        f"- Server RSS growth under {RSS_TARGET_MIB} MiB: {growth:.1f} MiB, {ok(growth < RSS_TARGET_MIB)}.",
        f"- Throughput at least {RATIO_TARGET:g} x the plain copy: end to end {results.ratio:.2f}, "
        f"{ok(results.ratio >= RATIO_TARGET)}; parts only {ratio_parts:.2f}, "
        f"{ok(ratio_parts >= RATIO_TARGET)}.",
    ]
    return lines


def render_s3(results: S3Results) -> list[str]:
    size, gib, median = results.size, results.size / GiB, statistics.median
    moto = {phase: median(values) / gib for phase, values in results.storage_cpu.items()}

    def row(name: str, uploads: list[UploadTiming], complete: str, phase: str) -> str:
        total = median([u.create_to_complete_s for u in uploads])
        return (
            f"| {name} | {median([u.create_s for u in uploads]):.2f} "
            f"| {median([u.parts_s for u in uploads]):.2f} "
            f"| {median([u.complete_s for u in uploads]):.2f} ({complete}) | **{total:.2f}** "
            f"| {mibps(size, total):,.0f} | {results.direct_s / total:.2f} "
            f"| {results.api_cpu_per_gib(uploads):.3f} | {moto[phase]:.2f} "
            f"| {median([u.client_cpu_parts_s for u in uploads]) / gib:.2f} |"
        )

    direct = results.direct
    ingest_s = median([i.seconds for i in results.ingests])
    worker_cpu = median([i.worker_cpu_s for i in results.ingests])
    urls_cpu = median([u.server_cpu_parts_s for u in results.presigned])
    complete_cpu = median([u.server_cpu_complete_s for u in results.presigned])
    idle, presigned_s = results.api_idle_cpu_per_s, results.presigned_s
    lines = [
        "",
        "## S3 backend (moto on loopback)",
        "",
        "### Method",
        "",
        "- Storage: `python -m moto.server -H 127.0.0.1 -p <free port>` (as tests/conftest.py's "
        "`s3_server`), one process; it keeps parts and objects in spooled temporary files (memory up "
        "to about 5 MiB, then /tmp), and CompleteMultipartUpload joins the parts in memory. The "
        "server runs with `RUSHES_STORAGE__BACKEND=s3` against it (`S3_SECURE=false`, "
        "`S3_REGION=us-east-1`), and a worker with only the ingest role "
        "(`python -m worker --device cpu --roles ingest`, the same settings) checks direct uploads; "
        "it looks for work every `uploads.verify_poll_seconds` (default 1 s).",
        f"- All variants: the same file, {results.part_size / MiB:g} MiB parts, {results.parallel} in "
        "flight, each read with `pread`; parts PUT to storage with one plain httpx client (no "
        "Authorization header), API calls with another.",
        "- *direct PUTs* (baseline): the bench creates the multipart upload with the server's own "
        "storage class (`core.storage.s3.S3Storage`, minio), signs every part URL locally, PUTs the "
        "parts, completes; no Rushes in the path. *Rushes presigned*: `POST /v1/uploads` with "
        "`direct: true`, `POST .../part-urls` for all parts, PUTs to moto, `POST .../complete` "
        "answering 202; then the session is polled every 50 ms until the ingest role has made the "
        "asset. *Through the API*: `direct: false`, `PUT /v1/uploads/{id}/parts/{n}` (the API "
        "hashes each part and sends it to moto with minio), complete answering 201 with the asset "
        "(the API re-reads the object from moto for its sha256, probes it, makes a poster and fingerprints).",
        "- Compared figure: create to the complete answer. The part-URL request and the local signing "
        "count as transfer time.",
        f"- {len(direct)} round(s), each the three variants, round n starting with variant n of the "
        "order above, `os.sync()` before each; assets and the baseline's object deleted after each. "
        "A warm-up of each variant with a 32 MiB file comes first (PyAV loaded in the API and the "
        "worker). Medians over rounds.",
        "- CPU per GiB: API = serve process over transfer + complete; moto = the moto process over "
        "create to complete (for the ingest, from 202 to the asset); client = this process over the "
        "transfer (httpx and the part reader).",
        "",
        "### Results",
        "",
        "| variant | create s | transfer s | complete s | create to complete s | MiB/s | vs direct "
        "| API CPU-s/GiB | moto CPU-s/GiB | client CPU-s/GiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| direct PUTs (baseline) | {median([d.create_s for d in direct]):.2f} "
        f"| {median([d.parts_s for d in direct]):.2f} | {median([d.complete_s for d in direct]):.2f} "
        f"| **{results.direct_s:.2f}** | {mibps(size, results.direct_s):,.0f} | 1.00 | - "
        f"| {moto['direct']:.2f} | {median([d.client_cpu_parts_s for d in direct]) / gib:.2f} |",
        row("Rushes presigned", results.presigned, "202", "presigned"),
        row("Rushes through the API (old path)", results.api, "201", "api"),
        "",
        f"- Presigned, 202 to the asset made by the ingest role: {ingest_s:.2f} s (includes up to one "
        f"poll interval of the worker and 50 ms of ours); worker CPU {worker_cpu:.2f} CPU-s "
        f"({worker_cpu / gib:.2f} per GiB), moto CPU {moto['ingest'] * gib:.2f} CPU-s serving the read.",
        f"- API CPU on the presigned path, per upload: {urls_cpu:.3f} CPU-s over the transfer (one "
        f"part-urls request for {results.presigned[0].part_count} parts; the PUTs do not reach the API) "
        f"and {complete_cpu:.3f} over complete (parts listed and joined by moto, session updated). "
        f"Idle, the serve process burns {idle * 1000:.1f} CPU-ms per second (measured over "
        f"{IDLE_SECONDS:g} s before the rounds): {idle * presigned_s:.3f} CPU-s of the "
        f"{presigned_s:.2f} s create-to-202 window.",
        "",
        "Per round (seconds, create to complete; presigned ratio against the same round's direct PUTs; "
        "the order of the variants rotates):",
        "",
        "| round | load | first | direct | presigned (202) | ratio | API CPU-s, presigned "
        "| 202 to asset | through the API (201) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for index, (d, p, i, a) in enumerate(
        zip(direct, results.presigned, results.ingests, results.api, strict=True)
    ):
        lines.append(
            f"| {index + 1} | {results.load[index]:.1f} | {results.first[index]} "
            f"| {d.create_to_complete_s:.2f} "
            f"| {p.create_to_complete_s:.2f} | {d.create_to_complete_s / p.create_to_complete_s:.2f} "
            f"| {p.server_cpu_s:.3f} | {i.seconds:.2f} | {a.create_to_complete_s:.2f} |"
        )
    return lines


def write_trace(path: Path, sampler: RssSampler, results: LocalResults) -> None:
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
    parser.add_argument("--rounds", type=int, default=3, help="local backend: copy+upload rounds (default 3)")
    parser.add_argument(
        "--s3-rounds", type=int, default=3, help="S3 backend: rounds of the three variants (default 3)"
    )
    parser.add_argument(
        "--backends",
        default="local,s3",
        help="comma-separated: local, s3 (default both)",
    )
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
    parser.add_argument(
        "--rss-trace", type=Path, default=None, help="local backend: write the RSS samples here as CSV"
    )
    parser.add_argument("--keep", action="store_true", help="keep the servers' data folders and logs")
    args = parser.parse_args(argv)
    args.backends = {b.strip() for b in args.backends.split(",") if b.strip()}
    if not args.backends or args.backends - {"local", "s3"}:
        parser.error("--backends takes local, s3 or both")
    if args.size_gib < 1 / 64 or args.parallel < 1 or args.rounds < 1 or args.s3_rounds < 1:
        parser.error("--size-gib must be at least 1/64, --parallel and the rounds at least 1")
    if any("=" not in item for item in args.server_env):
        parser.error("--server-env takes NAME=VALUE")
    return args


@dataclass
class Inputs:
    """What every phase of a run shares."""

    source: Path
    digest: str
    warmup: Path
    warmup_digest: str
    part_size: int | None
    parallel: int
    server_env: dict[str, str]
    work_dir: Path
    keep: bool

    @property
    def limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=self.parallel, max_keepalive_connections=self.parallel)


@contextmanager
def scratch_dir(inputs: Inputs, prefix: str) -> Iterator[Path]:
    """A server data folder; removed afterwards with the logs beside it unless ``--keep``."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=inputs.work_dir))
    try:
        yield data_dir
    finally:
        if not inputs.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
            for log in data_dir.parent.glob(f"{data_dir.name}.*log"):
                log.unlink(missing_ok=True)


def run_local(inputs: Inputs, rounds: int, rss_trace: Path | None) -> LocalResults:
    source, digest, part_size, parallel = inputs.source, inputs.digest, inputs.part_size, inputs.parallel
    size = source.stat().st_size
    results = LocalResults(size=size, parallel=parallel)
    with scratch_dir(inputs, "server-") as data_dir, run_server(data_dir, inputs.server_env) as server:
        sampler = RssSampler(server.process.pid)
        sampler.start()
        results.startup_rss = sampler.settle(0.5)
        headers = sign_up(server.base_url)
        with httpx.Client(
            base_url=server.base_url, headers=headers, timeout=600, limits=inputs.limits
        ) as client:
            warm = upload(client, inputs.warmup, inputs.warmup_digest, parallel, part_size, sampler)
            results.warmup_parts = warm.part_count
            delete_asset(client, warm.asset)
            results.baseline_rss = sampler.settle()
            print(
                f"local: server RSS after start-up {results.startup_rss / MiB:.0f} MiB, "
                f"after warm-up (baseline) {results.baseline_rss / MiB:.0f} MiB",
                flush=True,
            )
            for round_number in range(1, rounds + 1):
                results.load.append(os.getloadavg()[0])
                results.copies.append(plain_copy(source, inputs.work_dir / "copy.bin"))
                os.sync()
                results.start_rss.append(sampler.rss())
                timing = upload(client, source, digest, parallel, part_size, sampler)
                results.uploads.append(timing)
                results.peak_parts.append(sampler.peak(*timing.parts_window))
                results.peak_complete.append(sampler.peak(*timing.complete_window))
                delete_asset(client, timing.asset)
                peak = max(results.peak_parts[-1], results.peak_complete[-1]) - results.baseline_rss
                print(
                    f"local round {round_number}: copy {mibps(size, results.copies[-1]):,.0f} MiB/s, "
                    f"parts {timing.parts_s:.2f} s, complete {timing.complete_s:.2f} s, "
                    f"end to end {mibps(size, timing.total_s):,.0f} MiB/s, "
                    f"API CPU {timing.server_cpu_s:.2f} s, peak RSS +{peak / MiB:.1f} MiB",
                    flush=True,
                )
            results.copies.append(plain_copy(source, inputs.work_dir / "copy.bin"))
        sampler.stop()
        if rss_trace:
            write_trace(rss_trace, sampler, results)
    return results


def delete_asset(client: httpx.Client, asset: dict[str, Any] | None) -> None:
    if asset is None:
        raise RuntimeError("no asset to delete")
    client.delete(f"/v1/assets/{asset['id']}").raise_for_status()


@dataclass
class S3Rig:
    """Everything one S3 round talks to: moto, the API on it and its ingest worker."""

    inputs: Inputs
    client: httpx.Client  # the API, with a tenant's key
    storage_http: httpx.Client  # signed URLs on moto, no credentials
    storage: S3Storage  # the baseline's own bucket
    api: RssSampler  # only its CPU readings are used, so no sampling thread runs
    moto: psutil.Process
    worker: psutil.Process

    @property
    def part_size(self) -> int:
        """The API's part size unless one is asked for; checked against every session."""
        return self.inputs.part_size or UploadSettings().default_part_size

    def round(self, source: Path, digest: str, into: S3Results, first: int) -> None:
        """The three variants once each, appended to ``into``. The order rotates with ``first``,
        so that no variant always runs right after the same other one (and its clean-up)."""
        steps = [self._direct, self._presigned, self._through_api]
        into.first.append(S3_VARIANTS[first % len(steps)])
        for step in steps[first % len(steps) :] + steps[: first % len(steps)]:
            os.sync()
            step(source, digest, into)

    def _direct(self, source: Path, digest: str, into: S3Results) -> None:
        with cpu_into(self.moto, into.storage_cpu["direct"]):
            timing = direct_put(self.storage, self.storage_http, source, self.part_size, self.inputs.parallel)
        into.direct.append(timing)

    def _presigned(self, source: Path, digest: str, into: S3Results) -> None:
        inputs = self.inputs
        with cpu_into(self.moto, into.storage_cpu["presigned"]):
            timing = upload(
                self.client, source, digest, inputs.parallel, inputs.part_size, self.api, self.storage_http
            )
        with cpu_into(self.moto, into.storage_cpu["ingest"]):
            ingest = wait_for_asset(self.client, timing.upload_id, self.worker)
        delete_asset(self.client, ingest.asset)
        self._check_part_size(timing)
        into.presigned.append(timing)
        into.ingests.append(ingest)

    def _through_api(self, source: Path, digest: str, into: S3Results) -> None:
        with cpu_into(self.moto, into.storage_cpu["api"]):
            timing = upload(
                self.client, source, digest, self.inputs.parallel, self.inputs.part_size, self.api
            )
        delete_asset(self.client, timing.asset)
        self._check_part_size(timing)
        into.api.append(timing)

    def _check_part_size(self, timing: UploadTiming) -> None:
        if timing.part_size != self.part_size:
            raise RuntimeError(
                f"the baseline uses {self.part_size} byte parts, the API {timing.part_size}: "
                "pass --part-size-mib"
            )


@contextmanager
def s3_rig(inputs: Inputs) -> Iterator[S3Rig]:
    with (
        scratch_dir(inputs, "server-s3-") as data_dir,
        run_moto(data_dir.with_name(f"{data_dir.name}.moto.log")) as (endpoint, moto),
        run_server(data_dir, inputs.server_env | s3_env(endpoint, "rushes-bench")) as server,
        run_ingest_worker(server) as worker,
    ):
        storage = S3Storage(
            endpoint=endpoint,
            bucket="bench-direct",
            access_key="testing",
            secret_key="testing",
            secure=False,
            region="us-east-1",
            create_bucket=True,
        )
        headers = sign_up(server.base_url)
        with (
            httpx.Client(
                base_url=server.base_url, headers=headers, timeout=600, limits=inputs.limits
            ) as client,
            httpx.Client(timeout=600, limits=inputs.limits) as storage_http,
        ):
            yield S3Rig(
                inputs,
                client,
                storage_http,
                storage,
                RssSampler(server.process.pid),
                psutil.Process(moto.pid),
                psutil.Process(worker.pid),
            )


def run_s3(inputs: Inputs, rounds: int) -> S3Results:
    size = inputs.source.stat().st_size
    results = S3Results(size=size, parallel=inputs.parallel)
    with s3_rig(inputs) as rig:
        results.part_size = rig.part_size
        rig.round(inputs.warmup, inputs.warmup_digest, S3Results(size=size, parallel=inputs.parallel), 0)
        # What the API burns doing nothing, to tell it from what a direct upload costs it.
        idle0, idle_start = rig.api.cpu_seconds(), time.perf_counter()
        time.sleep(IDLE_SECONDS)
        results.api_idle_cpu_per_s = (rig.api.cpu_seconds() - idle0) / (time.perf_counter() - idle_start)
        for round_number in range(1, rounds + 1):
            results.load.append(os.getloadavg()[0])
            rig.round(inputs.source, inputs.digest, results, round_number - 1)
            direct, presigned, ingest, through_api = (
                results.direct[-1],
                results.presigned[-1],
                results.ingests[-1],
                results.api[-1],
            )
            print(
                f"s3 round {round_number} ({results.first[-1]} first): "
                f"direct {direct.create_to_complete_s:.2f} s, "
                f"presigned to 202 {presigned.create_to_complete_s:.2f} s "
                f"(API CPU {presigned.server_cpu_s:.3f} s), to asset +{ingest.seconds:.2f} s, "
                f"through the API {through_api.create_to_complete_s:.2f} s "
                f"(API CPU {through_api.server_cpu_s:.2f} s)",
                flush=True,
            )
    return results


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
    source, digest = cached_media(work_dir / "cache", args.size_gib)
    warmup, warmup_digest = cached_media(work_dir / "cache", 1 / 32)  # 32 MiB: a few parts
    free = shutil.disk_usage(work_dir).free
    if free < 3 * source.stat().st_size:
        raise SystemExit(
            f"need {3 * source.stat().st_size / GiB:.1f} GiB free under {work_dir}, have {free / GiB:.1f}"
        )
    inputs = Inputs(
        source=source,
        digest=digest,
        warmup=warmup,
        warmup_digest=warmup_digest,
        part_size=int(args.part_size_mib * MiB) if args.part_size_mib else None,
        parallel=args.parallel,
        server_env=dict(item.split("=", 1) for item in args.server_env),
        work_dir=work_dir,
        keep=args.keep,
    )
    local = run_local(inputs, args.rounds, args.rss_trace) if "local" in args.backends else None
    s3 = run_s3(inputs, args.s3_rounds) if "s3" in args.backends else None
    command = shlex.join([Path(sys.executable).as_posix(), "-m", "bench.upload", *sys.argv[1:]])
    report = render(local, s3, source, inputs.server_env, command, machine_description(work_dir))
    print(report)
    if str(args.output) != "-":
        write_report(args.output, report)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
