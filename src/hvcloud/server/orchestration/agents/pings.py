"""The ping loop: every ``ping.interval`` one visit per host this server drives, bounded by a
semaphore (``agent.concurrency``). A visit runs the connect sequence for a host that is new or came
back (its first ping follows at once and is written with it), else pings: HostVmStateReport, then
PingRoutingCommand carrying the report, every ``host.stats.interval`` a GetHostStatsCommand and every
``vm.stats.interval`` a GetVmStatsCommand for the VMs the report found running (at most
:data:`MAX_VM_STATS`).
Its :class:`~hvcloud.server.orchestration.agents.writer.Outcome` goes to the writer."""

from __future__ import annotations

import asyncio
import time

from hvcloud import logs
from hvcloud.server.db.models import Host, utcnow
from hvcloud.server.orchestration import discovery
from hvcloud.server.orchestration.agents import (
    AgentError,
    AgentProtocolError,
    AgentUnavailable,
    HostNotConnected,
    guarded,
    wire_id,
)
from hvcloud.server.orchestration.agents.links import HostLink, Links, agent_address
from hvcloud.server.orchestration.agents.pools import shared_pools
from hvcloud.server.orchestration.agents.scope import Part, Scope
from hvcloud.server.orchestration.agents.writer import Outcome, OutcomeWriter
from hvcloud.server.orchestration.discovery import ConnectRequest
from hvcloud.server.orchestration.vm.power_sync import POWER_ON
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C

log = logs.get(__name__)

#: the most VMs one GetVmStatsCommand asks about (a host running more gets the first ones, by name)
MAX_VM_STATS = 1000


class Pinger(Part):
    def __init__(self, scope: Scope, links: Links, writer: OutcomeWriter) -> None:
        super().__init__(scope)
        self.links = links
        self.writer = writer
        self._sem = asyncio.Semaphore(max(self.config.agent_concurrency, 1))

    def reset(self) -> None:
        """A new semaphore for the loop being started."""
        self._sem = asyncio.Semaphore(max(self.config.agent_concurrency, 1))

    async def run(self) -> None:
        """The scheduler: the host rows are the source of truth (a deleted host is no longer pinged,
        a new one is picked up); a host whose last visit is still under way is skipped."""
        while True:
            try:
                rows = await asyncio.to_thread(self.links.load_rows, None)
                self.links.sync(rows)
                self.stats.ticks += 1
                for link in list(self.links.by_host.values()):
                    if link.task is None:
                        self.start_visit(link)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("agent scheduler pass failed")
            await asyncio.sleep(self.config.ping_interval_seconds)

    def start_visit(self, link: HostLink) -> None:
        link.task = asyncio.create_task(self._service(link))

    async def _service(self, link: HostLink) -> None:
        try:
            async with self._sem:
                outcome = await self.visit(link)
            await self.writer.queue.put(outcome)
        finally:
            link.task = None

    async def visit(self, link: HostLink) -> Outcome:
        """Connect or ping the host; failures are outcomes too (never raised)."""
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
                return Outcome(link, "connected", result=result, report=report, stats=stats, taken=taken,
                               vm_stats=await self._vm_stats(link, report))
            report, stats = await self._ping(link)
            link.failures = 0
            self.stats.pings += 1
            return Outcome(link, "pinged", report=report, stats=stats, taken=taken,
                           vm_stats=await self._vm_stats(link, report))
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

    async def _vm_stats(self, link: HostLink, report: dict[str, str]) -> dict[str, A.VmStatsEntry] | None:
        """The running VMs' statistics when ``vm.stats.interval`` has passed (0: never); a failure is
        logged and tried again at the next interval, it never fails the ping."""
        interval = self.config.vm_stats_interval_seconds
        if interval <= 0 or time.monotonic() - link.last_vm_stats < interval:
            return None
        link.last_vm_stats = time.monotonic()
        names = sorted(name for name, state in report.items() if state == POWER_ON)[:MAX_VM_STATS]
        if not names:
            return None
        try:
            got = await guarded(link.client.send(C.GetVmStatsCommand(
                vmNames=names, hostGuid=link.guid, hostName=link.host_id, contextMap={})),
                self.config.ping_request_timeout_seconds, "GetVmStatsCommand")
        except AgentError as exc:
            log.warning("vm stats failed", host=link.host_id, reason=str(exc))
            return None
        if not got.result or not isinstance(got, A.GetVmStatsAnswer):
            return None
        self.stats.vm_stats += 1
        return {name: entry for name, entry in got.vmStatsMap.items() if name in report}

    def _connect_request(self, host_id: str) -> ConnectRequest | None:
        with self.sessions() as db:
            host = db.get(Host, host_id)
            if host is None or host.pod_id is None or host.cluster_id is None or not host.guid:
                return None
            return ConnectRequest(host_id=host.id, guid=host.guid, address=agent_address(host.url, host.private_ip),
                                  zone_id=host.zone_id, pod_id=host.pod_id, cluster_id=host.cluster_id,
                                  hypervisor=host.hypervisor,
                                  pools=tuple(shared_pools(db, self.box, host.zone_id, host.cluster_id)),
                                  need_setup=False)
