"""How a host's state follows from the outcome of talking to its agent (CloudStack's rules, scaled).

* A successful connect or ping makes the host **Up**.
* An agent that does not answer makes it **Disconnected** once more than ``host.ping.retry.count``
  pings in a row have failed, and **Down** once nothing has been heard from it for
  ``ping.timeout`` x ``ping.interval`` (2.5 x 60 s by default).
* An agent that answers but cannot be used (refuses the credentials, shows another certificate,
  answers a connect step with ``result:false`` or garbage) puts the host in **Alert**: it is alive,
  but an administrator has to look at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hvcloud.server.orchestration.agents import (
    HOST_ALERT,
    HOST_DISCONNECTED,
    HOST_DOWN,
    HOST_UP,
    AgentError,
    AgentUnavailable,
    HostNotConnected,
)


@dataclass(frozen=True)
class Timings:
    down_after_seconds: float
    retry_count: int = 0


def status_after_failure(current: str, error: AgentError, consecutive_failures: int, silent_seconds: float,
                         timings: Timings) -> str:
    """The host's state after a failed ping or connect attempt."""
    if not isinstance(error, AgentUnavailable | HostNotConnected):
        return HOST_ALERT
    if silent_seconds >= timings.down_after_seconds:
        return HOST_DOWN
    if current == HOST_UP and consecutive_failures <= timings.retry_count:
        return HOST_UP
    if current == HOST_DOWN:
        return HOST_DOWN
    return HOST_DISCONNECTED
