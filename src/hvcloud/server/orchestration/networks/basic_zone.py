"""A ``networktype=Basic`` zone's networking, as CloudStack's: one shared guest network for the whole
zone (untagged unless given a vlan; ``DefaultSharedNetworkOfferingWithSGService`` for security
groups), made by the admin's ``createNetwork`` as the zone wizard does, its addresses from the pod
ranges ``createVlanIpRange podid=… networkid=…`` adds. The first range gives the network its gateway
and netmask. A deploy without ``networkids`` lands on it (:func:`nics.default_network`), in the
owner's ``default`` security group when the network has security groups.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server import errors
from hvcloud.server.db.models import Network, Zone
from hvcloud.server.orchestration.networks import security_groups as SG
from hvcloud.server.orchestration.networks import validation as V

BASIC = "Basic"


def check_new_network(db: Session, zone: Zone) -> None:
    """CloudStack's one guest network per Basic zone."""
    existing = db.scalar(select(Network.id).where(Network.zone_id == zone.id, Network.traffic_type == "Guest",
                                                  Network.removed.is_(None)).limit(1))
    if existing is not None:
        raise errors.param_error(f"Invalid zoneid: Can't have more than one Guest network in zone with network type "
                                 f"{BASIC} (zone {zone.name})")


def network_created(db: Session, zone: Zone, network: Network) -> None:
    """A Basic zone whose network filters with security groups says so (``securitygroupsenabled``)."""
    db.refresh(network, ["offering"])
    if SG.sg_network(network):
        zone.security_groups_enabled = True


def adopt_range(network: Network, gateway: str | None, netmask: str | None) -> None:
    """A Basic zone's network created without addresses takes its gateway and CIDR from its first range."""
    if gateway is None or netmask is None:
        raise errors.param_error(f"Invalid gateway: network {network.name} has no addresses yet; give gateway and "
                                 "netmask with its first range")
    address = V.ipv4(gateway, "gateway")
    net = ipaddress.IPv4Network(f"{address}/{V.netmask_prefix(netmask)}", strict=False)
    V.check_size(net, "netmask")
    V.host_in(net, address, "gateway")
    network.cidr, network.gateway = str(net), str(address)
