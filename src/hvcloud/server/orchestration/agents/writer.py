"""The batched writer: what visits to the agents found goes into the host rows, one transaction per
batch, in a worker thread; hosts it declares Down have their outstanding commands abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hvcloud import logs
from hvcloud.server.db.models import Host, utcnow
from hvcloud.server.orchestration import host_leases, host_updates
from hvcloud.server.orchestration.agents import HOST_DOWN, AgentError
from hvcloud.server.orchestration.agents.links import HostLink, Links
from hvcloud.server.orchestration.agents.scope import Part, Scope
from hvcloud.server.orchestration.agents.sending import abandon
from hvcloud.server.orchestration.discovery import ConnectResult
from hvcloud.server.orchestration.host_status import Timings
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.wire import answers as A

log = logs.get(__name__)


@dataclass
class Outcome:
    """What one visit to a host's agent found."""

    link: HostLink
    kind: Literal["connected", "pinged", "failed"]
    result: ConnectResult | None = None
    report: dict[str, str] | None = None
    stats: A.HostStatsEntry | None = None
    #: the running VMs' statistics by instance name, when this visit collected them
    vm_stats: dict[str, A.VmStatsEntry] | None = None
    error: AgentError | None = None
    #: when the visit began, i.e. before the VM state report was requested
    taken: datetime | None = None


class OutcomeWriter(Part):
    def __init__(self, scope: Scope, links: Links) -> None:
        super().__init__(scope)
        self.links = links
        self.on_power_change: list[Callable[[list[power_sync.PowerChange]], None]] = []
        self.queue: asyncio.Queue[Outcome] = asyncio.Queue()

    @property
    def timings(self) -> Timings:
        """From the current settings (``ping.interval`` x ``ping.timeout``, ``host.ping.retry.count``)."""
        return Timings(self.config.host_down_after_seconds, self.config.ping_retry_count)

    def reset(self) -> None:
        """A new queue for the loop being started."""
        self.queue = asyncio.Queue()

    async def run(self) -> None:
        """Write what is queued, all of it at a time."""
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                await self.write(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing agent outcomes failed", outcomes=len(batch))

    async def write(self, batch: list[Outcome]) -> None:
        """Apply a batch and abandon the commands outstanding on the hosts it declared Down."""
        _, down = await asyncio.to_thread(self.apply, batch)
        for lost in down:
            abandon(lost.inflight)

    def apply(self, batch: list[Outcome]) -> tuple[list[power_sync.PowerChange], list[HostLink]]:
        """Write a batch of outcomes in one transaction: the power changes it made, and the links
        of the hosts it declared Down."""
        changes: list[power_sync.PowerChange] = []
        down: list[HostLink] = []
        synced: list[tuple[HostLink, dict[str, str], bool]] = []
        vm_stats: list[tuple[str, dict[str, A.VmStatsEntry]]] = []
        grace = self.config.power_report_grace_seconds
        with self.sessions.begin() as db:
            now = utcnow()
            for o in batch:
                host = db.get(Host, o.link.host_id)
                if host is None or self.links.forgotten(o.link.host_id):
                    continue
                if self.server_id is not None and not host_leases.owns(host, self.server_id):
                    continue
                if o.kind == "connected" and o.result is not None:
                    host_updates.record_connect(db, host, o.result, now)
                if o.kind == "pinged" or (o.kind == "connected" and o.report is not None):
                    host_updates.record_ping(db, host, now, o.stats, o.taken)
                    if o.vm_stats:
                        vm_stats.append((host.id, o.vm_stats))
                    if o.report is not None and (o.report != o.link.last_report or o.link.report_pending):
                        res = power_sync.apply_report(db, host.id, o.report, now, grace, o.taken)
                        changes.extend(res.changes)
                        synced.append((o.link, o.report, res.pending_missing))
                elif o.error is not None:
                    status = host_updates.record_failure(db, host, o.error, o.link.failures, now, self.timings)
                    if status == HOST_DOWN:
                        down.append(o.link)
        if vm_stats:  # statistics only: a transaction of their own, after the hosts' state
            with self.sessions.begin() as db:
                host_updates.record_vm_stats(db, vm_stats, now)
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
