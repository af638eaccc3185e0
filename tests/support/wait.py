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


def wait_for_count(what: str, count: Callable[[], int], more: int, timeout: float = 90) -> None:
    """Wait until ``count()`` has gone up by ``more`` from its value now: a loop's passes, pings done.
    The way to check that something did NOT happen: let the loop that would do it run ``more`` times,
    then look (rather than sleeping for a guessed number of its intervals)."""
    target = count() + more
    wait_for(f"{what} ({more} more)", lambda: count() >= target, timeout, interval=0.02)
