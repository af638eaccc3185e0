"""CloudStack's ``publicipaddress``, ``firewallrule``, ``portforwardingrule``, ``ipforwardingrule`` and
``loadbalancer`` objects (field names and JSON types as CloudStack's responses: port forwards' and
load balancers' ports are strings, firewall rules' integers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hvcloud.server.db.models import (
    Account,
    Domain,
    FirewallRule,
    FirewallRuleCidr,
    LoadBalancingRule,
    Network,
    PortForwardingRule,
    UserIpAddress,
    VlanIpRange,
    VMInstance,
    Zone,
)
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.views.fields import compact
from hvcloud.server.views.tags import tags_of

Tags = list[dict[str, Any]] | None


def _owner(db: Session, account_id: str) -> dict[str, Any]:
    account = db.get(Account, account_id)
    domain = db.get(Domain, account.domain_id) if account is not None else None
    return {"account": account.name if account else None, "domainid": domain.id if domain else None,
            "domain": domain.name if domain else None}


def _vm(db: Session, vm_id: str | None) -> dict[str, Any]:
    vm = db.get(VMInstance, vm_id) if vm_id else None
    if vm is None:
        return {}
    return {"virtualmachineid": vm.id, "virtualmachinename": vm.name, "virtualmachinedisplayname": vm.display_name}


def _cidrs(db: Session, rule_id: str, kind: str = "source") -> str | None:
    values = list(db.scalars(select(FirewallRuleCidr.cidr).where(FirewallRuleCidr.rule_id == rule_id,
                                                                 FirewallRuleCidr.kind == kind)
                             .order_by(FirewallRuleCidr.id)))
    return ",".join(values) if values else None


def ip_view(db: Session, ip: UserIpAddress, tags: Tags = None) -> dict[str, Any]:
    """``tags`` (here and in the rule views): the object's, when a list loaded those of its page."""
    zone = db.get(Zone, ip.zone_id)
    rng = db.get(VlanIpRange, ip.vlan_id)
    network = db.get(Network, ip.network_id) if ip.network_id else None
    out: dict[str, Any] = {
        "id": ip.id, "ipaddress": ip.public_ip_address, "allocated": ip.allocated, "zoneid": ip.zone_id,
        "zonename": zone.name if zone else None, "issourcenat": ip.source_nat, "isstaticnat": ip.one_to_one_nat,
        "issystem": ip.is_system, "forvirtualnetwork": True, "vlanid": ip.vlan_id,
        "vlanname": rng.vlan_tag if rng else None, "physicalnetworkid": ip.physical_network_id,
        "associatednetworkid": ip.network_id, "associatednetworkname": network.name if network else None,
        "state": "Free" if ip.removed is not None else ip.state, "fordisplay": ip.display,
        "isportable": False, "tags": tags if tags is not None else tags_of(db, T.PUBLIC_IP, ip.id),
        **_owner(db, ip.account_id)}
    if ip.one_to_one_nat:
        out.update(_vm(db, ip.vm_id))
        out["vmipaddress"] = ip.vm_ip
    return compact(out)


def firewall_rule_view(db: Session, rule: FirewallRule, tags: Tags = None) -> dict[str, Any]:
    ip = db.get(UserIpAddress, rule.ip_address_id) if rule.ip_address_id else None
    return compact({"id": rule.id, "protocol": rule.protocol, "startport": rule.start_port,
                    "endport": rule.end_port, "ipaddressid": rule.ip_address_id,
                    "ipaddress": ip.public_ip_address if ip else None, "networkid": rule.network_id,
                    "state": rule.state, "cidrlist": _cidrs(db, rule.id) or ("" if rule.traffic_type == "Egress"
                                                                            else "0.0.0.0/0"),
                    "destcidrlist": _cidrs(db, rule.id, "destination"), "icmptype": rule.icmp_type,
                    "icmpcode": rule.icmp_code, "traffictype": rule.traffic_type, "fordisplay": rule.display,
                    "tags": tags if tags is not None else tags_of(db, T.FIREWALL_RULE, rule.id)})


def port_forward_view(db: Session, rule: FirewallRule, tags: Tags = None) -> dict[str, Any]:
    pf = db.get(PortForwardingRule, rule.id)
    ip = db.get(UserIpAddress, rule.ip_address_id) if rule.ip_address_id else None
    return compact({"id": rule.id, "privateport": str(pf.dest_port_start) if pf else None,
                    "privateendport": str(pf.dest_port_end) if pf else None, "protocol": rule.protocol,
                    "publicport": str(rule.start_port), "publicendport": str(rule.end_port),
                    **_vm(db, pf.vm_id if pf else None), "vmguestip": pf.dest_ip if pf else None,
                    "ipaddressid": rule.ip_address_id, "ipaddress": ip.public_ip_address if ip else None,
                    "state": rule.state, "cidrlist": _cidrs(db, rule.id) or "", "networkid": rule.network_id,
                    "fordisplay": rule.display,
                    "tags": tags if tags is not None else tags_of(db, T.PORT_FORWARDING_RULE, rule.id)})


def ip_forwarding_view(db: Session, ip: UserIpAddress) -> dict[str, Any]:
    """A static NAT address as ``listIpForwardingRules`` shows it: one-to-one, every protocol and
    port (CloudStack lists only ``createIpForwardingRule`` rules here, which are not built; clients
    such as libcloud read ``startport``/``endport`` of each entry)."""
    return compact({"id": ip.id, "protocol": "all", "startport": 1, "endport": 65535, "ipaddressid": ip.id,
                    "ipaddress": ip.public_ip_address,
                    **_vm(db, ip.vm_id), "vmguestip": ip.vm_ip, "state": "Active", "cidrlist": "",
                    "fordisplay": ip.display, "tags": []})


def load_balancer_view(db: Session, rule: FirewallRule, tags: Tags = None) -> dict[str, Any]:
    lb = db.get(LoadBalancingRule, rule.id)
    ip = db.get(UserIpAddress, rule.ip_address_id) if rule.ip_address_id else None
    zone = db.get(Zone, ip.zone_id) if ip else None
    return compact({"id": rule.id, "name": lb.name if lb else None, "description": lb.description if lb else None,
                    "publicipid": rule.ip_address_id, "publicip": ip.public_ip_address if ip else None,
                    "publicport": str(rule.start_port), "privateport": str(lb.default_port_start) if lb else None,
                    "algorithm": lb.algorithm if lb else None, "networkid": rule.network_id,
                    "cidrlist": _cidrs(db, rule.id) or "", "state": rule.state,
                    "zoneid": ip.zone_id if ip else None, "zonename": zone.name if zone else None,
                    "protocol": (lb.lb_protocol if lb else None) or rule.protocol, "fordisplay": rule.display,
                    "tags": tags if tags is not None else tags_of(db, T.LOAD_BALANCER, rule.id),
                    **_owner(db, rule.account_id)})


def render(db: Session, kind: str, object_id: str) -> dict[str, Any] | None:
    """A job's result object by its CloudStack name."""
    if kind in ("ipaddress", "publicipaddress"):
        ip = db.get(UserIpAddress, object_id)
        return ip_view(db, ip) if ip is not None else None
    rule = db.get(FirewallRule, object_id)
    if rule is None:
        return None
    if kind == "firewallrule":
        return firewall_rule_view(db, rule)
    if kind == "portforwardingrule":
        return port_forward_view(db, rule)
    if kind == "loadbalancer":
        return load_balancer_view(db, rule)
    return None
