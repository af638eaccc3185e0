"""The typed seam to the AgentManager: what orchestration, jobs and API handlers may ask of it.

They depend on these protocols, not on the manager's parts; the manager
(:class:`hvcloud.server.orchestration.agent_manager.AgentManager`) satisfies both, and a test may
hand in anything else that does.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

from hvcloud.server.config import ServerConfig
from hvcloud.server.orchestration.agents import AgentError
from hvcloud.server.orchestration.agents.stats import ManagerStats
from hvcloud.server.orchestration.discovery import ConnectRequest, ConnectResult
from hvcloud.wire.base import Answer, Command

T = TypeVar("T")


class Reconnected(Protocol):
    """The outcome of reconnectHost's connect sequence: ``error`` is None when it succeeded."""

    @property
    def error(self) -> AgentError | None: ...


class AgentSender(Protocol):
    """What jobs and orchestration steps need, on the event loop."""

    @property
    def server_id(self) -> str | None:
        """This server's id when it drives only the hosts it owns; None when it drives every host."""

    def owned_host_ids(self) -> frozenset[str]:
        """The hosts this server drives now."""

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        """Send one command to a host; transport failures raise an AgentError subclass."""

    async def reconnect(self, host_id: str) -> Reconnected | None:
        """Run the host's connect sequence now and write its outcome; None when the host is gone."""


class AgentService(AgentSender, Protocol):
    """What API handlers need besides, from worker threads."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def stats(self) -> ManagerStats: ...

    def host_ids(self) -> set[str]: ...

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T: ...

    def send_sync(self, host_id: str, command: Command, wait: float | None = None) -> Answer: ...

    async def discover(self, request: ConnectRequest, username: str | None, password: str | None) -> ConnectResult:
        """addHost: probe the agent, then run the connect sequence."""

    def note_connected(self, host_id: str) -> None: ...

    def forget(self, host_id: str) -> None: ...
