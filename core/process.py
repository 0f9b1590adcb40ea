"""Child processes that end with the process that started them."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in a child before exec: the kernel kills it if its parent dies, even by SIGKILL.

    Without this a job's child would outlive a killed worker and keep heartbeating, and the
    job would never move to another worker; an embedded worker would outlive ``serve``.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the lease still expires
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
