"""The manager's connections: one :class:`HostLink` (an AgentClient and what the ping loop knows) per
host it drives, kept in step with the host rows.

A host ``addHost`` has just connected is *fresh*: its first visit is a ping, not a connect. A host
``deleteHost`` has removed is *tombstoned*: its row is ignored until it is gone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from hvcloud.agent_client import AgentClient
from hvcloud.server.db.models import Host
from hvcloud.server.orchestration import discovery
from hvcloud.server.orchestration.agents import DEFAULT_AGENT_PORT
from hvcloud.server.orchestration.agents.scope import Part, Scope
from hvcloud.server.orchestration.agents.sending import Inflight
from hvcloud.server.orchestration.discovery import AgentAddress

FRESH_SECONDS = 300.0
TOMBSTONE_SECONDS = 600.0


@dataclass(frozen=True)
class HostRow:
    """What the scheduler needs of a host row."""

    id: str
    guid: str | None
    url: str
    private_ip: str | None
    username: str | None
    password_enc: str | None
    fingerprint: str | None

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.url, self.private_ip, self.username, self.password_enc, self.fingerprint)

    @classmethod
    def of(cls, host: Host) -> HostRow:
        return cls(host.id, host.guid, host.url, host.private_ip, host.agent_username, host.agent_password_enc,
                   host.cert_fingerprint)


@dataclass(eq=False)
class HostLink:
    """The manager's connection to one host's agent."""

    host_id: str
    guid: str
    key: tuple[str | None, ...]
    client: AgentClient
    connected: bool = False
    failures: int = 0
    last_stats: float = float("-inf")
    last_vm_stats: float = float("-inf")
    last_report: dict[str, str] | None = None
    report_pending: bool = False
    task: asyncio.Task[None] | None = None
    #: commands sent and not yet answered; abandoned when the host is declared Down
    inflight: Inflight = field(default_factory=set)


def agent_address(url: str, private_ip: str | None) -> AgentAddress:
    """Where a host's agent listens: its URL's name and port, else its private IP on the default port."""
    try:
        name, port = discovery.parse_host_url(url)
    except discovery.HostUrlError:
        name, port = private_ip or "", DEFAULT_AGENT_PORT
    return AgentAddress(name=name, ip=private_ip or name, port=port)


class Links(Part):
    """The links of the hosts this server drives, by host id."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope)
        self.by_host: dict[str, HostLink] = {}
        self._fresh: dict[str, float] = {}
        self._tombstones: dict[str, float] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def forgotten(self, host_id: str) -> bool:
        return host_id in self._tombstones

    def note_fresh(self, host_id: str) -> None:
        self._fresh[host_id] = time.monotonic()

    def forget(self, host_id: str) -> None:
        """Drop a host's link now and ignore its row until it is gone (deleteHost)."""
        self._tombstones[host_id] = time.monotonic()
        self._fresh.pop(host_id, None)
        link = self.by_host.pop(host_id, None)
        if link is not None:
            self.close_link(link)

    # ------------------------------------------------------------------ clients

    def new_client(self, address: AgentAddress, username: str | None, password: str | None,
                   fingerprint: str | None) -> AgentClient:
        return AgentClient(address.base_url, username=username, password=password, pinned_sha256=fingerprint,
                           verify=False, timeout=self.config.command_wait_seconds + 60,
                           connect_timeout=self.config.agent_connect_timeout_seconds, max_connections=4)

    def client_for(self, row: HostRow) -> AgentClient:
        password = self.box.decrypt(row.password_enc) if row.password_enc else None
        return self.new_client(agent_address(row.url, row.private_ip), row.username, password, row.fingerprint)

    def close_link(self, link: HostLink) -> None:
        if link.task is not None:
            link.task.cancel()
        self.close_client(link.client)

    def close_client(self, client: AgentClient) -> None:
        """Close a client in the background (its requests may still be winding down)."""
        closing = asyncio.ensure_future(client.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for link in list(self.by_host.values()):
            await link.client.aclose()
        self.by_host.clear()

    # ------------------------------------------------------------------ rows

    def link_for(self, row: HostRow) -> HostLink:
        """The row's link, made anew when the row's address or credentials changed."""
        link = self.by_host.get(row.id)
        if link is not None and link.key == row.key:
            return link
        if link is not None:
            self.close_link(link)
        link = HostLink(host_id=row.id, guid=row.guid or "", key=row.key, client=self.client_for(row),
                        connected=self._fresh.pop(row.id, None) is not None)
        self.by_host[row.id] = link
        return link

    def sync(self, rows: list[HostRow]) -> None:
        """Make the links follow the rows: close those of rows gone or forgotten, add the new ones."""
        now = time.monotonic()
        present = {r.id for r in rows}
        for host_id in [h for h in self.by_host if h not in present or h in self._tombstones]:
            self.close_link(self.by_host.pop(host_id))
        for host_id, when in list(self._tombstones.items()):
            if host_id not in present or now - when > TOMBSTONE_SECONDS:
                del self._tombstones[host_id]
        for host_id, when in list(self._fresh.items()):
            if now - when > FRESH_SECONDS:
                del self._fresh[host_id]
        for row in rows:
            if row.id not in self._tombstones:
                self.link_for(row)

    def load_rows(self, host_id: str | None) -> list[HostRow]:
        """One host's row, or (``None``) the rows of every host this server drives."""
        with self.sessions() as db:
            stmt = select(Host.id, Host.guid, Host.url, Host.private_ip, Host.agent_username,
                          Host.agent_password_enc, Host.cert_fingerprint)
            if host_id is not None:
                stmt = stmt.where(Host.id == host_id)
            elif self.server_id is not None:
                stmt = stmt.where(Host.owner_server_id == self.server_id)
            return [HostRow(*r) for r in db.execute(stmt)]
