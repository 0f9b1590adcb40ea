"""A watch on Playwright's driver while a browser test runs.

In full parallel runs of the suite, Playwright's driver (Node) and Debian's Chromium were seen
three times spinning at full CPU and never answering again, while the test processes ran
under SCHED_FIFO (which ``tests/conftest.py`` now resets): nothing else on their cores ran,
and once the run hung until CI's limit. Should a driver spin again, the watch
turns that into a quick, named failure: a driver that spins for ``SPIN_SECONDS`` raises
``BrowserWedged`` in the test (with what every process of the browser was doing), then the
driver and its Chromium are killed so that teardown cannot hang. Browser tests are rerun once
on ``BrowserWedged`` only (``tests/web/conftest.py``); every rerun is listed in the run's
summary, so the rate stays visible.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from types import FrameType

import psutil

SPIN_SECONDS = 60.0
SAMPLE_SECONDS = 5.0
# The driver's average share of one core over the last SPIN_SECONDS above which it is spinning.
# It idles between calls and no journey keeps it busy for long; a wedged one was seen at 95 %,
# but on a machine loaded with other tests a spinning process gets less.
SPINNING = 0.3
WEDGE_SIGNAL = signal.SIGUSR1


class BrowserWedged(Exception):
    """Playwright's driver spun at full CPU without answering; the browser was killed."""


def kill_family(process: psutil.Process) -> None:
    """Kill a process and every process under it (Playwright's driver and its Chromium)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        for member in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()


def _census(driver: psutil.Process) -> str:
    """Each process of the browser with its CPU share over a short sample, busiest first."""
    family = [driver, *driver.children(recursive=True)]
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.cpu_percent(None)
    threading.Event().wait(1.0)
    lines = []
    for member in family:
        with contextlib.suppress(psutil.Error):
            kind = next((arg for arg in member.cmdline() if arg.startswith("--type=")), member.name())
            lines.append((member.cpu_percent(None), f"{member.pid} {kind}"))
    return "\n".join(f"  {share:5.0f}% {what}" for share, what in sorted(lines, reverse=True))


class DriverWatch:
    """Samples the driver's CPU from a thread; on a wedge, interrupts the test's main thread."""

    def __init__(
        self,
        driver: psutil.Process,
        *,
        spin_seconds: float = SPIN_SECONDS,
        sample_seconds: float = SAMPLE_SECONDS,
        spinning: float = SPINNING,
    ) -> None:
        self.driver = driver
        self.spin_seconds, self.sample_seconds, self.spinning = spin_seconds, sample_seconds, spinning
        self.wedged: str | None = None
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._previous = signal.signal(WEDGE_SIGNAL, self._raise)
        self._thread = threading.Thread(target=self._watch, name="driver-watch", daemon=True)
        self._thread.start()

    def _raise(self, _signum: int, _frame: FrameType | None) -> None:
        if not self._stop.is_set():  # a wedge found as teardown began is only recorded
            raise BrowserWedged(self.wedged)

    def _watch(self) -> None:
        with contextlib.suppress(psutil.Error):
            window = deque([(time.monotonic(), sum(self.driver.cpu_times()[:2]))])
            while not self._stop.wait(self.sample_seconds):
                window.append((time.monotonic(), sum(self.driver.cpu_times()[:2])))
                while len(window) > 2 and window[-1][0] - window[1][0] >= self.spin_seconds:
                    window.popleft()
                (began, used), (now, using) = window[0], window[-1]
                if now - began >= self.spin_seconds and using - used > self.spinning * (now - began):
                    self.wedged = (
                        f"Playwright's driver used {(using - used) / (now - began):.0%} of a core "
                        f"for {now - began:.0f} s; its browser, by CPU:\n"
                        f"{_census(self.driver)}"
                    )
                    assert self._main is not None
                    signal.pthread_kill(self._main, WEDGE_SIGNAL)
                    # Give the test a moment to take the signal, then free teardown from waiting.
                    self._stop.wait(2.0)
                    kill_family(self.driver)
                    return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        signal.signal(WEDGE_SIGNAL, self._previous)
