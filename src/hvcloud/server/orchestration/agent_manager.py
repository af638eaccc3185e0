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
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud import logs
from hvcloud.agent_client import AgentClient
from hvcloud.server.config import ServerConfig
from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import Cluster, Host, StoragePool, utcnow
from hvcloud.server.orchestration import discovery, host_leases, host_updates
from hvcloud.server.orchestration.agents import (
    DEFAULT_AGENT_PORT,
    HOST_DOWN,
    HOST_UP,
    AgentError,
    AgentProtocolError,
    AgentUnavailable,
    HostNotConnected,
    guarded,
    wire_id,
)
from hvcloud.server.orchestration.discovery import AgentAddress, ConnectRequest, ConnectResult, PoolTarget
from hvcloud.server.orchestration.host_status import Timings
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer, Command

log = logs.get(__name__)

T = TypeVar("T")
FRESH_SECONDS = 300.0
TOMBSTONE_SECONDS = 600.0
SHARED_POOL_SCOPES = ("CLUSTER", "ZONE")
POOL_USABLE_STATES = ("Up",)


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
    last_report: dict[str, str] | None = None
    report_pending: bool = False
    task: asyncio.Task[None] | None = None
    #: commands sent and not yet answered; abandoned when the host is declared Down
    inflight: set[asyncio.Task[Answer]] = field(default_factory=set)


@dataclass
class Outcome:
    link: HostLink
    kind: Literal["connected", "pinged", "failed"]
    result: ConnectResult | None = None
    report: dict[str, str] | None = None
    stats: A.HostStatsEntry | None = None
    error: AgentError | None = None
    #: when the visit began, i.e. before the VM state report was requested
    taken: datetime | None = None


@dataclass
class ManagerStats:
    pings: int = 0
    connects: int = 0
    failures: int = 0
    batches: int = 0
    power_changes: int = 0
    ticks: int = 0
    claimed: int = 0
    released: int = 0
    remote_sends: int = 0
    history: list[str] = field(default_factory=list)


class AgentManager:
    def __init__(self, config: ServerConfig, sessions: sessionmaker[Session], box: SecretBox, *,
                 server_id: str | None = None) -> None:
        self.config = config
        self.sessions = sessions
        self.box = box
        #: this server's id in ``management_server``; None drives every host (no leases)
        self.server_id = server_id
        self._owned: frozenset[str] = frozenset()
        self._remote: dict[str, tuple[tuple[str | None, ...], AgentClient]] = {}
        #: commands sent to other servers' hosts and not yet answered, by host
        self._remote_inflight: dict[str, set[asyncio.Task[Answer]]] = {}
        self.timings = Timings(config.host_down_after_seconds, config.ping_retry_count)
        self.on_power_change: list[Callable[[list[power_sync.PowerChange]], None]] = []
        self.stats = ManagerStats()
        self._links: dict[str, HostLink] = {}
        self._fresh: dict[str, float] = {}
        self._tombstones: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._sem = asyncio.Semaphore(max(config.agent_concurrency, 1))
        self._queue: asyncio.Queue[Outcome] = asyncio.Queue()
        self._closing: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sem = asyncio.Semaphore(max(self.config.agent_concurrency, 1))
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._schedule(), name="agent-scheduler"),
                       asyncio.create_task(self._write(), name="agent-writer")]
        if self.server_id is not None:
            self._tasks.append(asyncio.create_task(self._lease_loop(), name="agent-leases"))
            self._tasks.append(asyncio.create_task(self._watch_remote(), name="agent-remote-watch"))

    async def stop(self) -> None:
        tasks = list(self._tasks) + [link.task for link in self._links.values() if link.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in list(self._links.values()):
            await link.client.aclose()
        self._links.clear()
        for _key, client in self._remote.values():
            await client.aclose()
        self._remote.clear()
        self._tasks = []
        self._loop = None
        if self.server_id is not None:
            try:
                await asyncio.to_thread(self._release_all)
            except Exception:
                log.exception("releasing the hosts of this server failed", server=self.server_id)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def host_ids(self) -> set[str]:
        return set(self._links)

    def owned_host_ids(self) -> frozenset[str]:
        """The hosts the last ownership pass left to this server (every host without leases)."""
        return self._owned if self.server_id is not None else frozenset(self._links)

    # ------------------------------------------------------------------ called from worker threads

    def run_sync(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise HostNotConnected("the agent manager is not running")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise AgentUnavailable(f"no result within {timeout:g} s") from None

    def note_connected(self, host_id: str) -> None:
        """addHost has just connected this host: its first scheduled visit is a ping, not a connect."""
        self._call_soon(self._fresh.__setitem__, host_id, time.monotonic())

    def forget(self, host_id: str) -> None:
        """Stop pinging a host now (deleteHost) and keep ignoring its row until it is gone."""
        self._call_soon(self._forget, host_id)

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(fn, *args)

    def _forget(self, host_id: str) -> None:
        self._tombstones[host_id] = time.monotonic()
        self._fresh.pop(host_id, None)
        self._drop_remote(host_id)
        link = self._links.pop(host_id, None)
        if link is not None:
            self._close_link(link)

    def _close_link(self, link: HostLink) -> None:
        if link.task is not None:
            link.task.cancel()
        closing = asyncio.ensure_future(link.client.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ discovery and commands

    def new_client(self, address: AgentAddress, username: str | None, password: str | None,
                   fingerprint: str | None) -> AgentClient:
        return AgentClient(address.base_url, username=username, password=password, pinned_sha256=fingerprint,
                           verify=False, timeout=self.config.command_wait_seconds + 60,
                           connect_timeout=self.config.agent_connect_timeout_seconds, max_connections=4)

    async def discover(self, request: ConnectRequest, username: str | None, password: str | None) -> ConnectResult:
        """addHost: probe the agent, then run the connect sequence. Raises AgentError."""
        client = self.new_client(request.address, username, password, None)
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
        link = self._links.get(host_id)
        if link is None and host_id not in self._tombstones:
            # a host of ours that addHost connected moments ago, before the scheduler's next pass
            rows = await asyncio.to_thread(self._own_rows, host_id)
            link = self._link_for(rows[0]) if rows else None
        if link is not None and not link.connected and link.failures == 0 and link.task is not None:
            # a host this server has just claimed (or is reconnecting): its connect sequence is under way
            started = time.monotonic()
            await asyncio.wait({link.task}, timeout=min(timeout, self.config.connect_step_timeout_seconds))
            timeout = max(timeout - (time.monotonic() - started), 0.1)
        if link is None or not link.connected:
            if self.server_id is None:
                raise HostNotConnected(f"host {host_id} is not connected")
            return await self._send_remote(host_id, command, timeout)
        return await self._tracked(link.host_id, link.inflight, link.client.send(command), type(command).__name__,
                                   seconds=timeout)

    async def _tracked(self, host_id: str, inflight: set[asyncio.Task[Answer]], call: Coroutine[Any, Any, Answer],
                       what: str, *, seconds: float) -> Answer:
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

    @staticmethod
    def _abandon(tasks: set[asyncio.Task[Answer]]) -> None:
        for task in list(tasks):
            task.cancel()

    async def _watch_remote(self) -> None:
        """Every ping interval, while commands to other servers' hosts are outstanding: abandon those
        whose host its owner has declared Down (or that is gone), as the owner does with its own."""
        while True:
            await asyncio.sleep(self.config.ping_interval_seconds)
            waiting = [h for h, tasks in self._remote_inflight.items() if tasks]
            for host_id in [h for h, tasks in self._remote_inflight.items() if not tasks]:
                del self._remote_inflight[host_id]
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
                self._abandon(self._remote_inflight.get(host_id, set()))

    def _lost_hosts(self, host_ids: list[str]) -> set[str]:
        with self.sessions() as db:
            known = {h: st for h, st in db.execute(select(Host.id, Host.status).where(Host.id.in_(host_ids)))}
        return {h for h in host_ids if known.get(h) in (None, HOST_DOWN)}

    async def _send_remote(self, host_id: str, command: Command, deadline: float) -> Answer:
        """A host another live server owns (and reports Up) is sent to directly: agents accept
        several clients, and only the owner pings it and writes its state."""
        row = await asyncio.to_thread(self._remote_row, host_id)
        if row is None:
            raise HostNotConnected(f"host {host_id} is not connected")
        cached = self._remote.get(host_id)
        if cached is None or cached[0] != row.key:
            if cached is not None:
                self._close_client(cached[1])
            cached = (row.key, self._client_for(row))
            self._remote[host_id] = cached
        self.stats.remote_sends += 1
        inflight = self._remote_inflight.setdefault(host_id, set())
        return await self._tracked(host_id, inflight, cached[1].send(command), type(command).__name__,
                                   seconds=deadline)

    def _remote_row(self, host_id: str) -> HostRow | None:
        with self.sessions() as db:
            host = db.get(Host, host_id)
            if host is None or host.status != HOST_UP or host.owner_server_id in (None, self.server_id):
                return None
            if host_leases.owner_if_alive(db, host_id, self.config.lease_seconds) is None:
                return None
            return HostRow(host.id, host.guid, host.url, host.private_ip, host.agent_username,
                           host.agent_password_enc, host.cert_fingerprint)

    def send_sync(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        timeout = (wait or self.config.command_wait_seconds) + 5
        return self.run_sync(self.send(host_id, command, wait), timeout)

    async def reconnect(self, host_id: str) -> Outcome | None:
        """reconnectHost: drop the connection and run the connect sequence now; the outcome is written
        before this returns. None when the host row is gone."""
        link = self._links.get(host_id)
        if link is not None and link.task is not None:
            await asyncio.gather(link.task, return_exceptions=True)
        if self.server_id is not None:
            await asyncio.to_thread(self._take, host_id)
        rows = await asyncio.to_thread(self._load_rows, host_id)
        if not rows:
            return None
        link = self._link_for(rows[0])
        link.connected = False
        outcomes: list[Outcome] = []

        async def visit() -> None:
            outcomes.append(await self._visit(link))

        link.task = asyncio.create_task(visit())
        try:
            await link.task
        finally:
            link.task = None
        _, down = await asyncio.to_thread(self._apply, outcomes)
        for lost in down:
            self._abandon(lost.inflight)
        return outcomes[0]

    # ------------------------------------------------------------------ the loop

    async def _schedule(self) -> None:
        while True:
            try:
                rows = await asyncio.to_thread(self._load_rows, None)
                self._sync_links(rows)
                self.stats.ticks += 1
                for link in list(self._links.values()):
                    if link.task is None:
                        link.task = asyncio.create_task(self._service(link))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("agent scheduler pass failed")
            await asyncio.sleep(self.config.ping_interval_seconds)

    def _own_rows(self, host_id: str) -> list[HostRow]:
        """The host's row if this server drives it (it owns it, or there are no leases)."""
        with self.sessions() as db:
            owner = db.scalar(select(Host.owner_server_id).where(Host.id == host_id))
        if self.server_id is not None and owner != self.server_id:
            return []
        return self._load_rows(host_id)

    def _load_rows(self, host_id: str | None) -> list[HostRow]:
        with self.sessions() as db:
            stmt = select(Host.id, Host.guid, Host.url, Host.private_ip, Host.agent_username,
                          Host.agent_password_enc, Host.cert_fingerprint)
            if host_id is not None:
                stmt = stmt.where(Host.id == host_id)
            elif self.server_id is not None:
                stmt = stmt.where(Host.owner_server_id == self.server_id)
            return [HostRow(*r) for r in db.execute(stmt)]

    def _sync_links(self, rows: list[HostRow]) -> None:
        now = time.monotonic()
        present = {r.id for r in rows}
        for host_id in [h for h in self._links if h not in present or h in self._tombstones]:
            self._close_link(self._links.pop(host_id))
        for host_id, when in list(self._tombstones.items()):
            if host_id not in present or now - when > TOMBSTONE_SECONDS:
                del self._tombstones[host_id]
        for host_id, when in list(self._fresh.items()):
            if now - when > FRESH_SECONDS:
                del self._fresh[host_id]
        for row in rows:
            if row.id not in self._tombstones:
                self._link_for(row)

    def _link_for(self, row: HostRow) -> HostLink:
        link = self._links.get(row.id)
        if link is not None and link.key == row.key:
            return link
        if link is not None:
            self._close_link(link)
        client = self._client_for(row)
        link = HostLink(host_id=row.id, guid=row.guid or "", key=row.key, client=client,
                        connected=self._fresh.pop(row.id, None) is not None)
        self._links[row.id] = link
        return link

    def _client_for(self, row: HostRow) -> AgentClient:
        password = self.box.decrypt(row.password_enc) if row.password_enc else None
        try:
            name, port = discovery.parse_host_url(row.url)
        except discovery.HostUrlError:
            name, port = row.private_ip or "", DEFAULT_AGENT_PORT
        address = AgentAddress(name=name, ip=row.private_ip or name, port=port)
        return self.new_client(address, row.username, password, row.fingerprint)

    def _close_client(self, client: AgentClient) -> None:
        closing = asyncio.ensure_future(client.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ host ownership

    async def _lease_loop(self) -> None:
        """Balance host ownership; hosts just claimed (a dead server's, or a rebalance's) are
        connected at once, so a takeover costs one connect sequence, not a ping interval."""
        while True:
            try:
                outcome = await asyncio.to_thread(self._claim)
                lost = self._owned - outcome.owned - set(outcome.released)
                self._owned = outcome.owned
                if lost:
                    log.warning("hosts lost to other servers", server=self.server_id, hosts=len(lost))
                if outcome.claimed or outcome.released or lost:
                    self.stats.claimed += len(outcome.claimed)
                    self.stats.released += len(outcome.released)
                    log.info("host ownership changed", server=self.server_id, claimed=len(outcome.claimed),
                             released=len(outcome.released), owned=len(outcome.owned), share=outcome.share,
                             live_servers=outcome.live_servers)
                    await self._visit_new_links()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("host ownership pass failed")
            await asyncio.sleep(self.config.host_claim_interval_seconds)

    async def _visit_new_links(self) -> None:
        rows = await asyncio.to_thread(self._load_rows, None)
        before = dict(self._links)
        self._sync_links(rows)
        for host_id, link in self._links.items():
            self._drop_remote(host_id)
            if before.get(host_id) is not link and link.task is None:
                link.task = asyncio.create_task(self._service(link))

    def _drop_remote(self, host_id: str) -> None:
        cached = self._remote.pop(host_id, None)
        if cached is not None:
            self._close_client(cached[1])

    def _claim(self) -> host_leases.ClaimOutcome:
        assert self.server_id is not None
        with self.sessions.begin() as db:
            return host_leases.claim_pass(db, self.server_id, self.config.lease_seconds)

    def _take(self, host_id: str) -> None:
        assert self.server_id is not None
        with self.sessions.begin() as db:
            if host_leases.take(db, host_id, self.server_id):
                self._owned = self._owned | {host_id}

    def _release_all(self) -> None:
        assert self.server_id is not None
        with self.sessions.begin() as db:
            host_leases.release(db, self.server_id)
        self._owned = frozenset()

    async def _service(self, link: HostLink) -> None:
        try:
            async with self._sem:
                outcome = await self._visit(link)
            await self._queue.put(outcome)
        finally:
            link.task = None

    async def _visit(self, link: HostLink) -> Outcome:
        taken = utcnow()
        try:
            if not link.connected:
                request = await asyncio.to_thread(self._connect_request, link.host_id)
                if request is None:
                    raise HostNotConnected(f"host {link.host_id} has no zone, pod or cluster")
                result = await discovery.connect(link.client, request, self.config.connect_step_timeout_seconds,
                                                 self.config.ping_request_timeout_seconds)
                link.connected = not result.failed_pools
                link.failures = 0
                self.stats.connects += 1
                if not link.connected:
                    return Outcome(link, "connected", result=result)
                # the first VM report goes in with the connect: the host is never Up in the database
                # without its VMs' power states (which the power sweep would take for missing)
                report, stats = await self._ping(link)
                self.stats.pings += 1
                return Outcome(link, "connected", result=result, report=report, stats=stats, taken=taken)
            report, stats = await self._ping(link)
            link.failures = 0
            self.stats.pings += 1
            return Outcome(link, "pinged", report=report, stats=stats, taken=taken)
        except AgentError as exc:
            error: AgentError = exc
        except Exception as exc:
            log.exception("talking to a host failed", host=link.host_id)
            error = AgentProtocolError(f"{type(exc).__name__}: {str(exc)[:300]}")
        link.connected = False
        link.failures += 1
        self.stats.failures += 1
        return Outcome(link, "failed", error=error)

    async def _ping(self, link: HostLink) -> tuple[dict[str, str], A.HostStatsEntry | None]:
        timeout = self.config.ping_request_timeout_seconds
        report = await guarded(link.client.vm_state_report(), timeout, "HostVmStateReport")
        entries = {name: C.HostVmStateReportEntry(state=state, host=link.guid) for name, state in report.items()}
        ping = C.PingRoutingCommand(hostType="Routing", hostId=wire_id(link.host_id), hostVmStateReport=entries,
                                    gatewayAccessible=True, vnetAccessible=True, contextMap={})
        answer = await guarded(link.client.send(ping), timeout, "PingRoutingCommand")
        if not answer.result:
            raise AgentUnavailable(f"PingRoutingCommand failed: {answer.details or 'no details'}")
        stats = None
        if time.monotonic() - link.last_stats >= self.config.host_stats_interval_seconds:
            try:
                got = await guarded(link.client.send(C.GetHostStatsCommand(
                    hostGuid=link.guid, hostName=link.host_id, hostId=wire_id(link.host_id), contextMap={})),
                    timeout, "GetHostStatsCommand")
                if got.result and isinstance(got, A.GetHostStatsAnswer):
                    stats = got.hostStats
                link.last_stats = time.monotonic()
            except AgentError as exc:
                log.warning("host stats failed", host=link.host_id, reason=str(exc))
        return report, stats

    def _connect_request(self, host_id: str) -> ConnectRequest | None:
        with self.sessions() as db:
            host = db.get(Host, host_id)
            if host is None or host.pod_id is None or host.cluster_id is None or not host.guid:
                return None
            try:
                name, port = discovery.parse_host_url(host.url)
            except discovery.HostUrlError:
                name, port = host.private_ip or "", DEFAULT_AGENT_PORT
            address = AgentAddress(name=name, ip=host.private_ip or name, port=port)
            return ConnectRequest(host_id=host.id, guid=host.guid, address=address, zone_id=host.zone_id,
                                  pod_id=host.pod_id, cluster_id=host.cluster_id, hypervisor=host.hypervisor,
                                  pools=tuple(shared_pools(db, self.box, host.zone_id, host.cluster_id)),
                                  need_setup=False)

    async def _write(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                _, down = await asyncio.to_thread(self._apply, batch)
                for lost in down:
                    self._abandon(lost.inflight)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing agent outcomes failed", outcomes=len(batch))

    def _apply(self, batch: list[Outcome]) -> tuple[list[power_sync.PowerChange], list[HostLink]]:
        """Write a batch of outcomes in one transaction: the power changes it made, and the links
        of the hosts it declared Down."""
        changes: list[power_sync.PowerChange] = []
        down: list[HostLink] = []
        synced: list[tuple[HostLink, dict[str, str], bool]] = []
        grace = self.config.power_report_grace_seconds
        with self.sessions.begin() as db:
            now = utcnow()
            for o in batch:
                host = db.get(Host, o.link.host_id)
                if host is None or o.link.host_id in self._tombstones:
                    continue
                if self.server_id is not None and not host_leases.owns(host, self.server_id):
                    continue
                if o.kind == "connected" and o.result is not None:
                    host_updates.record_connect(db, host, o.result, now)
                if o.kind == "pinged" or (o.kind == "connected" and o.report is not None):
                    host_updates.record_ping(db, host, now, o.stats, o.taken)
                    if o.report is not None and (o.report != o.link.last_report or o.link.report_pending):
                        res = power_sync.apply_report(db, host.id, o.report, now, grace, o.taken)
                        changes.extend(res.changes)
                        synced.append((o.link, o.report, res.pending_missing))
                elif o.error is not None:
                    status = host_updates.record_failure(db, host, o.error, o.link.failures, now, self.timings)
                    if status == HOST_DOWN:
                        down.append(o.link)
        for link, report, pending in synced:
            link.last_report, link.report_pending = report, pending
        for o in batch:
            if o.kind == "failed":
                o.link.last_report = None  # the host's VMs became PowerUnknown: apply its next report
        self.stats.batches += 1
        if changes:
            self.stats.power_changes += len(changes)
            for listener in self.on_power_change:
                try:
                    listener(changes)
                except Exception:
                    log.exception("power change listener failed")
        return changes, down


def shared_pools(db: Session, box: SecretBox, zone_id: str, cluster_id: str) -> list[PoolTarget]:
    """The cluster's and the zone's shared pools a host must attach (CloudStack's StoragePoolMonitor)."""
    cluster = db.get(Cluster, cluster_id)
    stmt = select(StoragePool).where(StoragePool.zone_id == zone_id,
                                     StoragePool.scope.in_(SHARED_POOL_SCOPES),
                                     StoragePool.state.in_(POOL_USABLE_STATES)).order_by(StoragePool.created)
    out: list[PoolTarget] = []
    for pool in db.scalars(stmt):
        if pool.scope == "CLUSTER" and pool.cluster_id != cluster_id:
            continue
        if pool.scope == "ZONE" and cluster is not None and pool.hypervisor not in (None, cluster.hypervisor):
            continue
        out.append(PoolTarget(pool_id=pool.id, host=pool.host_address, path=pool.path, pool_type=pool.pool_type,
                              port=_port_of(pool.url), user_info=_user_info(box, pool)))
    return out


def _port_of(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _user_info(box: SecretBox, pool: StoragePool) -> str | None:
    """SMB pools carry their credentials to the agent as CloudStack does (``user:password``-style
    query parameters kept encrypted in the pool's details)."""
    if pool.pool_type != "SMB" or not pool.details_enc:
        return None
    details = json.loads(box.decrypt(pool.details_enc))
    user, password = details.get("user"), details.get("password")
    if not user:
        return None
    domain = details.get("domain")
    return f"{domain + '/' if domain else ''}{user}:{password or ''}"
