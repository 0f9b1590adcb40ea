"""The browser tests' watch on Playwright's driver: a spinning driver fails the test by name and
is killed with its children; a driver that works in bursts is left alone."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from tests.web.wedge import BrowserWedged, DriverWatch

SPIN = """
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
while True:
    pass
"""
BURSTS = """
import time
while True:
    end = time.monotonic() + 0.01
    while time.monotonic() < end:
        pass
    time.sleep(0.5)
"""
# Thresholds a spinning process meets even on a machine loaded with other tests.
QUICK = {"spin_seconds": 2.0, "sample_seconds": 0.25, "spinning": 0.1}


def _stand_in(code: str) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    process = subprocess.Popen([sys.executable, "-c", code])
    return process, psutil.Process(process.pid)


def test_a_spinning_driver_fails_the_test_by_name_and_is_killed_with_its_children() -> None:
    process, driver = _stand_in(SPIN)
    try:
        time.sleep(1.0)  # its child is started
        children = driver.children()
        watch = DriverWatch(driver, **QUICK)
        with pytest.raises(BrowserWedged, match="of a core for"):
            time.sleep(30)
        assert watch.wedged is not None and f"{driver.pid} python" in watch.wedged
        watch.stop()
        assert process.wait(timeout=10) != 0
        _gone, alive = psutil.wait_procs(children, timeout=10)
        assert children and not alive
    finally:
        process.kill()


def test_a_driver_working_in_bursts_is_left_alone() -> None:
    process, driver = _stand_in(BURSTS)
    try:
        watch = DriverWatch(driver, **QUICK)
        time.sleep(5)
        watch.stop()
        assert watch.wedged is None and process.poll() is None
    finally:
        process.kill()
