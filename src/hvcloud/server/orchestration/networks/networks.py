"""Guest networks: creation with CloudStack's rules (isolated per account, shared by an admin with a
segment and an address range, L2 without addresses), updates, and deletion as a job that first
shuts the network down through the routing contract.

A network is created Allocated: an isolated network takes its segment id when its first VM starts
(``routing.prepare_vm_start``); a network given a segment (``vlan``) holds it from creation, in
``guest_vnet``, so no other network of the physical network can take it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server import errors
from hvcloud.server.db.models import (
    Account,
    GuestVnet,
    Network,
    NetworkOffering,
    Nic,
    PhysicalNetwork,
    User,
    VlanIpRange,
    Zone,
    utcnow,
)
from hvcloud.server.errors import INTERNAL_ERROR, PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration import events
from hvcloud.server.orchestration import resource_tags as tags
from hvcloud.server.orchestration.networks import basic_zone, physical, public_ips, ranges, routing
from hvcloud.server.orchestration.networks import validation as V
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps

log = logs.get(__name__)

JOB_DELETE = "network.delete"
DEFAULT_GUEST_CIDR = "10.1.1.0/24"
#: CloudStack's ``guest.domain.suffix`` default
GUEST_DOMAIN_SUFFIX = "cloud.internal"
ACL_TYPES = ("Account", "Domain")


@dataclass
class NetworkRequest:
    """What ``createNetwork`` asked for, ids already resolved to rows."""

    name: str
    display_text: str
    offering: NetworkOffering
    zone: Zone
    owner: Account
    caller_is_admin: bool
    domain_id: str
    acl_type: str | None = None
    gateway: str | None = None
    netmask: str | None = None
    start_ip: str | None = None
    end_ip: str | None = None
    vlan: str | None = None
    network_domain: str | None = None
    physical_network: PhysicalNetwork | None = None
    subdomain_access: bool | None = None
    display_network: bool = True


def live_nics(db: Session, network_id: str) -> int:
    return db.scalar(select(func.count()).select_from(Nic).where(Nic.network_id == network_id,
                                                                 Nic.removed.is_(None))) or 0


def _physical_network(db: Session, req: NetworkRequest) -> PhysicalNetwork:
    pn = req.physical_network
    if pn is not None:
        if pn.removed is not None or pn.zone_id != req.zone.id:
            raise errors.param_error(f"Invalid physicalnetworkid {pn.id}: not a physical network of zone "
                                     f"{req.zone.name}")
        if not physical.carries(db, pn.id, "Guest"):
            raise errors.param_error(f"Invalid physicalnetworkid: physical network {pn.name} carries no Guest traffic")
        return pn
    candidates = [p for p in physical.live_physical_networks(db, req.zone.id) if physical.carries(db, p.id, "Guest")]
    if not candidates:
        raise errors.param_error(f"Invalid zoneid: zone {req.zone.name} has no physical network carrying Guest "
                                 "traffic (createPhysicalNetwork, addTrafficType traffictype=Guest)")
    tag = req.offering.tags
    if tag:
        # CloudStack: the physical network whose tag is the offering's
        tagged = [p for p in candidates if p.tags == tag]
        if not tagged:
            raise errors.param_error(f"Invalid networkofferingid: no physical network of zone {req.zone.name} is "
                                     f"tagged {tag[:64]!r} like network offering {req.offering.name}")
        return tagged[0]
    return next((p for p in candidates if not p.tags), candidates[0])


def _acl_type(req: NetworkRequest, guest_type: str) -> str:
    default = "Domain" if guest_type == "Shared" else "Account"
    acl = default if req.acl_type is None else _choice(req.acl_type, ACL_TYPES, "acltype")
    if acl == "Domain" and guest_type == "Isolated":
        raise errors.param_error("Invalid acltype Domain: isolated networks belong to an account")
    if acl == "Domain" and not req.caller_is_admin:
        raise errors.param_error("Invalid acltype Domain: only an admin creates domain-wide networks")
    if req.subdomain_access is not None and acl != "Domain":
        raise errors.param_error("Invalid subdomainaccess: it applies to networks with acltype Domain only")
    return acl


def _choice(value: str, choices: tuple[str, ...], name: str) -> str:
    for choice in choices:
        if choice.lower() == value.strip().lower():
            return choice
    raise errors.param_error(f"Invalid {name} {value[:32]!r}: expected one of {', '.join(choices)}")


def _segment(db: Session, req: NetworkRequest, pn: PhysicalNetwork, guest_type: str) -> V.Segment | None:
    offering = req.offering
    if req.vlan is None:
        if offering.specify_vlan:
            raise errors.param_error(f"Invalid vlan: network offering {offering.name} requires a vlan (specifyvlan)")
        return None
    if not offering.specify_vlan:
        raise errors.param_error(f"Invalid vlan: network offering {offering.name} does not let a vlan be given "
                                 "(specifyvlan=false)")
    if not req.caller_is_admin:
        raise errors.param_error("Invalid vlan: only an admin gives a network's vlan")
    segment = V.parse_segment(req.vlan, pn.isolation_methods)
    if segment.vnet is None:
        if guest_type != "Shared":
            raise errors.param_error("Invalid vlan untagged: only a shared network can be untagged")
        return segment
    if not V.in_ranges(segment.vnet, V.stored_ranges(pn.vnet_range)):
        raise errors.param_error(f"Invalid vlan {segment.vnet}: outside the range {pn.vnet_range or '(none)'} of "
                                 f"physical network {pn.name}")
    taken = db.get(GuestVnet, (pn.id, segment.vnet))
    if taken is not None:
        raise errors.param_error(f"Invalid vlan {segment.vnet}: already in use on physical network {pn.name}")
    return segment


def _addresses(req: NetworkRequest, guest_type: str) -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Address,
                                                              V.IpRange | None] | None:
    given = [n for n in ("gateway", "netmask", "start_ip", "end_ip") if getattr(req, n)]
    if guest_type == "L2":
        if given:
            raise errors.param_error(f"Invalid {given[0].replace('_', '')}: an L2 network has no addresses")
        return None
    if guest_type == "Shared":
        for name in ("gateway", "netmask", "start_ip"):
            if not getattr(req, name):
                raise errors.param_error(f"Invalid {name.replace('_', '')}: a shared network needs gateway, netmask "
                                         "and startip")
        assert req.gateway and req.netmask and req.start_ip
        shared = V.ip_range(req.gateway, req.netmask, req.start_ip, req.end_ip)
        V.check_size(shared.net, "netmask")
        return shared.net, shared.gateway, shared
    if (req.gateway is None) != (req.netmask is None):
        raise errors.param_error(f"Invalid {'netmask' if req.netmask is None else 'gateway'}: give gateway and "
                                 "netmask together")
    if req.gateway is not None and req.netmask is not None:
        gateway = V.ipv4(req.gateway, "gateway")
        net = ipaddress.IPv4Network(f"{gateway}/{V.netmask_prefix(req.netmask)}", strict=False)
        V.check_size(net, "netmask")
        V.check_private(net, "gateway")
    else:
        net = V.guest_cidr(req.zone.guest_cidr or DEFAULT_GUEST_CIDR, "guestcidraddress")
        V.check_private(net, "guestcidraddress")
        gateway = net.network_address + 1
    V.host_in(net, gateway, "gateway")
    rng: V.IpRange | None = None
    if req.start_ip:
        first = V.ipv4(req.start_ip, "startip")
        last = V.ipv4(req.end_ip, "endip") if req.end_ip else net.broadcast_address - 1
        V.host_in(net, first, "startip")
        V.host_in(net, last, "endip")
        if int(first) > int(last):
            raise errors.param_error(f"Invalid endip {last}: it is before startip {first}")
        rng = V.IpRange(net, gateway, first, last)
    return net, gateway, rng


def default_network_domain(owner: Account) -> str:
    """CloudStack's ``cs<account id in hex><guest.domain.suffix>``: here the account id's first block."""
    return f"cs{owner.id.split('-')[0]}{GUEST_DOMAIN_SUFFIX}"


def create_network(db: Session, actor: User, req: NetworkRequest) -> Network:
    offering = req.offering
    if offering.removed is not None or offering.is_system or offering.traffic_type != "Guest":
        raise errors.entity_not_found("networkofferingid", offering.id)
    if offering.state != "Enabled":
        raise errors.param_error(f"Invalid networkofferingid: network offering {offering.name} is "
                                 f"{offering.state}, not Enabled")
    guest_type = offering.guest_ip_type
    if req.zone.network_type == "Basic" and guest_type != "Shared":
        raise errors.param_error(f"Invalid networkofferingid: zone {req.zone.name} is a Basic zone, which has "
                                 f"Shared networks only")
    basic = req.zone.network_type == "Basic"
    if basic:
        basic_zone.check_new_network(db, req.zone)
    if guest_type == "Shared" and not req.caller_is_admin:
        raise errors.param_error("Invalid networkofferingid: only an admin creates Shared networks")
    if req.zone.allocation_state != "Enabled" and not req.caller_is_admin:
        raise errors.permission_denied(f"Cannot perform this operation, zone {req.zone.name} is currently disabled")
    acl = _acl_type(req, guest_type)
    pn = _physical_network(db, req)
    segment = _segment(db, req, pn, guest_type) if not (basic and req.vlan is None) else V.Segment(
        pn.isolation_methods, None)  # a Basic zone's network is untagged unless given a vlan
    no_addresses = basic and not any((req.gateway, req.netmask, req.start_ip, req.end_ip))
    addresses = None if no_addresses else _addresses(req, guest_type)  # Basic: ranges come per pod later
    domain = V.network_domain(req.network_domain) if req.network_domain else None
    if domain is None and guest_type != "L2":
        domain = req.owner.network_domain or req.zone.network_domain or default_network_domain(req.owner)
    network = Network(
        name=req.name, display_text=req.display_text, zone_id=req.zone.id, physical_network_id=pn.id,
        network_offering_id=offering.id, account_id=req.owner.id,
        domain_id=req.domain_id if acl == "Domain" else req.owner.domain_id, acl_type=acl,
        subdomain_access=(True if basic and req.subdomain_access is None else req.subdomain_access)
        if acl == "Domain" else None, guest_type=guest_type,
        traffic_type="Guest", state="Allocated", broadcast_domain_type=V.BROADCAST_TYPES[pn.isolation_methods],
        specify_vlan=offering.specify_vlan, network_domain=domain, display_network=req.display_network)
    rng: V.IpRange | None = None
    if addresses is not None:
        net, gateway, rng = addresses
        network.cidr, network.gateway = str(net), str(gateway)
        if rng is not None:
            network.start_ip, network.end_ip = str(rng.start), str(rng.end)
    if segment is not None:
        network.broadcast_uri = segment.uri
        network.vnet = segment.vnet
        if segment.vnet is None:
            network.broadcast_domain_type = "Vlan"
    if guest_type == "Shared" and rng is not None:
        ranges.check_no_overlap(db, req.zone.id, rng)
    db.add(network)
    db.flush()
    if basic:
        basic_zone.network_created(db, req.zone, network)
    if segment is not None and segment.vnet is not None:
        try:
            with db.begin_nested():
                db.add(GuestVnet(physical_network_id=pn.id, vnet=segment.vnet, network_id=network.id))
        except IntegrityError:
            # another server took the id between the check above and this insert
            raise errors.param_error(f"Invalid vlan {segment.vnet}: already in use on physical network "
                                     f"{pn.name}") from None
    if guest_type == "Shared" and rng is not None:
        db.add(VlanIpRange(zone_id=req.zone.id, physical_network_id=pn.id, network_id=network.id,
                           vlan_tag=network.broadcast_uri or "vlan://untagged", gateway=str(rng.gateway),
                           netmask=rng.netmask, start_ip=str(rng.start), end_ip=str(rng.end),
                           for_virtual_network=False))
    db.flush()
    events.record(db, actor, "NETWORK.CREATE", f"Creating network {network.name}", resource_type="Network",
                  resource_id=network.id)
    log.info("network_created", id=network.id, guest_type=guest_type, zone=req.zone.id, cidr=network.cidr,
             segment=network.broadcast_uri)
    return network


@dataclass(frozen=True)
class NetworkEdit:
    name: str | None = None
    display_text: str | None = None
    network_domain: str | None = None
    display_network: bool | None = None
    offering: NetworkOffering | None = None


def check_offering_change(network: Network, current: NetworkOffering, new: NetworkOffering) -> None:
    """CloudStack lets a network move to an offering of the same kind only."""
    if new.removed is not None or new.is_system:
        raise errors.entity_not_found("networkofferingid", new.id)
    if new.state != "Enabled":
        raise errors.param_error(f"Invalid networkofferingid: network offering {new.name} is {new.state}")
    if new.guest_ip_type != current.guest_ip_type:
        raise errors.param_error(f"Invalid networkofferingid: {new.name} is for {new.guest_ip_type} networks, "
                                 f"network {network.name} is {current.guest_ip_type}")
    if new.specify_vlan != current.specify_vlan or new.specify_ip_ranges != current.specify_ip_ranges:
        raise errors.param_error(f"Invalid networkofferingid: {new.name} differs in specifyvlan/specifyipranges from "
                                 f"the network's offering {current.name}")


def update_network(db: Session, actor: User, network: Network, edit: NetworkEdit) -> None:
    restart = False
    if edit.offering is not None and edit.offering.id != network.network_offering_id:
        check_offering_change(network, network.offering, edit.offering)
        network.network_offering_id = edit.offering.id
        restart = True
    if edit.network_domain is not None:
        if network.guest_type == "L2":
            raise errors.param_error("Invalid networkdomain: an L2 network has no network domain")
        domain = V.network_domain(edit.network_domain)
        restart = restart or domain != network.network_domain
        network.network_domain = domain
    if edit.name is not None:
        network.name = edit.name
    if edit.display_text is not None:
        network.display_text = edit.display_text
    if edit.display_network is not None:
        network.display_network = edit.display_network
    if restart and network.state == "Implemented":
        network.restart_required = True
    db.flush()
    events.record(db, actor, "NETWORK.UPDATE", f"Updating network {network.name}", resource_type="Network",
                  resource_id=network.id)


def check_deletable(db: Session, network: Network) -> None:
    count = live_nics(db, network.id)
    if count:
        raise errors.param_error(f"Invalid id: network {network.name} still has {count} VM NIC(s); remove or "
                                 "expunge those VMs first")


def _release(db: Session, network_id: str) -> dict[str, Any] | None:
    network = db.get(Network, network_id)
    if network is None or network.removed is not None:
        return None
    count = live_nics(db, network_id)
    if count:
        raise JobFailure(PARAM_ERROR, f"Network {network.name} got {count} VM NIC(s) while being deleted")
    for vnet in db.scalars(select(GuestVnet).where(GuestVnet.network_id == network_id)):
        db.delete(vnet)
    public_ips.release_network(db, network_id)
    now = utcnow()
    for rng in db.scalars(select(VlanIpRange).where(VlanIpRange.network_id == network_id,
                                                    VlanIpRange.removed.is_(None))):
        rng.removed = now
    network.state = "Destroy"
    network.removed = now
    network.vnet = None
    tags.forget(db, tags.NETWORK, [network_id])
    log.info("network_deleted", id=network_id)
    return None


async def run_delete(jctx: JobContext) -> dict[str, Any]:
    network_id = str(jctx.params["network_id"])
    steps = Steps(jctx.sessions, jctx.agents, jctx.state.box)
    await steps.tx(_check_still_deletable, network_id)
    try:
        await routing.shutdown_network(steps, network_id, destroy=True)
    except StepFailed as exc:
        # the network stays as it is: deleteNetwork again retries once the router's host answers
        log.warning("network_delete_shutdown_failed", id=network_id, error=exc.text)
        raise JobFailure(INTERNAL_ERROR, f"Failed to delete network: {exc.text}") from None
    await steps.tx(_release, network_id)
    return {"success": True}


def _check_still_deletable(db: Session, network_id: str) -> None:
    network = db.get(Network, network_id)
    if network is None or network.removed is not None:
        return
    count = live_nics(db, network_id)
    if count:
        raise JobFailure(PARAM_ERROR, f"Network {network.name} still has {count} VM NIC(s)")


register(JOB_DELETE, run_delete, resumable=True)
