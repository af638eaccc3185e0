"""CloudStack's ``physicalnetwork``, ``traffictype``, ``networkserviceprovider``,
``virtualrouterelement``, ``vlan`` (IP range), ``networkoffering`` and ``network`` objects."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from sqlalchemy.orm import object_session, selectinload
from sqlalchemy.sql.base import ExecutableOption

from hvcloud.server.db.models import (
    Network,
    NetworkOffering,
    NetworkServiceProvider,
    PhysicalNetwork,
    PhysicalNetworkTrafficType,
    VirtualRouterElement,
    VlanIpRange,
    Zone,
)
from hvcloud.server.orchestration.resource_tags import NETWORK
from hvcloud.server.views.fields import compact
from hvcloud.server.views.tags import tags_of

#: what :func:`network_view` reads of a network's relationships, loaded for a whole page at once
NETWORK_VIEW_LOADS: tuple[ExecutableOption, ...] = (
    selectinload(Network.zone), selectinload(Network.offering), selectinload(Network.account),
    selectinload(Network.domain))
#: providers whose services can be enabled one by one (CloudStack's ``canenableindividualservice``)
_INDIVIDUAL_SERVICES = {"VirtualRouter": True, "SecurityGroupProvider": False}


def physical_network_view(pn: PhysicalNetwork, zone: Zone | None = None) -> dict[str, Any]:
    return compact({"id": pn.id, "name": pn.name, "zoneid": pn.zone_id, "zonename": zone.name if zone else None,
                    "state": pn.state, "isolationmethods": pn.isolation_methods, "vlan": pn.vnet_range,
                    "broadcastdomainrange": pn.broadcast_domain_range, "networkspeed": pn.network_speed,
                    "tags": pn.tags, "domainid": pn.domain_id})


def traffic_type_view(t: PhysicalNetworkTrafficType, pn: PhysicalNetwork | None = None) -> dict[str, Any]:
    return compact({"id": t.id, "traffictype": t.traffic_type, "physicalnetworkid": t.physical_network_id,
                    "kvmnetworklabel": t.kvm_label, "hypervnetworklabel": t.hyperv_label,
                    "xennetworklabel": t.xen_label, "vmwarenetworklabel": t.vmware_label,
                    "simulatorlabel": t.simulator_label, "vlan": t.vlan,
                    "isolationmethods": pn.isolation_methods if pn else None})


def provider_view(nsp: NetworkServiceProvider) -> dict[str, Any]:
    return compact({"id": nsp.id, "name": nsp.name, "physicalnetworkid": nsp.physical_network_id,
                    "state": nsp.state, "servicelist": [s for s in nsp.services.split(",") if s],
                    "canenableindividualservice": _INDIVIDUAL_SERVICES.get(nsp.name, False)})


def element_view(e: VirtualRouterElement) -> dict[str, Any]:
    return compact({"id": e.id, "nspid": e.provider_id, "enabled": e.enabled})


def vlan_range_view(r: VlanIpRange, zone: Zone | None = None) -> dict[str, Any]:
    cidr = str(ipaddress.IPv4Network(f"{r.gateway}/{r.netmask}", strict=False))
    return compact({"id": r.id, "forvirtualnetwork": r.for_virtual_network, "forsystemvms": r.for_system_vms,
                    "zoneid": r.zone_id, "zonename": zone.name if zone else None, "vlan": r.vlan_tag,
                    "podid": r.pod_id, "gateway": r.gateway, "netmask": r.netmask, "cidr": cidr,
                    "startip": r.start_ip, "endip": r.end_ip, "description": f"{r.start_ip}-{r.end_ip}",
                    "networkid": r.network_id, "physicalnetworkid": r.physical_network_id,
                    "accountid": r.account_id, "domainid": r.domain_id})


def _services(offering: NetworkOffering, with_providers: bool = True) -> list[dict[str, Any]]:
    services = json.loads(offering.services_json or "{}")
    details = json.loads(offering.details_json or "{}")
    capabilities = details.get("capabilities", {}) if isinstance(details, dict) else {}
    out: list[dict[str, Any]] = []
    for name in sorted(services):
        entry: dict[str, Any] = {"name": name}
        if with_providers:
            entry["provider"] = [{"name": p} for p in services[name]]
        caps = capabilities.get(name, {})
        if caps:
            entry["capability"] = [{"name": k, "value": str(v), "canchooseservicecapability": True}
                                   for k, v in sorted(caps.items())]
        out.append(entry)
    return out


def network_offering_view(o: NetworkOffering) -> dict[str, Any]:
    details = json.loads(o.details_json or "{}")
    details = details if isinstance(details, dict) else {}
    return compact({
        "id": o.id, "name": o.name, "displaytext": o.display_text, "traffictype": o.traffic_type,
        "isdefault": o.is_default, "specifyvlan": o.specify_vlan, "conservemode": o.conserve_mode,
        "specifyipranges": o.specify_ip_ranges, "availability": o.availability, "networkrate": o.network_rate,
        "state": o.state, "guestiptype": o.guest_ip_type, "service": _services(o), "forvpc": False,
        "ispersistent": bool(details.get("ispersistent", False)), "egressdefaultpolicy": o.egress_default_policy,
        "supportsstrechedl2subnet": False, "supportspublicaccess": False, "tags": o.tags,
        "maxconnections": details.get("maxconnections"), "internetprotocol": "IPv4", "created": o.created,
    })


def network_view(n: Network, tags: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The full ``network`` object; ``vlan`` and ``broadcasturi`` are for root admins (the API drops
    them for other callers, api.visibility). ``tags``: the network's, when a list loaded those of its
    whole page."""
    offering = n.offering
    zone = n.zone
    details = json.loads(offering.details_json or "{}")
    details = details if isinstance(details, dict) else {}
    netmask = str(ipaddress.IPv4Network(n.cidr).netmask) if n.cidr else None
    vlan = None
    if n.broadcast_uri:
        vlan = n.broadcast_uri.split("://", 1)[-1]
    owner = n.account if n.acl_type == "Account" else None
    return compact({
        "id": n.id, "name": n.name, "displaytext": n.display_text, "broadcastdomaintype": n.broadcast_domain_type,
        "traffictype": n.traffic_type, "gateway": n.gateway, "netmask": netmask, "cidr": n.cidr,
        "zoneid": n.zone_id, "zonename": zone.name, "networkofferingid": offering.id,
        "networkofferingname": offering.name, "networkofferingdisplaytext": offering.display_text,
        "networkofferingconservemode": offering.conserve_mode,
        "networkofferingavailability": offering.availability, "issystem": offering.is_system, "state": n.state,
        "related": n.id, "broadcasturi": n.broadcast_uri, "vlan": vlan,
        "dns1": n.dns1 or (zone.dns1 if n.guest_type != "L2" else None),
        "dns2": n.dns2 or (zone.dns2 if n.guest_type != "L2" else None),
        "type": n.guest_type, "acltype": n.acl_type, "subdomainaccess": n.subdomain_access,
        "account": owner.name if owner else None, "domainid": n.domain_id, "domain": n.domain.name,
        "domainpath": n.domain.path, "service": _services(offering), "networkdomain": n.network_domain,
        "physicalnetworkid": n.physical_network_id, "restartrequired": n.restart_required,
        "specifyipranges": offering.specify_ip_ranges, "canusefordeploy": n.removed is None,
        "ispersistent": bool(details.get("ispersistent", False)), "redundantrouter": False,
        "strechedl2subnet": False, "displaynetwork": n.display_network, "created": n.created,
        "tags": tags if tags is not None else tags_of(object_session(n), NETWORK, n.id),
        "hasannotations": False,
    })
