"""Forwarding: commands to hosts another live server owns go straight to their agents.

Agents accept several clients, and only a host's owner pings it and writes its state; this server
keeps a client per such host and lists what it has sent there, abandoning those commands when the
owner declares the host Down (or the host is gone), as the owner does with its own.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from hvcloud import logs
from hvcloud.agent_client import AgentClient
from hvcloud.server.db.models import Host
from hvcloud.server.orchestration import host_leases
from hvcloud.server.orchestration.agents import HOST_DOWN, HOST_UP, HostNotConnected
from hvcloud.server.orchestration.agents.links import HostRow, Links
from hvcloud.server.orchestration.agents.scope import Part, Scope
from hvcloud.server.orchestration.agents.sending import Inflight, abandon, tracked
from hvcloud.wire.base import Answer, Command

log = logs.get(__name__)


class RemoteHosts(Part):
    """Clients to, and commands in flight on, hosts this server does not own."""

    def __init__(self, scope: Scope, links: Links) -> None:
        super().__init__(scope)
        self.links = links
        self._clients: dict[str, tuple[tuple[str | None, ...], AgentClient]] = {}
        #: commands sent to other servers' hosts and not yet answered, by host
        self._inflight: dict[str, Inflight] = {}

    async def send(self, host_id: str, command: Command, deadline: float) -> Answer:
        """Send to a host another live server owns and reports Up; else HostNotConnected."""
        row = await asyncio.to_thread(self._row, host_id)
        if row is None:
            raise HostNotConnected(f"host {host_id} is not connected")
        cached = self._clients.get(host_id)
        if cached is None or cached[0] != row.key:
            if cached is not None:
                self.links.close_client(cached[1])
            cached = (row.key, self.links.client_for(row))
            self._clients[host_id] = cached
        self.stats.remote_sends += 1
        inflight = self._inflight.setdefault(host_id, set())
        return await tracked(host_id, inflight, cached[1].send(command), type(command).__name__, seconds=deadline)

    def _row(self, host_id: str) -> HostRow | None:
        with self.sessions() as db:
            host = db.get(Host, host_id)
            if host is None or host.status != HOST_UP or host.owner_server_id in (None, self.server_id):
                return None
            if host_leases.owner_if_alive(db, host_id, self.config.lease_seconds) is None:
                return None
            return HostRow.of(host)

    def drop(self, host_id: str) -> None:
        """Forget the client of a host this server now owns (or that is deleted)."""
        cached = self._clients.pop(host_id, None)
        if cached is not None:
            self.links.close_client(cached[1])

    async def aclose(self) -> None:
        for _key, client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def watch(self) -> None:
        """Every ping interval, while commands to other servers' hosts are outstanding: abandon those
        whose host its owner has declared Down (or that is gone)."""
        while True:
            await asyncio.sleep(self.config.ping_interval_seconds)
            waiting = [h for h, tasks in self._inflight.items() if tasks]
            for host_id in [h for h, tasks in self._inflight.items() if not tasks]:
                del self._inflight[host_id]
            if not waiting:
                continue
            try:
                lost = await asyncio.to_thread(self._lost_hosts, waiting)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checking the hosts of outstanding commands failed")
                continue
            for host_id in lost:
                abandon(self._inflight.get(host_id, set()))

    def _lost_hosts(self, host_ids: list[str]) -> set[str]:
        with self.sessions() as db:
            known = {h: st for h, st in db.execute(select(Host.id, Host.status).where(Host.id.in_(host_ids)))}
        return {h for h in host_ids if known.get(h) in (None, HOST_DOWN)}
