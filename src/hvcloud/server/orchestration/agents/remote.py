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

    async def send(self, host_id: str, command: Command, deadline: float, row: HostRow | bool | None = True) -> Answer:
        """Send to a host another live server owns and reports Up; else HostNotConnected. ``row``:
        what :meth:`route` found just now (``True``: not looked up yet)."""
        if row is True:
            row = await asyncio.to_thread(self._row, host_id)
        if not isinstance(row, HostRow):
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
        return self.route(host_id)[1]

    def route(self, host_id: str) -> tuple[HostRow | None, HostRow | None]:
        """Who drives a host this server has no link to, with one read: ``(row, None)`` when this
        server does (it owns the host, or there are no leases), ``(None, row)`` when another live
        server owns it and it is Up (commands go straight to its agent), else ``(None, None)``."""
        with self.sessions() as db:
            found = db.execute(select(Host.id, Host.guid, Host.url, Host.private_ip, Host.agent_username,
                                      Host.agent_password_enc, Host.cert_fingerprint, Host.owner_server_id,
                                      Host.status).where(Host.id == host_id)).first()
            if found is None:
                return None, None
            row, owner, status = HostRow(*found[:7]), found[7], found[8]
            if self.server_id is None or owner == self.server_id:
                return row, None
            if owner is None or status != HOST_UP or not host_leases.is_live(db, owner, self.config.lease_seconds):
                return None, None
            return None, row

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
