"""Address ranges (CloudStack's ``vlan`` table, ``createVlanIpRange``): public ranges of a physical
network carrying Public traffic, and the guest ranges of shared networks."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import (
    Account,
    DomainRouter,
    Network,
    Nic,
    PhysicalNetwork,
    Pod,
    User,
    UserIpAddress,
    VlanIpRange,
    Zone,
    utcnow,
)
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration.networks import basic_zone
from hvcloud.server.orchestration.networks import validation as V

log = logs.get(__name__)


@dataclass(frozen=True)
class RangeSpec:
    gateway: str | None
    netmask: str | None
    start_ip: str
    end_ip: str | None
    vlan: str | None
    for_virtual_network: bool
    for_system_vms: bool = False


def check_no_overlap(db: Session, zone_id: str, rng: V.IpRange, *, skip_id: str | None = None) -> None:
    rows = db.scalars(select(VlanIpRange).where(VlanIpRange.zone_id == zone_id, VlanIpRange.removed.is_(None)))
    for row in rows:
        if row.id != skip_id and V.addresses_overlap(str(rng.start), str(rng.end), row.start_ip, row.end_ip):
            raise errors.param_error(f"Invalid startip: the range {rng.start}-{rng.end} overlaps the range "
                                     f"{row.start_ip}-{row.end_ip} of the zone")


def add_range(db: Session, actor: User, *, zone: Zone, physical_network: PhysicalNetwork | None,
              network: Network | None, pod: Pod | None, owner: Account | None, spec: RangeSpec) -> VlanIpRange:
    """A new range; the caller resolved and checked zone, physical network, network and pod."""
    if network is not None:
        if network.guest_type != "Shared":
            raise errors.param_error(f"Invalid networkid: IP ranges are added to Shared networks; {network.name} is "
                                     f"{network.guest_type}")
        if spec.for_virtual_network:
            raise errors.param_error("Invalid forvirtualnetwork: a shared network's range is not a public range")
        if network.cidr is None or network.gateway is None:
            basic_zone.adopt_range(network, spec.gateway, spec.netmask)
        assert network.cidr is not None and network.gateway is not None
        net = ipaddress.IPv4Network(network.cidr)
        gateway = spec.gateway or network.gateway
        netmask = spec.netmask or str(net.netmask)
        if V.ipv4(gateway, "gateway") != ipaddress.IPv4Address(network.gateway):
            raise errors.param_error(f"Invalid gateway {gateway}: network {network.name} has gateway {network.gateway}")
        if V.netmask_prefix(netmask) != net.prefixlen:
            raise errors.param_error(f"Invalid netmask {netmask}: network {network.name} is {network.cidr}")
        if spec.vlan is not None:
            method = physical_network.isolation_methods if physical_network is not None else "VLAN"
            given = V.parse_segment(spec.vlan, method)
            if given.uri != (network.broadcast_uri or "vlan://untagged"):
                raise errors.param_error(f"Invalid vlan {spec.vlan[:32]}: network {network.name} is on "
                                         f"{network.broadcast_uri or 'vlan://untagged'}")
        vlan_tag = network.broadcast_uri or "vlan://untagged"
    else:
        if not spec.for_virtual_network:
            raise errors.param_error("Invalid networkid: give the shared network a guest range is for, or "
                                     "forvirtualnetwork=true for a public range")
        if physical_network is None:
            raise errors.param_error(f"Invalid physicalnetworkid: zone {zone.name} has no physical network carrying "
                                     "Public traffic")
        if spec.gateway is None or spec.netmask is None:
            raise errors.param_error("Invalid gateway: give gateway and netmask for a public range")
        gateway, netmask = spec.gateway, spec.netmask
        segment = V.parse_segment(spec.vlan or "untagged", physical_network.isolation_methods)
        if segment.vnet is not None and V.in_ranges(segment.vnet, V.stored_ranges(physical_network.vnet_range)):
            raise errors.param_error(f"Invalid vlan {segment.vnet}: it is in the guest range of physical network "
                                     f"{physical_network.name} (used for dynamic allocation)")
        vlan_tag = segment.uri
    rng = V.ip_range(gateway, netmask, spec.start_ip, spec.end_ip)
    if network is not None and network.cidr is not None and rng.net != ipaddress.IPv4Network(network.cidr):
        raise errors.param_error(f"Invalid startip: the range is not in network {network.name}'s CIDR {network.cidr}")
    check_no_overlap(db, zone.id, rng)
    row = VlanIpRange(zone_id=zone.id, physical_network_id=physical_network.id if physical_network else None,
                      network_id=network.id if network else None, pod_id=pod.id if pod else None,
                      account_id=owner.id if owner else None, domain_id=owner.domain_id if owner else None,
                      vlan_tag=vlan_tag, gateway=str(rng.gateway), netmask=rng.netmask, start_ip=str(rng.start),
                      end_ip=str(rng.end), for_virtual_network=spec.for_virtual_network,
                      for_system_vms=spec.for_system_vms)
    db.add(row)
    db.flush()
    events.record(db, actor, "VLAN.IP.RANGE.CREATE", f"Creating IP range {row.start_ip}-{row.end_ip}",
                  resource_type="VlanIpRange", resource_id=row.id)
    log.info("ip_range_created", id=row.id, zone=zone.id, network=row.network_id, public=row.for_virtual_network)
    return row


def addresses_in_use(db: Session, row: VlanIpRange) -> list[str]:
    """Addresses of the range held by live NICs or routers of its network, or (a public range) by
    accounts' public addresses."""
    if row.for_virtual_network and row.network_id is None:
        return sorted(db.scalars(select(UserIpAddress.public_ip_address).where(UserIpAddress.vlan_id == row.id,
                                                                               UserIpAddress.removed.is_(None))))
    if row.network_id is None:
        return []
    first, last = int(ipaddress.IPv4Address(row.start_ip)), int(ipaddress.IPv4Address(row.end_ip))
    held: list[str | None] = list(db.scalars(select(Nic.ip4_address).where(
        Nic.network_id == row.network_id, Nic.removed.is_(None), Nic.ip4_address.is_not(None))))
    held += list(db.scalars(select(DomainRouter.guest_ip).where(
        DomainRouter.network_id == row.network_id, DomainRouter.removed.is_(None), DomainRouter.guest_ip.is_not(None))))
    out: list[str] = []
    for address in held:
        if address is None:
            continue
        try:
            value = int(ipaddress.IPv4Address(address))
        except ValueError:
            continue
        if first <= value <= last:
            out.append(address)
    return sorted(out)


def delete_range(db: Session, actor: User, row: VlanIpRange) -> None:
    used = addresses_in_use(db, row)
    if used:
        raise errors.param_error(f"Invalid id: {len(used)} address(es) of the range {row.start_ip}-{row.end_ip} are "
                                 f"in use (e.g. {used[0]})")
    row.removed = utcnow()
    db.flush()
    events.record(db, actor, "VLAN.IP.RANGE.DELETE", f"Deleting IP range {row.start_ip}-{row.end_ip}",
                  resource_type="VlanIpRange", resource_id=row.id)
