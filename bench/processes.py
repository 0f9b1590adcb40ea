"""Measuring a benchmark's variants in processes of their own, so that each peak is its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from typing import Any

# glibc otherwise raises its mmap threshold as big blocks are freed and then keeps freed
# weight-sized blocks in the heap, so peak RSS measures its fragmentation as much as the
# tensors. A fixed 1 MiB threshold returns every large block to the OS when it is freed.
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def peak_rss() -> int:
    """This process's peak resident memory, in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_result(command: list[str], label: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one variant's child; its result is the JSON object on the last line it prints.
    A child that fails ends the benchmark with its error output."""
    child = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if child.returncode != 0:
        raise SystemExit(f"{label} failed:\n{child.stderr}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))
