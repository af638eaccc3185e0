"""CloudStack's metrics plugin (``list*Metrics``): the base list's objects with the metrics fields added.

Each function takes the page of objects a base list command rendered and adds, in place, the fields
of CloudStack's ``VmMetricsResponse``, ``HostMetricsResponse``, ``VolumeMetricsResponse`` and
``ZoneMetricsResponse``, in the same units and text formats ("1.0 Ghz", "0.50 GiB", "12.50%"). What
they read beyond the base objects is loaded once per page. A field whose source is unknown (a VM
whose stats were never collected, a host that never reported) is left out, as CloudStack leaves it null.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Cluster, Host, VMInstance, VmStats
from hvcloud.server.orchestration import capacity
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.fields import format_date

GiB = 1024.0**3
#: CloudStack's out-of-band management power state of a host without out-of-band management
POWER_STATE_DISABLED = "Disabled"


def _percent(text: Any) -> float | None:
    """A ``"12.34%"`` field of a base object as a number."""
    try:
        return float(str(text).rstrip("%"))
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------ VMs


def add_vm_metrics(db: Session, items: list[dict[str, Any]]) -> None:
    """VmMetricsResponse: the UserVmResponse statistics (``cpuused``, ``networkkbsread``, ...) of
    Running VMs from their last collected stats, and the metrics fields."""
    stats = _vm_stats(db, [i["id"] for i in items if i.get("state") == S.RUNNING])
    for item in items:
        cpus, speed, memory = item.get("cpunumber"), item.get("cpuspeed"), item.get("memory")
        if cpus is not None and speed is not None:
            item["cputotal"] = f"{cpus * speed / 1000.0:.1f} Ghz"
        if memory is not None:
            item["memorytotal"] = f"{memory / 1024.0:.2f} GiB"
        nics = item.get("nic") or []
        default = next((n for n in nics if n.get("isdefault")), nics[0] if nics else None)
        if default is not None and default.get("ipaddress"):
            item["ipaddress"] = default["ipaddress"]
        row = stats.get(item["id"])
        if row is None or row.host_id != item.get("hostid"):
            continue
        item["cpuused"] = f"{row.cpu_used_percent:.2f}%"
        item["networkkbsread"], item["networkkbswrite"] = int(row.network_read_kbs), int(row.network_write_kbs)
        item["networkread"] = f"{int(row.network_read_kbs) / 1024.0:.2f} MiB"
        item["networkwrite"] = f"{int(row.network_write_kbs) / 1024.0:.2f} MiB"
        for field, metric, value in (("diskkbsread", "diskread", row.disk_read_kbs),
                                     ("diskkbswrite", "diskwrite", row.disk_write_kbs)):
            if value is not None:
                item[field] = int(value)
                item[metric] = f"{int(value) / 1024.0:.2f} MiB"
        if row.disk_read_ios is not None and row.disk_write_ios is not None:
            item["diskioread"], item["diskiowrite"] = int(row.disk_read_ios), int(row.disk_write_ios)
            item["diskiopstotal"] = int(row.disk_read_ios) + int(row.disk_write_ios)
        if row.memory_kbs is not None:
            item["memorykbs"] = int(row.memory_kbs)
        item["lastupdated"] = format_date(row.collected)


def _vm_stats(db: Session, vm_ids: list[str]) -> dict[str, VmStats]:
    if not vm_ids:
        return {}
    return {r.vm_id: r for r in db.scalars(select(VmStats).where(VmStats.vm_id.in_(vm_ids)))}


# ---------------------------------------------------------------------------------------------- hosts


def add_host_metrics(db: Session, config: ServerConfig, items: list[dict[str, Any]]) -> None:
    """HostMetricsResponse: capacities in GHz and GB, ``instances`` as "running / total" user VMs
    on the host, and the threshold flags against the ``cluster.*.capacity.*threshold`` settings."""
    running, total = _instances(db, [i["id"] for i in items])
    for item in items:
        item["powerstate"] = POWER_STATE_DISABLED
        item["instances"] = f"{running[item['id']]} / {total[item['id']]}"
        cpus, speed = item.get("cpunumber"), item.get("cpuspeed")
        used, allocated = _percent(item.get("cpuused")), _percent(item.get("cpuallocated"))
        if cpus is not None and speed is not None:
            item["cputotalghz"] = f"{cpus * speed / 1000.0:.2f} Ghz"
            if used is not None:
                item["cpuusedghz"] = f"{used * cpus * speed / 100000.0:.2f} Ghz"
            if allocated is not None:
                item["cpuallocatedghz"] = f"{allocated * cpus * speed / 100000.0:.2f} Ghz"
        mem_total, mem_used, mem_allocated = item.get("memorytotal"), item.get("memoryused"), \
            item.get("memoryallocated")
        for field, value in (("memorytotalgb", mem_total), ("memoryusedgb", mem_used),
                             ("memoryallocatedgb", mem_allocated)):
            if value is not None:
                item[field] = f"{value / GiB:.2f} GB"
        for field, kbs in (("networkread", item.get("networkkbsread")), ("networkwrite", item.get("networkkbswrite"))):
            if kbs is not None:
                item[field] = f"{kbs / (1024.0 * 1024.0):.2f} GB"
        for suffix, cpu_limit, memory_limit in (
                ("threshold", config.cpu_notification_threshold, config.memory_notification_threshold),
                ("disablethreshold", config.cpu_disable_threshold, config.memory_disable_threshold)):
            if used is not None:
                item[f"cpu{suffix}"] = used > 100.0 * cpu_limit
            if allocated is not None:
                item[f"cpuallocated{suffix}"] = allocated > 100.0 * cpu_limit
            if mem_total is not None:
                if mem_used is not None:
                    item[f"memory{suffix}"] = mem_used > mem_total * memory_limit
                if mem_allocated is not None:
                    item[f"memoryallocated{suffix}"] = mem_allocated > mem_total * memory_limit


def _instances(db: Session, host_ids: list[str]) -> tuple[Counter[str], Counter[str]]:
    """(Running, all) user VMs placed on each host, in one query."""
    running: Counter[str] = Counter()
    total: Counter[str] = Counter()
    if not host_ids:
        return running, total
    rows = db.execute(select(VMInstance.host_id, VMInstance.state, func.count())
                      .where(VMInstance.host_id.in_(host_ids), VMInstance.removed.is_(None))
                      .group_by(VMInstance.host_id, VMInstance.state))
    for host_id, state, count in rows:
        if host_id is None:
            continue
        total[host_id] += count
        if state == S.RUNNING:
            running[host_id] += count
    return running, total


# -------------------------------------------------------------------------------------------- volumes


def add_volume_metrics(items: list[dict[str, Any]], *, admin: bool) -> None:
    """VolumeMetricsResponse: ``sizegb``, and for admins ``storagetype`` as "Shared (ROOT)".
    ``diskiopstotal`` needs per-volume I/O counters, which no driver reports: left out."""
    for item in items:
        size = item.get("size")
        if size is not None:
            item["sizegb"] = f"{size / GiB:.2f} GiB"
        kind, volume_type = item.get("storagetype"), item.get("type")
        if admin and kind and volume_type:
            item["storagetype"] = f"{kind[:1].upper()}{kind[1:]} ({volume_type})"


# ---------------------------------------------------------------------------------------------- zones


class _ZoneHosts:
    """What CloudStack's zone metrics sum over a zone's hosts."""

    def __init__(self) -> None:
        self.hosts = 0
        self.cpu_used_percent = 0.0
        self.max_cpu_percent = 0.0
        self.memory_used = 0
        self.max_memory_used = 0

    def add(self, host: Host) -> None:
        self.hosts += 1
        if host.stats_updated is not None:
            cpu, memory = host.cpu_used_percent or 0.0, host.memory_used or 0
            self.cpu_used_percent += cpu
            self.memory_used += memory
            self.max_cpu_percent = max(self.max_cpu_percent, cpu)
            self.max_memory_used = max(self.max_memory_used, memory)


def add_zone_metrics(db: Session, config: ServerConfig, items: list[dict[str, Any]]) -> None:
    """ZoneMetricsResponse: ``clusters`` as "enabled and managed / total", CPU and memory totals
    and allocation from the capacity the zone's counted hosts offer (``capacity``), usage summed over
    the hosts' last reported stats, the maximum deviation and the threshold flags."""
    zone_ids = [i["id"] for i in items]
    if not zone_ids:
        return
    totals: dict[tuple[str, int], capacity.CapacityEntry] = {}
    for entry in capacity.compute(db):
        if entry.scope.zone_id in zone_ids:
            totals[(entry.scope.zone_id, entry.capacity_type)] = entry
    clusters_up: Counter[str] = Counter()
    clusters_all: Counter[str] = Counter()
    for zone_id, allocation, managed in db.execute(select(Cluster.zone_id, Cluster.allocation_state,
                                                          Cluster.managed_state)
                                                   .where(Cluster.zone_id.in_(zone_ids))):
        clusters_all[zone_id] += 1
        if allocation == "Enabled" and managed == "Managed":
            clusters_up[zone_id] += 1
    hosts: dict[str, _ZoneHosts] = {z: _ZoneHosts() for z in zone_ids}
    for host in _routing_hosts(db, zone_ids):
        hosts[host.zone_id].add(host)
    for item in items:
        zone_id = item["id"]
        item["state"] = item.get("allocationstate")
        item["clusters"] = f"{clusters_up[zone_id]} / {clusters_all[zone_id]}"
        cpu = totals.get((zone_id, capacity.CAPACITY_CPU)) or capacity.CapacityEntry(
            capacity.CAPACITY_CPU, capacity.Scope(zone_id))
        memory = totals.get((zone_id, capacity.CAPACITY_MEMORY)) or capacity.CapacityEntry(
            capacity.CAPACITY_MEMORY, capacity.Scope(zone_id))
        _zone_fields(item, config, hosts[zone_id], cpu, memory)


def _routing_hosts(db: Session, zone_ids: Iterable[str]) -> list[Host]:
    return list(db.scalars(select(Host).where(Host.zone_id.in_(list(zone_ids)), Host.host_type == "Routing")))


def _zone_fields(item: dict[str, Any], config: ServerConfig, hosts: _ZoneHosts, cpu: capacity.CapacityEntry,
                 memory: capacity.CapacityEntry) -> None:
    """CloudStack's formulas, including its maximum CPU deviation (a fraction printed with "%")."""
    n = hosts.hosts
    item["cputotal"] = f"{cpu.total / 1000.0:.2f} Ghz"
    if cpu.total:
        item["cpuallocated"] = f"{cpu.used * 100.0 / cpu.total:.2f}%"
    if hosts.cpu_used_percent > 0 and n:
        average = hosts.cpu_used_percent / n
        item["cpuused"] = f"{average:.2f}%"
        item["cpumaxdeviation"] = f"{(hosts.max_cpu_percent - average) / average:.2f}%"
    item["memorytotal"] = f"{memory.total / GiB:.2f} GB"
    if memory.total:
        item["memoryallocated"] = f"{memory.used * 100.0 / memory.total:.2f}%"
    if hosts.memory_used > 0 and n:
        average_memory = hosts.memory_used // n
        if memory.total:
            item["memoryused"] = f"{hosts.memory_used * 100.0 / memory.total:.2f}%"
        if average_memory:
            item["memorymaxdeviation"] = \
                f"{(hosts.max_memory_used - average_memory) * 100.0 / average_memory:.2f}%"
    for suffix, cpu_limit, memory_limit in (
            ("threshold", config.cpu_notification_threshold, config.memory_notification_threshold),
            ("disablethreshold", config.cpu_disable_threshold, config.memory_disable_threshold)):
        if n:
            item[f"cpu{suffix}"] = hosts.cpu_used_percent / (100.0 * n) > cpu_limit
        if cpu.total:
            item[f"cpuallocated{suffix}"] = cpu.used / cpu.total > cpu_limit
        if memory.total:
            item[f"memory{suffix}"] = hosts.memory_used / memory.total > memory_limit
            item[f"memoryallocated{suffix}"] = memory.used / memory.total > memory_limit
