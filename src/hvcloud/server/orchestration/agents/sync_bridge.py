"""The bridge from worker threads (API handlers) to the event loop the AgentManager runs on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from hvcloud.server.orchestration.agents import AgentUnavailable, HostNotConnected

T = TypeVar("T")


class SyncBridge:
    """Holds the manager's loop while it runs (``None`` otherwise)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it; past ``timeout`` it is cancelled."""
        loop = self.loop
        if loop is None:
            coro.close()
            raise HostNotConnected("the agent manager is not running")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise AgentUnavailable(f"no result within {timeout:g} s") from None

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop soon; nothing when the manager is not running."""
        loop = self.loop
        if loop is not None:
            loop.call_soon_threadsafe(fn, *args)
