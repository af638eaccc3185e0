"""Implementing a guest network: which networks need a router, their segment ids and trunk labels.

A network is *implemented* when its first VM starts: an isolated network takes the lowest free
segment id (VLAN id or VXLAN VNI) of its physical network's ``vnet_range`` by inserting a
``guest_vnet`` row (its primary key makes two networks taking one id impossible, whichever server
allocates), and gives it back when it is shut down; a shared network keeps the segment its admin
gave it. Every transaction here that changes a network first takes the network's row lock
(:func:`lock_network`), so concurrent first deploys on one network take one segment id and start
one router.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.models import GuestVnet, Network, PhysicalNetwork, Zone
from hvcloud.server.errors import INSUFFICIENT_CAPACITY
from hvcloud.server.jobs.handlers import JobFailure
from hvcloud.server.orchestration import planner
from hvcloud.server.orchestration.networks import physical as P
from hvcloud.server.orchestration.networks import validation as V

log = logs.get(__name__)

#: network states (CloudStack's Network.State)
ALLOCATED = "Allocated"
IMPLEMENTING = "Implementing"
IMPLEMENTED = "Implemented"
SHUTDOWN = "Shutdown"
DESTROY = "Destroy"

ISOLATED = "Isolated"
SHARED = "Shared"
L2 = "L2"
VIRTUAL_ROUTER = "VirtualRouter"
#: what a shared network's router is for
ROUTER_SERVICES = ("Dhcp", "Dns", "UserData")
#: the zone detail naming the guest bridge of zones without physical networks (as the VM API reads it)
NETWORK_LABEL_DETAIL = "guest.network.label"
DEFAULT_LABEL = "guest"
DEFAULT_DOMAIN = "cloud.internal"

#: VLAN ids 0..4095, VXLAN VNIs 0..2^24-1; a range list longer than this is refused as hostile


def offering_services(services_json: str | None) -> dict[str, list[str]]:
    """The offering's ``{service: [providers]}``; anything malformed reads as no services."""
    try:
        raw = json.loads(services_json or "{}")
    except ValueError:
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, list[str]] = {}
    for service, providers in raw.items():
        if isinstance(providers, str):
            providers = [providers]
        if isinstance(service, str) and isinstance(providers, list):
            out[service] = [p for p in providers if isinstance(p, str)]
    return out


def needs_router(network: Network) -> bool:
    """Isolated networks get a router unless their offering lists services none of which the
    VirtualRouter provides; shared networks when their offering has Dhcp, Dns or UserData by the
    VirtualRouter; L2 networks never."""
    if network.guest_type == L2 or network.removed is not None:
        return False
    services = offering_services(network.offering.services_json if network.offering is not None else None)
    if network.guest_type == ISOLATED:
        return not services or any(VIRTUAL_ROUTER in p for p in services.values())
    return any(VIRTUAL_ROUTER in services.get(s, []) for s in ROUTER_SERVICES)


def free_ids(ranges: list[tuple[int, int]], taken: set[int]) -> Iterator[int]:
    """The ids of ``ranges`` not in ``taken``, lowest first (each id once, however ranges overlap)."""
    last = -1
    for low, high in ranges:
        for n in range(max(low, last + 1), high + 1):
            if n not in taken:
                yield n
        last = max(last, high)


def lock_network(db: Session, network_id: str) -> Network | None:
    """The network's row, locked until the transaction ends (a no-op UPDATE first: the row lock on
    PostgreSQL, the database's write lock on SQLite, so what this transaction reads next is current)."""
    db.execute(update(Network).where(Network.id == network_id).values(state=Network.state)
               .execution_options(synchronize_session=False))
    return db.scalars(select(Network).where(Network.id == network_id)
                      .execution_options(populate_existing=True)).first()


def physical_network_of(db: Session, network: Network) -> PhysicalNetwork | None:
    """The network's physical network, or the zone's one that carries guest traffic."""
    if network.physical_network_id is not None:
        return db.get(PhysicalNetwork, network.physical_network_id)
    return P.guest_physical_network(db, network.zone_id)


def isolation_method(pn: PhysicalNetwork | None) -> str:
    """``vxlan`` or ``vlan`` (the first method the physical network names that we know)."""
    for method in (pn.isolation_methods if pn is not None else "VLAN").split(","):
        if method.strip().upper() == "VXLAN":
            return "vxlan"
        if method.strip().upper() == "VLAN":
            return "vlan"
    return "vlan"


def traffic_label(db: Session, network: Network, hypervisor: str | None) -> str:
    """The trunk (Linux bridge or Hyper-V switch) the network's segment rides on for a host of
    ``hypervisor``: the physical network's Guest traffic label, else the zone's ``guest.network.label``."""
    pn = physical_network_of(db, network)
    label = P.traffic_label(db, pn.id, hypervisor or "") if pn is not None else None
    if label:
        return label
    zone = db.get(Zone, network.zone_id)
    return planner.zone_details(zone).get(NETWORK_LABEL_DETAIL, DEFAULT_LABEL) if zone else DEFAULT_LABEL


def take_segment(db: Session, network: Network) -> None:
    """Give an isolated network the lowest free segment id of its physical network (nothing when it
    has one, or is shared: its admin gave it). The caller holds the network's lock. 533 naming the
    physical network when its range is exhausted."""
    if network.guest_type != ISOLATED or network.vnet is not None:
        return
    pn = physical_network_of(db, network)
    if pn is None:
        raise JobFailure(INSUFFICIENT_CAPACITY, f"Unable to implement network {network.name}: zone "
                                                f"{network.zone_id} has no physical network with Guest traffic")
    taken = set(db.scalars(select(GuestVnet.vnet).where(GuestVnet.physical_network_id == pn.id)))
    for vnet in free_ids(V.stored_ranges(pn.vnet_range), taken):
        try:
            with db.begin_nested():
                db.add(GuestVnet(physical_network_id=pn.id, vnet=vnet, network_id=network.id))
        except IntegrityError:
            continue  # another server took it meanwhile
        method = isolation_method(pn)
        network.vnet, network.physical_network_id = vnet, pn.id
        network.broadcast_uri = f"{method}://{vnet}"
        network.broadcast_domain_type = "Vxlan" if method == "vxlan" else "Vlan"
        log.info("network_segment_taken", network=network.id, physical_network=pn.id, vnet=vnet)
        return
    raise JobFailure(INSUFFICIENT_CAPACITY,
                     f"Unable to allocate a guest vnet for network {network.name}: every id of physical network "
                     f"{pn.name} ({pn.id}) range {pn.vnet_range or '(none)'} is taken")


def release_segment(db: Session, network: Network) -> None:
    """Give an isolated network's segment id back (the caller holds the network's lock)."""
    if network.guest_type != ISOLATED or network.specify_vlan:
        return
    db.execute(delete(GuestVnet).where(GuestVnet.network_id == network.id)
               .execution_options(synchronize_session=False))
    if network.vnet is not None:
        log.info("network_segment_released", network=network.id, vnet=network.vnet)
    network.vnet, network.broadcast_uri = None, None


def netmask_of(network: Network) -> str | None:
    if not network.cidr:
        return None
    try:
        return str(ipaddress.ip_network(network.cidr, strict=False).netmask)
    except ValueError:
        return None


def domain_of(network: Network, zone: Zone | None) -> str:
    return network.network_domain or (zone.network_domain if zone is not None else None) or DEFAULT_DOMAIN
