"""Guest networks written straight to the database, for tests of NICs and addresses that do not
exercise the network APIs themselves: a zone's physical network with Guest traffic, offerings and
networks (isolated, shared with an address range, L2)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import (
    Account,
    Network,
    NetworkOffering,
    PhysicalNetwork,
    PhysicalNetworkTrafficType,
    VlanIpRange,
)

KVM_LABEL = "brguest"
HYPERV_LABEL = "vSwitchGuest"


def guest_physical_network(db: Session, zone_id: str, *, isolation: str = "VXLAN",
                           vnet_range: str = "5000-5099") -> str:
    """A physical network of the zone carrying Guest traffic (the zone then gives VMs networks)."""
    phys = PhysicalNetwork(name=f"phys-{zone_id[:8]}", zone_id=zone_id, state="Enabled", isolation_methods=isolation,
                           vnet_range=vnet_range)
    db.add(phys)
    db.flush()
    db.add(PhysicalNetworkTrafficType(physical_network_id=phys.id, traffic_type="Guest", kvm_label=KVM_LABEL,
                                      hyperv_label=HYPERV_LABEL))
    db.flush()
    return phys.id


def offering(db: Session, guest_type: str) -> str:
    name = f"test-{guest_type}"
    existing = db.scalar(select(NetworkOffering.id).where(NetworkOffering.name == name))
    if existing is not None:
        return existing
    services = {} if guest_type == "L2" else {"Dhcp": ["VirtualRouter"], "Dns": ["VirtualRouter"],
                                              "UserData": ["VirtualRouter"]}
    row = NetworkOffering(name=name, display_text=name, guest_ip_type=guest_type, state="Enabled",
                          services_json=json.dumps(services), specify_vlan=guest_type != "Isolated")
    db.add(row)
    db.flush()
    return row.id


def network(db: Session, zone_id: str, phys_id: str, account: Account, name: str, *, guest_type: str = "Isolated",
            cidr: str | None = "10.1.1.0/24", gateway: str | None = "10.1.1.1", broadcast_uri: str | None = None,
            ranges: tuple[tuple[str, str], ...] = (), acl: str | None = None, state: str = "Allocated") -> str:
    """A network; shared ones get their address ``ranges`` as ``vlan_ip_range`` rows."""
    row = Network(name=name, display_text=name, zone_id=zone_id, physical_network_id=phys_id,
                  network_offering_id=offering(db, guest_type), account_id=account.id, domain_id=account.domain_id,
                  acl_type=acl or ("Domain" if guest_type == "Shared" else "Account"), guest_type=guest_type,
                  state=state, cidr=cidr, gateway=gateway, broadcast_uri=broadcast_uri,
                  broadcast_domain_type="Vxlan" if (broadcast_uri or "").startswith("vxlan") else "Vlan")
    db.add(row)
    db.flush()
    for start, end in ranges:
        netmask = "255.255.255.0"
        db.add(VlanIpRange(zone_id=zone_id, physical_network_id=phys_id, network_id=row.id,
                           vlan_tag=(broadcast_uri or "untagged").split("://")[-1], gateway=gateway or "",
                           netmask=netmask, start_ip=start, end_ip=end))
    db.flush()
    return row.id
