"""Poll until something is true: the one wait the suites and benches share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90, interval: float = 0.1) -> T:
    """Call ``probe`` every ``interval`` seconds until it returns something truthy and return that;
    fail the test naming ``what`` after ``timeout`` seconds (the probe always runs at least once)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
