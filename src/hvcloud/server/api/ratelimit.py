"""Per-account API rate limit, as CloudStack's API rate-limit plugin enforces it.

Each account gets a window of ``api.throttling.interval`` seconds, opened by its first call; every
call in the window counts, and a call past ``api.throttling.max`` is refused with HTTP 429 until the
window ends (refused calls count too, as in CloudStack). Root admin accounts are never throttled.
At most ``api.throttling.cachesize`` accounts are tracked; the least recently seen is forgotten first.

Counters live in this server process, as CloudStack keeps them per management server: with
``server run --processes N`` behind one address an account may make up to N x max calls per window.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from hvcloud import logs
from hvcloud.server.api import errors

log = logs.get(__name__)

@dataclass
class _Window:
    expires: float
    count: int = 0


@dataclass(frozen=True)
class LimitStatus:
    """``getApiLimit``'s view of one account's window."""

    issued: int
    allowed: int
    expire_after_ms: int


class ApiRateLimiter:
    def __init__(self, *, enabled: bool, interval: int, maximum: int, cache_size: int) -> None:
        self.enabled = enabled
        self.interval = interval
        self.maximum = maximum
        self.cache_size = cache_size
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def reconfigure(self, *, enabled: bool, interval: int, maximum: int, cache_size: int) -> None:
        """New ``api.throttling.*`` values: open windows keep their end, new ones use ``interval``."""
        with self._lock:
            self.enabled, self.interval, self.maximum, self.cache_size = enabled, interval, maximum, cache_size
            while len(self._windows) > self.cache_size:
                self._windows.popitem(last=False)

    def _window(self, account_id: str, now: float) -> _Window:
        """The account's current window (a new one when none is open); the caller holds the lock."""
        window = self._windows.get(account_id)
        if window is None or window.expires <= now:
            window = _Window(expires=now + self.interval)
            self._windows[account_id] = window
            while len(self._windows) > self.cache_size:
                self._windows.popitem(last=False)
        self._windows.move_to_end(account_id)
        return window

    def check(self, account_id: str) -> None:
        """Count one call of ``account_id``; ApiError 429 when it is over the limit."""
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            window = self._window(account_id, now)
            window.count += 1
            if window.count <= self.maximum:
                return
            expire_ms = max(int((window.expires - now) * 1000), 0)
        log.warning("api rate limit reached", account_id=account_id, retry_after_ms=expire_ms)
        raise errors.ApiError(errors.API_LIMIT_EXCEED, "The given user has reached his/her account api limit, "
                              f"please retry after {expire_ms} ms.")

    def status(self, account_id: str) -> LimitStatus:
        now = time.monotonic()
        with self._lock:
            window = self._window(account_id, now)
            return LimitStatus(issued=window.count, allowed=self.maximum - window.count,
                               expire_after_ms=max(int((window.expires - now) * 1000), 0))

    def reset(self, account_id: str | None) -> None:
        """Forget one account's count, or every account's (``resetApiLimit`` without an account)."""
        with self._lock:
            if account_id is None:
                self._windows.clear()
            else:
                self._windows.pop(account_id, None)
