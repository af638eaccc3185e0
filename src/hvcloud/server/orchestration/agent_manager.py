"""The AgentManager: one client per host, the ping loop, host states, stats and VM power sync.

It runs on the server's event loop (started and stopped with the app's lifespan). Every
``ping.interval`` the scheduler reads the host rows (the database is the source of truth: a deleted
host is no longer pinged, a new one is picked up) and starts one task per host that is not already
busy, bounded by a semaphore (``agent.concurrency``) so that a thousand hosts cost a thousand small
coroutines and a few dozen sockets at a time. A task either runs the connect sequence (for a host
that is new to this manager or came back; its first ping follows at once and is written with it) or
pings: HostVmStateReport, then PingRoutingCommand carrying the report, and every
``host.stats.interval`` a GetHostStatsCommand. Outcomes go to one writer task that applies them in
batches, in one transaction each, in a worker thread.

API handlers run in worker threads; they reach the manager through the ``*_sync`` methods, which
hand coroutines to the loop.

With a ``server_id`` the manager drives only the hosts this server owns (``host_leases``): a lease
task balances ownership every few seconds and connects at once to hosts it has just claimed, the
scheduler reads only owned rows, and every state write is fenced on ownership. ``send`` to a host
owned by another live server goes straight to that host's agent over a client of its own.

This class is a facade: each concern is a part in :mod:`hvcloud.server.orchestration.agents`
(``links``, ``sending``, ``remote``, ``ownership``, ``pings``, ``writer``, ``sync_bridge``);
orchestration and jobs see it through the protocols in ``agents.protocol``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.orchestration import discovery
from hvcloud.server.orchestration.agents import HostNotConnected
from hvcloud.server.orchestration.agents.links import HostRow, Links
from hvcloud.server.orchestration.agents.ownership import Ownership
from hvcloud.server.orchestration.agents.pings import Pinger
from hvcloud.server.orchestration.agents.remote import RemoteHosts
from hvcloud.server.orchestration.agents.scope import LiveConfig, Scope
from hvcloud.server.orchestration.agents.sending import tracked
from hvcloud.server.orchestration.agents.stats import ManagerStats
from hvcloud.server.orchestration.agents.sync_bridge import SyncBridge
from hvcloud.server.orchestration.agents.writer import Outcome, OutcomeWriter
from hvcloud.server.orchestration.discovery import ConnectRequest, ConnectResult
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.wire.base import Answer, Command

if TYPE_CHECKING:
    from hvcloud.server.orchestration.agents.protocol import AgentService

__all__ = ["AgentManager", "Outcome"]

log = logs.get(__name__)

T = TypeVar("T")


class AgentManager:
    def __init__(self, config: ServerConfig, sessions: sessionmaker[Session], box: SecretBox, *,
                 server_id: str | None = None) -> None:
        self._live = LiveConfig(config)
        self.sessions = sessions
        self.box = box
        #: this server's id in ``management_server``; None drives every host (no leases)
        self.server_id = server_id
        self.stats = ManagerStats()
        scope = Scope(self._live, sessions, box, server_id, self.stats)
        self._links = Links(scope)
        self._remote = RemoteHosts(scope, self._links)
        self._writer = OutcomeWriter(scope, self._links)
        self._pinger = Pinger(scope, self._links, self._writer)
        self._ownership = None if server_id is None else Ownership(scope, server_id, self._visit_new_links)
        self._bridge = SyncBridge()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_power_change: list[Callable[[list[power_sync.PowerChange]], None]] = self._writer.on_power_change

    @property
    def config(self) -> ServerConfig:
        return self._live.config

    def reconfigure(self, config: ServerConfig) -> None:
        """Use new settings (a dynamic setting changed): ping interval, timeouts and retries apply
        from the parts' next read; the semaphore (``agent.concurrency``) is sized at start."""
        self._live.config = config

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._bridge.loop = asyncio.get_running_loop()
        self._pinger.reset()
        self._writer.reset()
        self._tasks = [asyncio.create_task(self._pinger.run(), name="agent-scheduler"),
                       asyncio.create_task(self._writer.run(), name="agent-writer")]
        if self._ownership is not None:
            self._tasks.append(asyncio.create_task(self._ownership.run(), name="agent-leases"))
            self._tasks.append(asyncio.create_task(self._remote.watch(), name="agent-remote-watch"))

    async def stop(self) -> None:
        links = self._links.by_host.values()
        tasks = list(self._tasks) + [link.task for link in links if link.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._links.aclose()
        await self._remote.aclose()
        self._tasks = []
        self._bridge.loop = None
        if self._ownership is not None:
            try:
                await asyncio.to_thread(self._ownership.release_all)
            except Exception:
                log.exception("releasing the hosts of this server failed", server=self.server_id)

    @property
    def running(self) -> bool:
        return self._bridge.loop is not None

    def host_ids(self) -> set[str]:
        return set(self._links.by_host)

    def owned_host_ids(self) -> frozenset[str]:
        """The hosts the last ownership pass left to this server (every host without leases)."""
        return self._ownership.owned if self._ownership is not None else frozenset(self._links.by_host)

    # ------------------------------------------------------------------ called from worker threads

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return self._bridge.run_sync(coro, timeout)

    def send_sync(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        timeout = (wait or self.config.command_wait_seconds) + 5
        return self.run_sync(self.send(host_id, command, wait), timeout)

    def note_connected(self, host_id: str) -> None:
        """addHost has just connected this host: its first scheduled visit is a ping, not a connect."""
        self._bridge.call_soon(self._links.note_fresh, host_id)

    def forget(self, host_id: str) -> None:
        """Stop pinging a host now (deleteHost) and keep ignoring its row until it is gone."""
        self._bridge.call_soon(self._forget, host_id)

    def _forget(self, host_id: str) -> None:
        self._remote.drop(host_id)
        self._links.forget(host_id)

    # ------------------------------------------------------------------ discovery and commands

    async def discover(self, request: ConnectRequest, username: str | None, password: str | None) -> ConnectResult:
        """addHost: probe the agent, then run the connect sequence. Raises AgentError."""
        client = self._links.new_client(request.address, username, password, None)
        try:
            timeout = self.config.ping_request_timeout_seconds
            await discovery.probe(client, timeout)
            return await discovery.connect(client, request, self.config.connect_step_timeout_seconds)
        finally:
            await client.aclose()

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        """Send one command to a connected host. ``wait`` (else the command's own ``wait``, else the
        ``wait`` setting) bounds the call; transport failures raise an AgentError subclass."""
        timeout = float(wait or (command.wait if command.wait and command.wait > 0 else None)
                        or self.config.command_wait_seconds)
        link = self._links.by_host.get(host_id)
        remote: HostRow | bool | None = True  # not looked up
        if link is None and not self._links.forgotten(host_id):
            # another server's host, or one of ours that addHost connected moments ago, before the
            # scheduler's next pass: one read says which
            own, remote = await asyncio.to_thread(self._remote.route, host_id)
            link = self._links.link_for(own) if own is not None else None
        if link is not None and not link.connected and link.failures == 0 and link.task is not None:
            # a host this server has just claimed (or is reconnecting): its connect sequence is under way
            started = time.monotonic()
            await asyncio.wait({link.task}, timeout=min(timeout, self.config.connect_step_timeout_seconds))
            timeout = max(timeout - (time.monotonic() - started), 0.1)
        if link is None or not link.connected:
            if self.server_id is None:
                raise HostNotConnected(f"host {host_id} is not connected")
            return await self._remote.send(host_id, command, timeout, remote if link is None else True)
        return await tracked(link.host_id, link.inflight, link.client.send(command), type(command).__name__,
                             seconds=timeout)

    async def reconnect(self, host_id: str) -> Outcome | None:
        """reconnectHost: drop the connection and run the connect sequence now; the outcome is written
        before this returns. None when the host row is gone."""
        link = self._links.by_host.get(host_id)
        if link is not None and link.task is not None:
            await asyncio.gather(link.task, return_exceptions=True)
        if self._ownership is not None:
            await asyncio.to_thread(self._ownership.take, host_id)
        rows = await asyncio.to_thread(self._links.load_rows, host_id)
        if not rows:
            return None
        link = self._links.link_for(rows[0])
        link.connected = False
        outcomes: list[Outcome] = []

        async def visit() -> None:
            outcomes.append(await self._pinger.visit(link))

        link.task = asyncio.create_task(visit())
        try:
            await link.task
        finally:
            link.task = None
        await self._writer.write(outcomes)
        return outcomes[0]

    async def _visit_new_links(self) -> None:
        """After an ownership pass: follow the owned rows and visit the hosts just claimed at once."""
        rows = await asyncio.to_thread(self._links.load_rows, None)
        before = dict(self._links.by_host)
        self._links.sync(rows)
        for host_id, link in self._links.by_host.items():
            self._remote.drop(host_id)
            if before.get(host_id) is not link and link.task is None:
                self._pinger.start_visit(link)


if TYPE_CHECKING:
    def _is_an_agent_service(manager: AgentManager) -> AgentService:
        """mypy checks here that the manager satisfies the protocol API handlers rely on."""
        return manager
