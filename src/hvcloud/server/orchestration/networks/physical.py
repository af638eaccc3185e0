"""A zone's physical networks: isolation method and segment-id range, the traffic types they carry
(with each hypervisor's label), their network service providers and the VirtualRouter element.

As CloudStack does, a new physical network is Disabled and gets a VirtualRouter provider (with its
element, not enabled) and a SecurityGroupProvider; the zone wizard then configures the element,
enables the provider and the physical network.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import (
    GuestVnet,
    Network,
    NetworkServiceProvider,
    PhysicalNetwork,
    PhysicalNetworkTrafficType,
    User,
    VirtualRouterElement,
    VlanIpRange,
    Zone,
    utcnow,
)
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration.networks import validation as V

log = logs.get(__name__)

TRAFFIC_TYPES = ("Guest", "Public", "Management", "Storage")
STATES = ("Enabled", "Disabled")
BROADCAST_DOMAIN_RANGES = ("ZONE", "POD")
VIRTUAL_ROUTER = "VirtualRouter"
SECURITY_GROUP_PROVIDER = "SecurityGroupProvider"
#: the services each provider this cloud knows can give (CloudStack's capabilities of each element)
PROVIDER_SERVICES: dict[str, tuple[str, ...]] = {
    VIRTUAL_ROUTER: ("Vpn", "Dhcp", "Dns", "SourceNat", "PortForwarding", "Lb", "UserData", "StaticNat",
                     "Firewall", "Gateway"),
    SECURITY_GROUP_PROVIDER: ("SecurityGroup",),
}
#: the label columns of a traffic type, by ``addTrafficType`` parameter
LABEL_PARAMS = {"kvmnetworklabel": "kvm_label", "hypervnetworklabel": "hyperv_label",
                "xennetworklabel": "xen_label", "vmwarenetworklabel": "vmware_label",
                "simulatorlabel": "simulator_label"}


def state_name(value: str, name: str = "state") -> str:
    for state in STATES:
        if state.lower() == value.strip().lower():
            return state
    raise errors.param_error(f"Invalid {name} {value[:32]!r}: expected Enabled or Disabled")


def traffic_type_name(value: str) -> str:
    for kind in TRAFFIC_TYPES:
        if kind.lower() == value.strip().lower():
            return kind
    raise errors.param_error(f"Invalid traffictype {value[:32]!r}: expected one of {', '.join(TRAFFIC_TYPES)}")


def live_physical_networks(db: Session, zone_id: str) -> list[PhysicalNetwork]:
    return list(db.scalars(select(PhysicalNetwork).where(PhysicalNetwork.zone_id == zone_id,
                                                         PhysicalNetwork.removed.is_(None))
                           .order_by(PhysicalNetwork.created, PhysicalNetwork.id)))


def _check_zone_overlap(db: Session, pn: PhysicalNetwork, ranges: list[tuple[int, int]], name: str) -> None:
    for other in live_physical_networks(db, pn.zone_id):
        if other.id == pn.id:
            continue
        clash = V.ranges_overlap(ranges, V.stored_ranges(other.vnet_range))
        if clash is not None:
            raise errors.param_error(f"Invalid {name}: ids {clash[0]}-{clash[1]} overlap the range of physical "
                                     f"network {other.name} in the same zone")


@dataclass(frozen=True)
class PhysicalNetworkSpec:
    name: str
    isolation_method: str
    vnet_ranges: list[tuple[int, int]]
    broadcast_domain_range: str
    network_speed: str | None
    tags: str | None
    domain_id: str | None


def create_physical_network(db: Session, actor: User, zone: Zone, spec: PhysicalNetworkSpec) -> PhysicalNetwork:
    pn = PhysicalNetwork(name=spec.name, zone_id=zone.id, domain_id=spec.domain_id, state="Disabled",
                         isolation_methods=spec.isolation_method,
                         vnet_range=V.format_vnet_ranges(spec.vnet_ranges),
                         broadcast_domain_range=spec.broadcast_domain_range, network_speed=spec.network_speed,
                         tags=spec.tags)
    _check_zone_overlap(db, pn, spec.vnet_ranges, "vlan")
    db.add(pn)
    db.flush()
    for provider, enabled in ((VIRTUAL_ROUTER, False), (SECURITY_GROUP_PROVIDER, None)):
        nsp = NetworkServiceProvider(physical_network_id=pn.id, name=provider, state="Disabled",
                                     services=",".join(PROVIDER_SERVICES[provider]))
        db.add(nsp)
        db.flush()
        if enabled is not None:
            db.add(VirtualRouterElement(provider_id=nsp.id, element_type=VIRTUAL_ROUTER, enabled=enabled))
    db.flush()
    events.record(db, actor, "PHYSICAL.NETWORK.CREATE", f"Creating physical network {pn.name}",
                  resource_type="PhysicalNetwork", resource_id=pn.id)
    log.info("physical_network_created", id=pn.id, zone=zone.id, method=spec.isolation_method,
             vnet_range=pn.vnet_range)
    return pn


def vnets_in_use(db: Session, pn_id: str) -> list[int]:
    return list(db.scalars(select(GuestVnet.vnet).where(GuestVnet.physical_network_id == pn_id)
                           .order_by(GuestVnet.vnet)))


def update_physical_network(db: Session, actor: User, pn: PhysicalNetwork, *, state: str | None,
                            vnet_ranges: list[tuple[int, int]] | None, network_speed: str | None,
                            tags: str | None) -> None:
    """``vnet_ranges``: the new full range (None: unchanged). Ids in use must stay inside it."""
    if vnet_ranges is not None:
        for vnet in vnets_in_use(db, pn.id):
            if not V.in_ranges(vnet, vnet_ranges):
                raise errors.param_error(f"Invalid vlan: the range of physical network {pn.name} cannot drop id "
                                         f"{vnet}, which a network uses")
        _check_zone_overlap(db, pn, vnet_ranges, "vlan")
        pn.vnet_range = V.format_vnet_ranges(vnet_ranges)
    if state is not None:
        pn.state = state
    if network_speed is not None:
        pn.network_speed = network_speed
    if tags is not None:
        pn.tags = tags or None
    db.flush()
    events.record(db, actor, "PHYSICAL.NETWORK.UPDATE", f"Updating physical network {pn.name}",
                  resource_type="PhysicalNetwork", resource_id=pn.id)


def delete_physical_network(db: Session, actor: User, pn: PhysicalNetwork) -> None:
    """CloudStack's rule (checkIfPhysicalNetworkIsDeletable, a CloudRuntimeException: 530): not while
    networks use it or segment ids are taken; its public IP ranges go with it."""
    used = db.scalar(select(func.count()).select_from(Network).where(Network.physical_network_id == pn.id,
                                                                     Network.removed.is_(None)))
    if used:
        raise errors.internal(f"The Physical Network is not deletable because there are networks associated to this "
                              f"physical network ({used} network(s) on {pn.name}; delete them first)")
    if vnets_in_use(db, pn.id):
        raise errors.internal("The Physical Network is not deletable because there are allocated vnets for this "
                              "physical network")
    now = utcnow()
    for rng in db.scalars(select(VlanIpRange).where(VlanIpRange.physical_network_id == pn.id,
                                                    VlanIpRange.removed.is_(None))):
        rng.removed = now
    for row in db.scalars(select(PhysicalNetworkTrafficType).where(
            PhysicalNetworkTrafficType.physical_network_id == pn.id)):
        db.delete(row)
    providers = list(db.scalars(select(NetworkServiceProvider).where(
        NetworkServiceProvider.physical_network_id == pn.id)))
    for element in db.scalars(select(VirtualRouterElement).where(
            VirtualRouterElement.provider_id.in_([p.id for p in providers]))):
        db.delete(element)
    db.flush()
    for nsp in providers:
        db.delete(nsp)
    pn.removed = now
    pn.state = "Disabled"
    db.flush()
    events.record(db, actor, "PHYSICAL.NETWORK.DELETE", f"Deleting physical network {pn.name}",
                  resource_type="PhysicalNetwork", resource_id=pn.id)


# ---------------------------------------------------------------------------- traffic types


def add_traffic_type(db: Session, actor: User, pn: PhysicalNetwork, traffic_type: str,
                     labels: dict[str, str | None], vlan: str | None) -> PhysicalNetworkTrafficType:
    """CloudStack's rules (CloudRuntimeExceptions, 530): a traffic type once per physical network;
    Public, Management and Storage once per zone; an untagged physical network may not add a traffic
    type another untagged physical network of the zone carries."""
    if carries(db, pn.id, traffic_type):
        raise errors.internal(f"This physical network already supports the traffic type: {traffic_type}")
    others = [o for o in live_physical_networks(db, pn.zone_id) if o.id != pn.id and carries(db, o.id, traffic_type)]
    if traffic_type != "Guest" and others:
        raise errors.internal("Fail to add the traffic type to physical network because Zone already has a physical "
                              f"network with this traffic type: {traffic_type}")
    if not pn.tags and any(not o.tags for o in others):
        raise errors.internal(f"There are more than 1 physical network without tags in the zone carrying "
                              f"{traffic_type} traffic: tag physical network {pn.name}")
    row = PhysicalNetworkTrafficType(physical_network_id=pn.id, traffic_type=traffic_type, vlan=vlan,
                                     **{column: labels.get(param) for param, column in LABEL_PARAMS.items()})
    db.add(row)
    db.flush()
    events.record(db, actor, "TRAFFIC.TYPE.CREATE", f"Adding {traffic_type} traffic to physical network {pn.name}",
                  resource_type="TrafficType", resource_id=row.id)
    return row


def update_traffic_type(db: Session, actor: User, row: PhysicalNetworkTrafficType,
                        labels: dict[str, str | None]) -> None:
    for param, column in LABEL_PARAMS.items():
        if param in labels:
            setattr(row, column, labels[param] or None)
    db.flush()
    events.record(db, actor, "TRAFFIC.TYPE.UPDATE", f"Updating {row.traffic_type} traffic labels",
                  resource_type="TrafficType", resource_id=row.id)


def delete_traffic_type(db: Session, actor: User, row: PhysicalNetworkTrafficType) -> None:
    if row.traffic_type == "Guest":
        used = db.scalar(select(func.count()).select_from(Network).where(
            Network.physical_network_id == row.physical_network_id, Network.removed.is_(None)))
        if used:
            raise errors.param_error(f"Invalid id: {used} guest network(s) use this physical network's Guest traffic")
    if row.traffic_type == "Public":
        used = db.scalar(select(func.count()).select_from(VlanIpRange).where(
            VlanIpRange.physical_network_id == row.physical_network_id, VlanIpRange.for_virtual_network.is_(True),
            VlanIpRange.removed.is_(None)))
        if used:
            raise errors.param_error(f"Invalid id: {used} public IP range(s) use this physical network's Public "
                                     "traffic")
    db.delete(row)
    db.flush()
    events.record(db, actor, "TRAFFIC.TYPE.DELETE", f"Deleting {row.traffic_type} traffic",
                  resource_type="TrafficType", resource_id=row.id)


def guest_physical_network(db: Session, zone_id: str) -> PhysicalNetwork | None:
    """The zone's live physical network carrying Guest traffic (an untagged one first), or None (a zone
    without guest networks: VMs keep the untagged guest bridge)."""
    return db.scalar(select(PhysicalNetwork).join(
        PhysicalNetworkTrafficType, PhysicalNetworkTrafficType.physical_network_id == PhysicalNetwork.id).where(
        PhysicalNetwork.zone_id == zone_id, PhysicalNetwork.removed.is_(None),
        PhysicalNetworkTrafficType.traffic_type == "Guest").order_by(
        PhysicalNetwork.tags.is_not(None), PhysicalNetwork.created, PhysicalNetwork.id).limit(1))


def traffic_label(db: Session, pn_id: str, hypervisor: str, traffic_type: str = "Guest") -> str | None:
    """The bridge (KVM) or switch (Hyper-V) a host of ``hypervisor`` puts ``traffic_type`` on: the
    traffic type's label for that hypervisor (simulated hosts use the KVM label), or None."""
    row = db.scalar(select(PhysicalNetworkTrafficType).where(
        PhysicalNetworkTrafficType.physical_network_id == pn_id,
        PhysicalNetworkTrafficType.traffic_type == traffic_type))
    if row is None:
        return None
    if hypervisor.lower() == "hyperv":
        return row.hyperv_label
    if hypervisor.lower() == "simulator":
        return row.simulator_label or row.kvm_label
    return row.kvm_label


def carries(db: Session, pn_id: str, traffic_type: str) -> bool:
    return db.scalar(select(PhysicalNetworkTrafficType.id).where(
        PhysicalNetworkTrafficType.physical_network_id == pn_id,
        PhysicalNetworkTrafficType.traffic_type == traffic_type)) is not None


# ---------------------------------------------------------------------------- providers


def element_of(db: Session, provider_id: str) -> VirtualRouterElement | None:
    return db.scalar(select(VirtualRouterElement).where(VirtualRouterElement.provider_id == provider_id))


def update_provider(db: Session, actor: User, nsp: NetworkServiceProvider, state: str | None,
                    services: list[str] | None) -> None:
    if state == "Enabled" and nsp.state != "Enabled" and nsp.name == VIRTUAL_ROUTER:
        element = element_of(db, nsp.id)
        if element is None or not element.enabled:
            # CloudStack: a CloudRuntimeException (530), the element is configured first
            raise errors.internal("Provider is not ready, cannot Enable the provider, please configure the provider "
                                  "first (configureVirtualRouterElement enabled=true)")
    if services is not None:
        if nsp.name != VIRTUAL_ROUTER:
            raise errors.param_error(f"Invalid servicelist: cannot update set of Services for this Service Provider "
                                     f"'{nsp.name}'")
        known = PROVIDER_SERVICES.get(nsp.name, ())
        for service in services:
            if service not in known:
                raise errors.param_error(f"Invalid servicelist: provider {nsp.name} does not support service "
                                         f"{service[:32]}")
        nsp.services = ",".join(services)
    if state is not None:
        nsp.state = state
    db.flush()
    events.record(db, actor, "SERVICE.PROVIDER.UPDATE", f"Updating network service provider {nsp.name}",
                  resource_type="NetworkServiceProvider", resource_id=nsp.id)


def configure_element(db: Session, actor: User, element: VirtualRouterElement, enabled: bool) -> None:
    element.enabled = enabled
    db.flush()
    events.record(db, actor, "NETWORK.ELEMENT.CONFIGURE", f"Configuring virtual router element {element.id}",
                  resource_type="VirtualRouterElement", resource_id=element.id)
