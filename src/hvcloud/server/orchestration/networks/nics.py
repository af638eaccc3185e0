"""A VM's NICs: which networks a deploy puts it on, the NIC rows with their MACs and addresses, NICs
added and removed later, and what a NIC is on the wire (its segment, traffic label and DNS).

The ``nic`` table is the one truth of a VM's NICs. A zone with no physical network carrying Guest
traffic keeps the NIC every VM had before networks: on the zone's untagged guest bridge
(``guest.network.label``), no network and no address (``network_id`` None).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import (
    Account,
    Domain,
    DomainRouter,
    Network,
    Nic,
    VMInstance,
    Zone,
    utcnow,
)
from hvcloud.server.orchestration.networks import addresses, physical
from hvcloud.server.orchestration.networks.offerings import has_service
from hvcloud.server.orchestration.vm import wire as vm_wire
from hvcloud.wire.to import NicTO

GUEST = "Guest"
ISOLATED = "Isolated"
SHARED = "Shared"
L2 = "L2"
LEGACY_URI = "vlan://untagged"
DEFAULT_LABEL = "guest"
#: CloudStack's limit of NICs per VM is the hypervisor's; ours keeps requests bounded
MAX_NICS = 16
#: network states a VM may join (not Destroy)
USABLE_STATES = ("Allocated", "Implementing", "Implemented", "Setup", "Shutdown")
NIC_RESERVED = "Reserved"
NIC_DEALLOCATING = "Deallocating"


@dataclass(frozen=True)
class NicRequest:
    """One NIC a deploy asks for: its network (None: the legacy NIC), the address asked for (and the
    parameter that asked), the MAC asked for."""

    network: Network | None
    ip: str | None = None
    ip_param: str = "ipaddress"
    mac: str | None = None


# ---------------------------------------------------------------------- zone and network lookups


def zone_has_guest_networks(db: Session, zone_id: str) -> bool:
    """True when a physical network of the zone carries Guest traffic: VMs there join networks."""
    return physical.guest_physical_network(db, zone_id) is not None


def _domain_path(db: Session, domain_id: str) -> str:
    domain = db.get(Domain, domain_id)
    return domain.path if domain is not None else ""


def can_use(db: Session, account: Account, network: Network) -> bool:
    """Whether ``account`` may put VMs on the network: its own (Account ACL), or a Domain network of
    its domain (or of a parent domain that shares with subdomains)."""
    if network.removed is not None or network.state not in USABLE_STATES:
        return False
    if network.acl_type != "Domain":
        return network.account_id == account.id
    if network.domain_id == account.domain_id:
        return True
    if not network.subdomain_access:
        return False
    parent, own = _domain_path(db, network.domain_id), _domain_path(db, account.domain_id)
    return bool(parent) and own.startswith(parent.rstrip("/") + "/")


def usable_network(db: Session, account: Account, zone: Zone, raw: str, param: str) -> Network:
    """The network ``raw`` names, if ``account`` may put a VM of ``zone`` on it: else 431 naming ``param``."""
    try:
        network_id = str(uuid.UUID(raw))
    except ValueError:
        raise errors.entity_not_found(param, raw[:64]) from None
    network = db.get(Network, network_id)
    if network is None or not can_use(db, account, network):
        raise errors.entity_not_found(param, network_id)
    if network.zone_id != zone.id:
        raise errors.param_error(f"Invalid parameter {param}: network {network.name} is in another zone than "
                                 f"the virtual machine (zone {zone.name})")
    if network.traffic_type != GUEST:
        raise errors.param_error(f"Invalid parameter {param}: network {network.name} is not a guest network")
    return network


def default_network(db: Session, account: Account, zone: Zone) -> Network:
    """The network a deploy without ``networkids`` uses, as CloudStack picks it: the account's one
    isolated network of the zone; without one, the one shared network its domain may use."""
    isolated = list(db.scalars(select(Network).where(
        Network.account_id == account.id, Network.zone_id == zone.id, Network.removed.is_(None),
        Network.guest_type == ISOLATED, Network.acl_type == "Account",
        Network.state.in_(USABLE_STATES)).order_by(Network.created, Network.id).limit(2)))
    if len(isolated) > 1:
        raise errors.param_error(f"More than 1 default Isolated networks are found for account {account.name}; "
                                 "please specify networkIds")
    if isolated:
        return isolated[0]
    shared = [n for n in db.scalars(select(Network).where(
        Network.zone_id == zone.id, Network.removed.is_(None), Network.guest_type == SHARED,
        Network.state.in_(USABLE_STATES)).order_by(Network.created, Network.id).limit(64)) if can_use(db, account, n)]
    if len(shared) > 1:
        raise errors.param_error(f"More than 1 default Shared networks are found for account {account.name}; "
                                 "please specify networkIds")
    if shared:
        return shared[0]
    raise errors.param_error("Unable to find a default network to start a vm")


def check_mac(raw: str, param: str = "macaddress") -> str:
    """A unicast MAC a caller asked for, lower case with colons; else 431."""
    text = raw.strip().lower().replace("-", ":")
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise errors.param_error(f"Invalid parameter {param} value={raw[:32]}: not a MAC address")
    if int(parts[0], 16) & 1 or text == "00:00:00:00:00:00":
        raise errors.param_error(f"Invalid parameter {param} value={text}: not a unicast MAC address")
    return text


def _mac_free(db: Session, mac: str) -> bool:
    """No NIC and no router holds ``mac`` (one query)."""
    taken = union_all(select(Nic.id).where(Nic.mac_address == mac),
                      select(DomainRouter.id).where(DomainRouter.guest_mac == mac))
    return db.scalar(select(taken.subquery().c.id).limit(1)) is None


def plan_deploy(db: Session, account: Account, zone: Zone, *, network_ids: Sequence[str],
                ip_to_network: Sequence[tuple[str | None, str | None]], ip: str | None,
                mac: str | None) -> list[NicRequest]:
    """The NICs of a new VM, in device order (the first is the default NIC), checked: 431 for unknown,
    foreign or other-zone networks, duplicates, bad addresses or MACs. A zone without guest
    networks gives the legacy NIC (and refuses network parameters)."""
    if mac is not None:
        mac = check_mac(mac)
        if not _mac_free(db, mac):
            raise errors.param_error(f"Invalid parameter macaddress value={mac}: the MAC address is in use")
    if ip_to_network and (network_ids or ip is not None):
        raise errors.param_error("iptonetworklist can't be specified along with networkids or ipaddress")
    legacy = not zone_has_guest_networks(db, zone.id)
    if legacy:
        if network_ids or ip_to_network:
            param = "networkids" if network_ids else "iptonetworklist"
            raise errors.param_error(f"Invalid parameter {param}: zone {zone.name} has no guest networks")
        if ip is not None:
            raise errors.param_error(f"Invalid parameter ipaddress: zone {zone.name} has no guest networks, "
                                     "so no addresses to choose from")
        return [NicRequest(None, mac=mac)]
    wanted: list[tuple[str, str | None, str, str]] = []  # network id, ip, network param, ip param
    if ip_to_network:
        for i, (net, addr) in enumerate(ip_to_network):
            if not net:
                raise errors.param_error(f"Invalid parameter iptonetworklist[{i}].networkid: missing")
            wanted.append((net, addr, "iptonetworklist", f"iptonetworklist[{i}].ip"))
    else:
        wanted = [(n, ip if i == 0 else None, "networkids", "ipaddress") for i, n in enumerate(network_ids)]
    if len(wanted) > MAX_NICS:
        raise errors.param_error(f"Invalid parameter networkids: at most {MAX_NICS} networks per virtual machine")
    if not wanted:
        network = default_network(db, account, zone)
        return [_request(db, network, ip, "ipaddress", mac)]
    out: list[NicRequest] = []
    seen: set[str] = set()
    for i, (raw, addr, net_param, ip_param) in enumerate(wanted):
        network = usable_network(db, account, zone, raw, net_param)
        if network.id in seen:
            raise errors.param_error(f"Invalid parameter {net_param}: network {network.name} is given more than once")
        seen.add(network.id)
        out.append(_request(db, network, addr, ip_param, mac if i == 0 else None))
    return out


def _request(db: Session, network: Network, ip: str | None, param: str, mac: str | None) -> NicRequest:
    if ip is not None:
        ip = addresses.check_requested(db, network, ip, param)
    return NicRequest(network, ip, param, mac)


# ---------------------------------------------------------------------- rows


def _free_mac(db: Session, vm_number: int, first_attempt: int) -> str:
    for attempt in range(first_attempt, first_attempt + 64):
        mac = vm_wire.mac_for(vm_number, attempt)
        if _mac_free(db, mac):
            return mac
    raise errors.internal("Could not allocate a unique MAC address; try again")


@dataclass(frozen=True)
class NicPlan:
    """What writing a new VM's NICs needs, read before the deploy's first write (so that on SQLite
    its transaction holds the write lock only for its writes): MACs and the networks' pools."""

    requests: tuple[NicRequest, ...]
    macs: tuple[str, ...]
    prepared: dict[str, addresses.Prepared]


def plan_nics(db: Session, vm_number: int, requests: Sequence[NicRequest]) -> NicPlan:
    # the default NIC's MAC derives from the VM number (one lookup: a MAC a caller chose may hold it)
    macs = tuple(req.mac or _free_mac(db, vm_number, device) for device, req in enumerate(requests))
    prepared = {r.network.id: addresses.prepare(db, r.network) for r in requests if r.network is not None}
    return NicPlan(tuple(requests), macs, prepared)


def create_nics(db: Session, vm: VMInstance, plan: NicPlan, legacy_label: str) -> list[Nic]:
    """The NIC rows of a new VM, device ids in request order, addresses taken (the VM row must be in
    the session; it is written first, then the NICs)."""
    db.flush()
    return [_new_nic(db, vm, req, device, device == 0, plan.macs[device], legacy_label,
                     plan.prepared[req.network.id] if req.network is not None else None)
            for device, req in enumerate(plan.requests)]


def _new_nic(db: Session, vm: VMInstance, req: NicRequest, device: int, default: bool, mac: str,
             legacy_label: str, prepared: addresses.Prepared | None) -> Nic:
    nic = Nic(vm_id=vm.id, device_id=device, mac_address=mac, is_default=default, state=NIC_RESERVED,
              mode="Dhcp", reservation_strategy="Start")
    if req.network is None:
        nic.broadcast_uri, nic.isolation_uri, nic.network_label = LEGACY_URI, LEGACY_URI, legacy_label
        db.add(nic)
        return nic
    nic.broadcast_uri = req.network.broadcast_uri
    nic.isolation_uri = req.network.broadcast_uri
    addresses.assign(db, nic, prepared or addresses.prepare(db, req.network), req.ip, req.ip_param)
    return nic


def live_nics(db: Session, vm_id: str) -> list[Nic]:
    return list(db.scalars(select(Nic).where(Nic.vm_id == vm_id, Nic.removed.is_(None)).order_by(Nic.device_id)))


def add_nic(db: Session, vm: VMInstance, network: Network, ip: str | None, mac: str | None) -> Nic:
    """addNicToVirtualMachine's row: the next device id, an address of the network; 431 when the VM
    already has a NIC there."""
    nics = live_nics(db, vm.id)
    if any(n.network_id == network.id for n in nics):
        raise errors.param_error(f"Invalid parameter networkid: VM {vm.instance_name} already has a NIC in "
                                 f"network {network.name}")
    if len(nics) >= MAX_NICS:
        raise errors.param_error(f"VM {vm.instance_name} already has {MAX_NICS} NICs")
    if mac is not None:
        mac = check_mac(mac)
        if not _mac_free(db, mac):
            raise errors.param_error(f"Invalid parameter macaddress value={mac}: the MAC address is in use")
    used = {n.device_id for n in nics}
    device = next(d for d in range(MAX_NICS + 1) if d not in used)  # the lowest free, as CloudStack
    req = NicRequest(network, addresses.check_requested(db, network, ip, "ipaddress") if ip is not None else None,
                     "ipaddress", mac)
    return _new_nic(db, vm, req, device, not nics, mac or _free_mac(db, vm.vm_number, len(nics) + 1), DEFAULT_LABEL,
                    addresses.prepare(db, network))


def check_removable(db: Session, vm: VMInstance, nic: Nic) -> None:
    """removeNicFromVirtualMachine's rules: never the VM's only NIC nor its default NIC (431)."""
    others = [n for n in live_nics(db, vm.id) if n.id != nic.id]
    if not others:
        raise errors.param_error(f"Unable to remove nic {nic.id} from VM {vm.instance_name}: it is the only NIC "
                                 "of the VM")
    if nic.is_default:
        network = db.get(Network, nic.network_id) if nic.network_id is not None else None
        raise errors.param_error(f"Unable to remove nic from VM {vm.instance_name} in network "
                                 f"{network.name if network else nic.network_label}, nic is default.")


def remove_nic(nic: Nic) -> None:
    """The NIC leaves its VM: its address goes back to the network."""
    addresses.release(nic)
    nic.state = NIC_DEALLOCATING
    nic.removed = nic.removed or utcnow()


def release_vm_nics(db: Session, vm_id: str) -> list[str]:
    """An expunged VM's NICs give their addresses back; returns their ids."""
    out = []
    for nic in live_nics(db, vm_id):
        remove_nic(nic)
        out.append(nic.id)
    return out


def make_default(db: Session, vm: VMInstance, nic: Nic) -> None:
    for other in live_nics(db, vm.id):
        other.is_default = other.id == nic.id


# ---------------------------------------------------------------------- on the wire


def traffic_label(db: Session, network: Network | None, hypervisor: str | None) -> str | None:
    """The bridge (libvirt, simulator) or switch (Hyper-V) a NIC of ``network`` joins on a host of
    ``hypervisor``: its physical network's Guest traffic label."""
    if network is None or network.physical_network_id is None:
        return None
    return physical.traffic_label(db, network.physical_network_id, hypervisor or "")


def broadcast_type(uri: str | None) -> str:
    if uri is None:
        return "Native"
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "vxlan":
        return "Vxlan"
    if scheme == "vlan" and not uri.lower().endswith("untagged"):
        return "Vlan"
    return "Native"


def router_address(db: Session, network_id: str) -> str | None:
    """The guest address of the network's live router (it serves DNS), or None."""
    return db.scalar(select(DomainRouter.guest_ip).where(DomainRouter.network_id == network_id,
                                                         DomainRouter.removed.is_(None))
                     .order_by(DomainRouter.created).limit(1))


def nic_tos(db: Session, vm: VMInstance, hypervisor: str | None) -> list[NicTO]:
    """The VM's live NICs as the StartCommand carries them, for a host of ``hypervisor``."""
    return [nic_to(db, vm, nic, hypervisor) for nic in live_nics(db, vm.id)]


def nic_to(db: Session, vm: VMInstance, nic: Nic, hypervisor: str | None) -> NicTO:
    """One NIC on the wire: a network's NIC carries the network's segment (once implemented), the
    traffic label of the host's hypervisor and, as DNS, the network's router (else the zone's)."""
    network = db.get(Network, nic.network_id) if nic.network_id is not None else None
    if network is None:
        return vm_wire.nic_to(nic, nic.network_label or DEFAULT_LABEL, nic.broadcast_uri or LEGACY_URI,
                              "Vlan", None, None)
    uri = network.broadcast_uri or nic.broadcast_uri
    router = router_address(db, network.id)
    zone = vm.zone
    dns1, dns2 = (router, None) if router is not None else (network.dns1 or zone.dns1, network.dns2 or zone.dns2)
    label = traffic_label(db, network, hypervisor) or nic.network_label or DEFAULT_LABEL
    to = vm_wire.nic_to(nic, label, uri, broadcast_type(uri), dns1, dns2)
    if network.offering is not None and has_service(network.offering, "SecurityGroup"):
        to.isSecurityGroupEnabled = True  # the host filters this NIC (anti-spoofing, default deny)
    return to
