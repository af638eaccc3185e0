"""Commands in flight to one host, and abandoning them when that host is declared Down."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from hvcloud.server.orchestration.agents import AgentUnavailable, guarded
from hvcloud.wire.base import Answer

#: the commands sent to one host and not yet answered
Inflight = set[asyncio.Task[Answer]]


async def tracked(host_id: str, inflight: Inflight, call: Coroutine[Any, Any, Answer], what: str, *,
                  seconds: float) -> Answer:
    """Await one command while it is listed in ``inflight``. A host declared Down meanwhile fails
    the command at once, as CloudStack cancels an agent's outstanding requests when it disconnects,
    instead of leaving it to its own ``wait`` (600 s for a StopCommand)."""
    task = asyncio.ensure_future(guarded(call, seconds, what))
    inflight.add(task)
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        inflight.discard(task)
    if task.cancelled():
        raise AgentUnavailable(f"{what}: host {host_id} went Down before it answered")
    return task.result()


def abandon(inflight: Inflight) -> None:
    """Fail every command still waiting on a host (its :func:`tracked` callers raise AgentUnavailable)."""
    for task in list(inflight):
        task.cancel()
