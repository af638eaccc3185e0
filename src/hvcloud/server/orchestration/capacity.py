"""Capacity per zone, pod and cluster (``listCapacity``), computed from hosts and pools.

Totals come from what the agents reported (Startup exchange, ModifyStoragePool, local pools), CPU and
memory multiplied by the overcommit factors as CloudStack does; "used" for CPU and memory is what the
VMs placed on the hosts hold (``planner``: allocated, not measured), for storage what the pools
report, and STORAGE_ALLOCATED what the volumes hold. CloudStack's capacity type numbers are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import Host, StoragePool
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration.agents import HOST_UP

CAPACITY_MEMORY = 0
CAPACITY_CPU = 1
CAPACITY_STORAGE = 2
CAPACITY_STORAGE_ALLOCATED = 3
CAPACITY_LOCAL_STORAGE = 9
CAPACITY_NAMES = {CAPACITY_MEMORY: "MEMORY", CAPACITY_CPU: "CPU", CAPACITY_STORAGE: "STORAGE",
                  CAPACITY_STORAGE_ALLOCATED: "STORAGE_ALLOCATED", CAPACITY_LOCAL_STORAGE: "LOCAL_STORAGE"}
#: hosts whose resources count: connected (CloudStack leaves out hosts that are down or in maintenance)
COUNTED_HOST_STATES = (HOST_UP,)


@dataclass(frozen=True)
class Scope:
    zone_id: str
    pod_id: str | None = None
    cluster_id: str | None = None


@dataclass
class CapacityEntry:
    capacity_type: int
    scope: Scope
    total: int = 0
    used: int = 0

    @property
    def percent_used(self) -> str:
        return f"{(100.0 * self.used / self.total) if self.total else 0.0:.2f}"


def compute(db: Session, *, zone_id: str | None = None, pod_id: str | None = None,
            cluster_id: str | None = None, by_cluster: bool = False) -> list[CapacityEntry]:
    """One entry per (scope, type); zone scope unless ``by_cluster`` (or pod/cluster filters) ask for finer."""
    fine = by_cluster or pod_id is not None or cluster_id is not None
    out: dict[tuple[Scope, int], CapacityEntry] = {}

    def add(scope: Scope, kind: int, total: int, used: int) -> None:
        entry = out.get((scope, kind))
        if entry is None:
            entry = out[(scope, kind)] = CapacityEntry(kind, scope)
        entry.total += max(total, 0)
        entry.used += max(used, 0)

    hosts = select(Host).where(Host.status.in_(COUNTED_HOST_STATES), Host.resource_state == "Enabled")
    pools = select(StoragePool).where(StoragePool.state == "Up")
    for column_h, column_p, value in ((Host.zone_id, StoragePool.zone_id, zone_id),
                                      (Host.pod_id, StoragePool.pod_id, pod_id),
                                      (Host.cluster_id, StoragePool.cluster_id, cluster_id)):
        if value is not None:
            hosts, pools = hosts.where(column_h == value), pools.where(column_p == value)
    for h in db.scalars(hosts):
        scope = Scope(h.zone_id, h.pod_id, h.cluster_id) if fine else Scope(h.zone_id)
        mhz, memory = planner.host_capacity(h)
        add(scope, CAPACITY_MEMORY, memory, h.memory_allocated)
        add(scope, CAPACITY_CPU, mhz, h.cpu_allocated)
    for p in db.scalars(pools):
        scope = Scope(p.zone_id, p.pod_id, p.cluster_id) if fine else Scope(p.zone_id)
        if p.scope == "HOST":
            add(scope, CAPACITY_LOCAL_STORAGE, p.capacity_bytes, p.used_bytes)
        else:
            add(scope, CAPACITY_STORAGE, p.capacity_bytes, p.used_bytes)
            add(scope, CAPACITY_STORAGE_ALLOCATED, p.capacity_bytes, p.allocated_bytes)
    return sorted(out.values(), key=lambda e: (e.scope.zone_id, e.scope.pod_id or "", e.scope.cluster_id or "",
                                               e.capacity_type))
