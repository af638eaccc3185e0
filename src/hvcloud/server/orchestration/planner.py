"""Placement and capacity accounting.

A VM holds ``cpu_number x cpu_speed`` MHz and ``memory`` MiB on the host it is placed on, from the
moment it is placed until it stops, fails or is destroyed. The reservation is one conditional UPDATE
of the host row (``... WHERE cpu_allocated + need <= capacity``) together with setting the VM's
``capacity_host_id``, in the same transaction; the release clears ``capacity_host_id`` with a
conditional UPDATE and subtracts what the VM held. The conditional UPDATE takes the row lock on
PostgreSQL (and SQLite serialises writers), so concurrent placements can never overbook a host, and
the hosts' ``*_allocated`` columns always equal a recount of the VMs holding capacity
(:func:`recount`). Volumes hold ``size`` bytes of their pool's ``allocated_bytes`` the same way.

Capacity of a host: ``cpu_number x cpu_speed x cpu.overprovisioning.factor`` MHz and
``memory_total x mem.overprovisioning.factor`` bytes; the factors are the cluster's overcommit ratios,
or the zone details of the same names when the cluster keeps the default 1.0.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, Select, and_, bindparam, case, func, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hvcloud.server.db.models import Cluster, Host, Pod, StoragePool, VMInstance, Volume, Zone
from hvcloud.server.orchestration.agents import HOST_UP, RESOURCE_ENABLED

MiB = 1024 * 1024
CPU_FACTOR = "cpu.overprovisioning.factor"
MEM_FACTOR = "mem.overprovisioning.factor"
#: hosts read per placement query; more are read only when these all fail (tags, races, pools)
CANDIDATE_BATCH = 8


class PlacementError(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Need:
    cpu_mhz: int
    memory_bytes: int
    host_tags: tuple[str, ...] = ()
    local_storage: bool = False

    @classmethod
    def of(cls, vm: VMInstance) -> Need:
        offering = vm.service_offering
        tags = tuple(t.strip() for t in (offering.host_tags or "").split(",") if t.strip())
        return cls(vm.cpu_number * vm.cpu_speed, vm.memory * MiB, tags, offering.storage_type == "local")


@dataclass(frozen=True)
class Placement:
    host_id: str
    pool_id: str


def zone_details(zone: Zone) -> dict[str, str]:
    if not zone.details_json:
        return {}
    raw = json.loads(zone.details_json)
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def factors(cluster: Cluster | None, zone: Zone) -> tuple[float, float]:
    return overcommit(cluster.cpu_overcommit if cluster else None, cluster.memory_overcommit if cluster else None,
                      zone_details(zone))


def overcommit(cpu_value: str | None, memory_value: str | None, details: dict[str, str]) -> tuple[float, float]:
    """(CPU, memory) factors from a cluster's ratios, the zone details standing in for a default 1.0."""

    def one(cluster_value: str | None, name: str) -> float:
        try:
            value = float(cluster_value) if cluster_value is not None else 1.0
            if value == 1.0 and name in details:
                value = float(details[name])
        except ValueError:
            value = 1.0
        return value if value > 0 else 1.0

    return one(cpu_value, CPU_FACTOR), one(memory_value, MEM_FACTOR)


def host_capacity(host: Host) -> tuple[int, int]:
    """(CPU MHz, memory bytes) the host offers after overcommit."""
    cpu_f, mem_f = factors(host.cluster, host.zone)
    return (int((host.cpu_number or 0) * (host.cpu_speed or 0) * cpu_f), int((host.memory_total or 0) * mem_f))


def pool_capacity(pool: StoragePool) -> int | None:
    """Bytes a pool may allocate (capacity x overprovisioning factor); None when unknown."""
    if pool.capacity_bytes <= 0:
        return None
    try:
        factor = float(pool.overprovision_factor)
    except ValueError:
        factor = 1.0
    if pool.scope == "HOST":
        factor = 1.0
    return int(pool.capacity_bytes * max(factor, 1.0))


#: a zone's overcommit factors as :func:`candidate_statement` keys them: the defaults (CPU, memory)
#: and, for clusters that differ, (cluster id, CPU, memory)
FactorKey = tuple[tuple[float, float], tuple[tuple[str, float, float], ...]]


def _factor_key(db: Session, zone: Zone, clusters: list[Cluster]) -> FactorKey:
    """The zone's factors (per cluster, zone details for hosts without a cluster): the factors
    ``host_capacity`` applies.

    The zone's clusters are appended to ``clusters``: while the caller holds them, the session finds
    each candidate's cluster without a query (its identity map holds rows only as long as they are
    referenced)."""
    details = zone_details(zone)
    default = overcommit(None, None, details)
    clusters.extend(db.scalars(select(Cluster).where(Cluster.zone_id == zone.id)))
    differ = []
    for c in clusters:
        cpu, mem = overcommit(c.cpu_overcommit, c.memory_overcommit, details)
        if (cpu, mem) != default:
            differ.append((c.id, cpu, mem))
    return default, tuple(sorted(differ))


def _factor_exprs(key: FactorKey) -> tuple[ColumnElement[float], ColumnElement[float]]:
    """SQL expressions for a host's CPU and memory factors, for use in a WHERE clause."""
    default, differ = key
    exprs: list[ColumnElement[float]] = []
    for index in (0, 1):
        if all(f[index + 1] == default[index] for f in differ):
            exprs.append(literal(default[index], Float))
        else:
            exprs.append(case({f[0]: literal(f[index + 1], Float) for f in differ}, value=Host.cluster_id,
                              else_=literal(default[index], Float)))
    return exprs[0], exprs[1]


@functools.lru_cache(maxsize=256)
def candidate_statement(factors: FactorKey, limit: int | None, only: bool, hypervisor: bool,
                        avoid: bool, within: bool = False) -> Select[Host]:
    """The candidate query of one shape, built once: placements run it with bound values
    (``zone_id``, ``cpu_need``, ``memory_need`` and, as the shape asks, ``only``, ``hypervisor``,
    ``seen``, ``within``) instead of building its expression tree every time."""
    cpu_f, mem_f = _factor_exprs(factors)
    cpu_cap = func.coalesce(Host.cpu_number, 0) * func.coalesce(Host.cpu_speed, 0) * cpu_f
    mem_cap = func.coalesce(Host.memory_total, 0) * mem_f
    stmt = (select(Host).join(Cluster, Host.cluster_id == Cluster.id).join(Pod, Host.pod_id == Pod.id)
            .where(Host.zone_id == bindparam("zone_id"), Host.status == HOST_UP,
                   Host.resource_state == RESOURCE_ENABLED, Host.host_type == "Routing",
                   Cluster.allocation_state == "Enabled", Pod.allocation_state == "Enabled",
                   Host.cpu_allocated + bindparam("cpu_need") <= cpu_cap,
                   Host.memory_allocated + bindparam("memory_need") <= mem_cap)
            .order_by((mem_cap - Host.memory_allocated).desc(), func.random()))
    if only:
        stmt = stmt.where(Host.id == bindparam("only"))
    if hypervisor:
        stmt = stmt.where(func.lower(Host.hypervisor) == bindparam("hypervisor"))
    if avoid:
        stmt = stmt.where(Host.id.not_in(bindparam("seen", expanding=True)))
    if within:
        stmt = stmt.where(Host.id.in_(bindparam("within", expanding=True)))
    return stmt.limit(limit) if limit is not None else stmt


def candidate_hosts(db: Session, zone_id: str, need: Need, *, hypervisor: str | None = None,
                    only: str | None = None, avoid: Iterable[str] = (),
                    within: Iterable[str] | None = None) -> Iterator[Host]:
    """Up, enabled hosts in enabled clusters and pods of the zone with the tags and the free CPU and
    memory, most free memory first (ties at random, so concurrent deploys spread); none of ``avoid``
    and, when ``within`` is given, only those (a VM's affinity groups).

    The database filters and orders them, and hands over a few at a time: the first batch nearly
    always takes the VM, so a placement reads a handful of host rows whatever the zone's size."""
    allowed = None if within is None else list(within)
    if allowed is not None and not allowed:
        return
    zone = db.get(Zone, zone_id)
    if zone is None:
        return
    clusters: list[Cluster] = []
    factors = _factor_key(db, zone, clusters)
    values: dict[str, object] = {"zone_id": zone_id, "cpu_need": need.cpu_mhz, "memory_need": need.memory_bytes}
    if only is not None:
        values["only"] = only
    if hypervisor:
        values["hypervisor"] = hypervisor.lower()
    if allowed is not None:
        values["within"] = allowed
    seen = set(avoid)
    for limit in (CANDIDATE_BATCH, None):
        stmt = candidate_statement(factors, limit, only is not None, bool(hypervisor), bool(seen), allowed is not None)
        batch = list(db.scalars(stmt, {**values, "seen": list(seen)} if seen else values))
        for host in batch:
            seen.add(host.id)
            tags = {t.strip() for t in (host.host_tags or "").split(",") if t.strip()}
            if set(need.host_tags) <= tags:
                yield host
        if limit is not None and len(batch) < limit:
            return


def pools_for(db: Session, host: Host, *, local: bool) -> list[StoragePool]:
    """Up pools the host can use: its own local pool for local offerings, else its cluster's and the
    zone's shared pools."""
    stmt = select(StoragePool).where(StoragePool.zone_id == host.zone_id, StoragePool.state == "Up")
    if local:
        stmt = stmt.where(StoragePool.scope == "HOST", StoragePool.host_id == host.id)
    else:
        stmt = stmt.where(
            ((StoragePool.scope == "CLUSTER") & (StoragePool.cluster_id == host.cluster_id))
            | (StoragePool.scope == "ZONE"))
    return list(db.scalars(stmt.order_by(StoragePool.created)))


def host_sees_pool(host: Host, pool: StoragePool) -> bool:
    if pool.scope == "HOST":
        return pool.host_id == host.id
    if pool.scope == "CLUSTER":
        return pool.cluster_id == host.cluster_id
    return pool.zone_id == host.zone_id


def reserve_host(db: Session, vm: VMInstance, host: Host, need: Need) -> bool:
    """Atomically book the VM's CPU and memory on ``host``; False when it no longer fits."""
    if vm.capacity_host_id is not None:
        return vm.capacity_host_id == host.id
    cpu_cap, mem_cap = host_capacity(host)
    booked = db.execute(
        update(Host).where(Host.id == host.id, Host.status == HOST_UP, Host.resource_state == RESOURCE_ENABLED,
                           Host.cpu_allocated + need.cpu_mhz <= cpu_cap,
                           Host.memory_allocated + need.memory_bytes <= mem_cap)
        .values(cpu_allocated=Host.cpu_allocated + need.cpu_mhz,
                memory_allocated=Host.memory_allocated + need.memory_bytes)
        .execution_options(synchronize_session=False))
    if booked.rowcount != 1:  # type: ignore[attr-defined]
        return False
    claimed = db.execute(update(VMInstance).where(VMInstance.id == vm.id, VMInstance.capacity_host_id.is_(None))
                         .values(capacity_host_id=host.id).execution_options(synchronize_session=False))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise PlacementError(f"VM {vm.instance_name} was placed twice at once")
    set_committed_value(vm, "capacity_host_id", host.id)
    return True


def hold_host(db: Session, vm: VMInstance, host: Host) -> None:
    """Book the VM on ``host`` without a capacity check: it is already running there (power sync)."""
    if vm.capacity_host_id is not None:
        release_host(db, vm)
    need = Need.of(vm)
    db.execute(update(Host).where(Host.id == host.id)
               .values(cpu_allocated=Host.cpu_allocated + need.cpu_mhz,
                       memory_allocated=Host.memory_allocated + need.memory_bytes)
               .execution_options(synchronize_session=False))
    db.execute(update(VMInstance).where(VMInstance.id == vm.id).values(capacity_host_id=host.id)
               .execution_options(synchronize_session=False))
    set_committed_value(vm, "capacity_host_id", host.id)


def release_host(db: Session, vm: VMInstance) -> None:
    """Give back what the VM holds (idempotent: a second call finds nothing to release)."""
    held = db.scalar(select(VMInstance.capacity_host_id).where(VMInstance.id == vm.id))
    if held is None:
        set_committed_value(vm, "capacity_host_id", None)
        return
    freed = db.execute(update(VMInstance).where(VMInstance.id == vm.id, VMInstance.capacity_host_id == held)
                       .values(capacity_host_id=None).execution_options(synchronize_session=False))
    if freed.rowcount == 1:  # type: ignore[attr-defined]
        db.execute(update(Host).where(Host.id == held)
                   .values(cpu_allocated=Host.cpu_allocated - vm.cpu_number * vm.cpu_speed,
                           memory_allocated=Host.memory_allocated - vm.memory * MiB)
                   .execution_options(synchronize_session=False))
    set_committed_value(vm, "capacity_host_id", None)


def reserve_pool(db: Session, volume: Volume, pool: StoragePool) -> bool:
    """Atomically book the volume's size on ``pool``; False when the pool is full."""
    if volume.allocated_size and volume.pool_id == pool.id:
        return True
    cap = pool_capacity(pool)
    cond = [StoragePool.id == pool.id]
    if cap is not None:
        cond.append(StoragePool.allocated_bytes + volume.size <= cap)
    booked = db.execute(update(StoragePool).where(and_(*cond))
                        .values(allocated_bytes=StoragePool.allocated_bytes + volume.size)
                        .execution_options(synchronize_session=False))
    if booked.rowcount != 1:  # type: ignore[attr-defined]
        return False
    volume.pool, volume.pool_id, volume.allocated_size = pool, pool.id, volume.size
    return True


def rebook_pool(db: Session, volume: Volume, size: int) -> bool:
    """Change what a volume holds on its pool to ``size`` bytes: growth is one conditional UPDATE
    (False when the pool has no room), shrinking always succeeds. A volume holding nothing yet
    (not placed) has nothing to change."""
    if not volume.allocated_size or volume.pool_id is None:
        return True
    delta = size - volume.allocated_size
    cond = [StoragePool.id == volume.pool_id]
    if delta > 0 and volume.pool is not None and (cap := pool_capacity(volume.pool)) is not None:
        cond.append(StoragePool.allocated_bytes + delta <= cap)
    booked = db.execute(update(StoragePool).where(and_(*cond))
                        .values(allocated_bytes=StoragePool.allocated_bytes + delta)
                        .execution_options(synchronize_session=False))
    if booked.rowcount != 1:  # type: ignore[attr-defined]
        return False
    volume.allocated_size = size
    return True


def release_pool(db: Session, volume: Volume) -> None:
    """Give back the volume's pool space (idempotent, like :func:`release_host`: of two concurrent
    releases, e.g. a rollback and the storage cleanup finishing the same delete, one frees it)."""
    if not volume.allocated_size or volume.pool_id is None:
        return
    held = db.execute(select(Volume.allocated_size, Volume.pool_id).where(Volume.id == volume.id)).first()
    if held is not None and held.allocated_size and held.pool_id is not None:
        freed = db.execute(update(Volume).where(Volume.id == volume.id, Volume.allocated_size == held.allocated_size,
                                                Volume.pool_id == held.pool_id)
                           .values(allocated_size=0).execution_options(synchronize_session=False))
        if freed.rowcount == 1:  # type: ignore[attr-defined]
            db.execute(update(StoragePool).where(StoragePool.id == held.pool_id)
                       .values(allocated_bytes=StoragePool.allocated_bytes - held.allocated_size)
                       .execution_options(synchronize_session=False))
    volume.allocated_size = 0


def fitting(db: Session, vm: VMInstance, need: Need, *, avoid: Iterable[str] = (), root_size: int = 0,
            hypervisor: str | None = None, volumes: list[Volume] | None = None,
            within: Iterable[str] | None = None) -> Iterator[tuple[Host, StoragePool | None]]:
    """Hosts with room for ``vm`` as the database reads now, best first, each with the pool for its
    root volume (the one it has when Ready, else the host's first pool with room); nothing is booked
    (:func:`reserve_host` books, and may still find a host full). ``volumes``: the VM's live volumes
    when the caller has read them already; ``within``: only these hosts (affinity)."""
    if volumes is None:
        root = db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.volume_type == "ROOT",
                                               Volume.removed.is_(None))).first()
    else:
        root = next((v for v in volumes if v.volume_type == "ROOT"), None)
    existing_pool = root.pool if root is not None and root.pool_id is not None and root.state == "Ready" else None
    for host in candidate_hosts(db, vm.zone_id, need, hypervisor=hypervisor, only=vm.requested_host_id, avoid=avoid,
                                within=within):
        if existing_pool is not None:
            if host_sees_pool(host, existing_pool):
                yield host, existing_pool
            continue
        pools = pools_for(db, host, local=need.local_storage)
        pools = [p for p in pools if (cap := pool_capacity(p)) is None or p.allocated_bytes + root_size <= cap]
        if pools:
            yield host, pools[0]


def no_room(vm: VMInstance, need: Need, avoid: Iterable[str] = (), affinity: str | None = None) -> PlacementError:
    """``avoid``: hosts that failed this start; ``affinity``: what the VM's affinity groups allow."""
    where = f"host {vm.requested_host_id}" if vm.requested_host_id else "the zone"
    tags = f" with host tags {','.join(need.host_tags)}" if need.host_tags else ""
    rules = f" that satisfies its affinity groups ({affinity})" if affinity else ""
    return PlacementError(
        f"Unable to create a deployment for VM {vm.instance_name}: no host in {where}{tags}{rules} has "
        f"{need.cpu_mhz} MHz of CPU and {need.memory_bytes // MiB} MiB of memory free and a usable "
        f"primary storage pool" + (f" (avoided {len(set(avoid))} host(s) that failed)" if avoid else ""))


def choose(db: Session, vm: VMInstance, *, avoid: Iterable[str] = (), root_size: int = 0,
           hypervisor: str | None = None, volumes: list[Volume] | None = None) -> tuple[Host, StoragePool | None]:
    """Pick and book a host for ``vm`` (and a pool for its root volume when it has none yet);
    ``volumes``: the VM's live volumes when the caller has read them already.

    Raises PlacementError with the reason when nothing fits."""
    need = Need.of(vm)
    for host, pool in fitting(db, vm, need, avoid=avoid, root_size=root_size, hypervisor=hypervisor,
                              volumes=volumes):
        if reserve_host(db, vm, host, need):
            return host, pool
    raise no_room(vm, need, avoid)


def recount(db: Session) -> tuple[dict[str, tuple[int, int]], dict[str, int]]:
    """What the hosts and pools should hold, counted from the VMs and volumes."""
    hosts: dict[str, tuple[int, int]] = {}
    for host_id, cpu, mem in db.execute(
            select(VMInstance.capacity_host_id, func.sum(VMInstance.cpu_number * VMInstance.cpu_speed),
                   func.sum(VMInstance.memory)).where(VMInstance.capacity_host_id.is_not(None))
            .group_by(VMInstance.capacity_host_id)):
        hosts[str(host_id)] = (int(cpu or 0), int(mem or 0) * MiB)
    pools: dict[str, int] = {}
    for pool_id, size in db.execute(select(Volume.pool_id, func.sum(Volume.allocated_size))
                                    .where(Volume.pool_id.is_not(None)).group_by(Volume.pool_id)):
        pools[str(pool_id)] = int(size or 0)
    return hosts, pools
