"""Writing what the agents told us into the host, pool and alert rows (one transaction per batch)."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Host, StoragePool, VMInstance, VmStats
from hvcloud.server.orchestration.agents import (
    HOST_ALERT,
    HOST_DISCONNECTED,
    HOST_DOWN,
    HOST_UP,
    AgentError,
)
from hvcloud.server.orchestration.alerts import ALERT_TYPE_HOST, raise_alert
from hvcloud.server.orchestration.discovery import ConnectResult
from hvcloud.server.orchestration.host_status import Timings, status_after_failure
from hvcloud.server.orchestration.vm import power_sync
from hvcloud.wire.answers import HostStatsEntry, VmStatsEntry

LOCAL_POOL_SCOPE = "HOST"
LOCAL_POOL_TYPE = "Filesystem"
BAD_STATE_SUBJECTS = {HOST_DISCONNECTED: "Host disconnected", HOST_DOWN: "Host is down",
                      HOST_ALERT: "Host is in alert state"}


def set_status(db: Session, host: Host, status: str, reason: str | None, now: datetime) -> None:
    """Change the state, keep ``disconnected`` and raise CloudStack-style host alerts on transitions;
    a host that leaves Up makes its VMs' power states unknown."""
    old = host.status
    host.status_reason = reason[:1024] if reason else None
    if old == status:
        return
    host.status = status
    if status == HOST_UP:
        host.disconnected_at = None
    elif host.disconnected_at is None:
        host.disconnected_at = now
    if old == HOST_UP:
        power_sync.mark_host_unknown(db, host.id, now)
    subject = BAD_STATE_SUBJECTS.get(status)
    if subject is None and status == HOST_UP and old in BAD_STATE_SUBJECTS:
        subject = "Host is up"
    if subject is not None:
        text = f"{subject}, name: {host.name} (id: {host.id}), ip: {host.private_ip}"
        if reason:
            text += f": {reason[:512]}"
        raise_alert(db, ALERT_TYPE_HOST, text, zone_id=host.zone_id, pod_id=host.pod_id, cluster_id=host.cluster_id)


def record_connect(db: Session, host: Host, result: ConnectResult, now: datetime) -> None:
    facts = result.facts
    host.cpu_number, host.cpu_sockets = facts.cpus, facts.cpu_sockets
    host.cpu_speed, host.memory_total = facts.speed_mhz, facts.memory_bytes
    host.hypervisor_version, host.capabilities = facts.hypervisor_version, facts.caps
    host.console_port = _port(facts.details.get("rdp.server.port"))
    if host.cert_fingerprint is None and result.fingerprint:
        host.cert_fingerprint = result.fingerprint
    host.last_pinged = now
    for outcome in result.pools:
        pool = db.get(StoragePool, outcome.pool_id)
        if pool is not None and outcome.ok and outcome.capacity_bytes is not None:
            pool.capacity_bytes = outcome.capacity_bytes
            if outcome.available_bytes is not None:
                pool.used_bytes = max(outcome.capacity_bytes - outcome.available_bytes, 0)
    _record_local_pool(db, host, result)
    failed = result.failed_pools
    if failed:
        names = ", ".join(f"{p.pool_id}: {p.details or 'failed'}" for p in failed)
        set_status(db, host, HOST_ALERT, f"Unable to attach storage pools to the host: {names}", now)
    else:
        set_status(db, host, HOST_UP, None, now)


def _record_local_pool(db: Session, host: Host, result: ConnectResult) -> None:
    """A zone with local storage enabled gets the host's local pool from the startup exchange."""
    info = result.facts.local_pool
    if info is None or not host.zone.local_storage_enabled or not info.localPath:
        return
    pool = db.scalars(select(StoragePool).where(StoragePool.host_id == host.id,
                                                StoragePool.scope == LOCAL_POOL_SCOPE)).first()
    if pool is None:
        pool = StoragePool(name=f"{host.name} Local Storage"[:255], zone_id=host.zone_id, pod_id=host.pod_id,
                           cluster_id=host.cluster_id, host_id=host.id, scope=LOCAL_POOL_SCOPE,
                           pool_type=LOCAL_POOL_TYPE, host_address=host.private_ip or "", path=info.localPath,
                           url=f"file://{info.localPath}", hypervisor=host.hypervisor, state="Up")
        db.add(pool)
    pool.path = info.localPath[:1024]
    pool.external_uuid = (info.uuid or host.guid or "")[:255] or None
    capacity = info.capacityBytes or 0
    pool.capacity_bytes = capacity
    pool.used_bytes = max(capacity - (info.availableBytes or 0), 0) if info.availableBytes is not None else 0


def record_ping(db: Session, host: Host, now: datetime, stats: HostStatsEntry | None,
                requested: datetime | None = None) -> None:
    """``requested``: when the ping (and its VM report) was asked for; ``last_pinged`` keeps that
    time so the power sweep never judges a VM by a report requested before the VM started."""
    host.last_pinged = min(requested, now) if requested is not None else now
    if stats is not None:
        host.cpu_used_percent = round(max(0.0, min(stats.cpuUtilization, 100.0)), 2)
        total, free = stats.totalMemoryKBs, stats.freeMemoryKBs
        host.memory_used = int(max(total - free, 0.0) * 1024) if total > 0 else None
        host.network_read_kbs, host.network_write_kbs = stats.networkReadKBs, stats.networkWriteKBs
        host.stats_updated = now
    set_status(db, host, HOST_UP, None, now)


#: VMs per statement when stats are written (bounds the IN lists and each executemany)
VM_STATS_CHUNK = 500


def record_vm_stats(db: Session, reports: list[tuple[str, dict[str, VmStatsEntry]]], now: datetime) -> None:
    """Replace the ``vm_stats`` rows of the VMs hosts reported on (``reports``: host id and what it
    reported): only VMs placed on the reporting host (a name a host reports for another host's VM,
    or a router's, is ignored). All reads come first, then one bulk INSERT and one bulk UPDATE per
    chunk of VMs: every running VM's row changes on every collection (10,000 rows a minute in a
    large zone), and on SQLite the write lock is held for the writes only."""
    rows: list[dict[str, object]] = []
    existing: set[str] = set()
    wanted = [(host_id, name, entry) for host_id, stats in reports for name, entry in stats.items()]
    for start in range(0, len(wanted), VM_STATS_CHUNK):
        chunk = wanted[start:start + VM_STATS_CHUNK]
        placed = {(h, n): vm_id for h, n, vm_id in db.execute(
            select(VMInstance.host_id, VMInstance.instance_name, VMInstance.id)
            .where(VMInstance.instance_name.in_({n for _, n, _ in chunk}), VMInstance.removed.is_(None)))}
        found = [(placed[h, n], h, e) for h, n, e in chunk if (h, n) in placed]
        existing.update(db.scalars(select(VmStats.vm_id).where(VmStats.vm_id.in_([v for v, _, _ in found]))))
        rows += [_stats_row(vm_id, host_id, entry, now) for vm_id, host_id, entry in found]
    for start in range(0, len(rows), VM_STATS_CHUNK):
        chunk_rows = rows[start:start + VM_STATS_CHUNK]
        added = [r for r in chunk_rows if r["vm_id"] not in existing]
        changed = [r for r in chunk_rows if r["vm_id"] in existing]
        if added:
            db.execute(insert(VmStats), added)
        if changed:
            db.execute(update(VmStats), changed)  # by primary key, one executemany


def _stats_row(vm_id: str, host_id: str, entry: VmStatsEntry, now: datetime) -> dict[str, object]:
    return {"vm_id": vm_id, "host_id": host_id, "collected": now,
            "cpu_used_percent": round(_finite(entry.cpuUtilization, 0.0, 100.0), 2),
            "network_read_kbs": _finite(entry.networkReadKBs), "network_write_kbs": _finite(entry.networkWriteKBs),
            "disk_read_kbs": _maybe(entry.diskReadKBs), "disk_write_kbs": _maybe(entry.diskWriteKBs),
            "disk_read_ios": _maybe(entry.diskReadIOs), "disk_write_ios": _maybe(entry.diskWriteIOs),
            "memory_kbs": _maybe(entry.memoryKBs)}


def _finite(value: float, low: float = 0.0, high: float = 1e18) -> float:
    """A reported number made safe to store and show: NaN and infinities become ``low``, the rest is
    clamped (an agent's answer is input like any other)."""
    return min(max(value, low), high) if math.isfinite(value) else low


def _maybe(value: float | None) -> float | None:
    return None if value is None else _finite(value)


def record_failure(db: Session, host: Host, error: AgentError, failures: int, now: datetime,
                   timings: Timings) -> str:
    heard = host.last_pinged or host.created
    silent = (now - heard).total_seconds()
    status = status_after_failure(host.status, error, failures, silent, timings)
    set_status(db, host, status, str(error), now)
    return status


def _port(value: object) -> int | None:
    """A TCP port an agent reported, or None when it is absent or not one."""
    try:
        port = int(str(value))
    except ValueError:
        return None
    return port if 0 < port < 65536 else None
