"""Port forwarding, ingress firewall and egress firewall rules (CloudStack's ``portforwardingrule`` and
``firewallrule`` objects). Each change writes its rows (a new rule Add, a deleted one Revoke) and
queues the job that applies it to the network's router; see :mod:`.public_ips` for the helpers."""

from __future__ import annotations

import ipaddress

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.commands.public_ips import (
    check_firewall_service,
    mine,
    network_of,
    owned_ip,
    owned_rule,
    queue_change,
    rule_vm,
)
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import FirewallRule, Network, PortForwardingRule
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import rules as RULES
from hvcloud.server.views.public_ips import firewall_rule_view, port_forward_view
from hvcloud.server.views.tags import TagMap, tag_map

command = REGISTRY.command

PF_FIELDS = ("id", "privateport", "privateendport", "protocol", "publicport", "publicendport", "virtualmachineid",
             "virtualmachinename", "virtualmachinedisplayname", "ipaddressid", "ipaddress", "state", "cidrlist",
             "vmguestip", "networkid", "fordisplay", "tags")
FW_FIELDS = ("id", "protocol", "startport", "endport", "ipaddressid", "ipaddress", "networkid", "state",
             "cidrlist", "destcidrlist", "icmptype", "icmpcode", "fordisplay", "tags")
_LIST_OWNER = (Param("account", description="list resources by account. Must be used with the domainId parameter."),
               Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
               Param("isrecursive", "boolean", description="with domainid: the domain's sub-domains too"),
               Param("projectid", "uuid", description="list objects by project"),
               Param("fordisplay", "boolean", description="list resources by display flag"),
               Param("tags", "map", description="List resources by tags (key/value pairs)"))


def _list(ctx: CallContext, args: Args, purpose: str, traffic: str) -> tuple[list[FirewallRule], int, TagMap]:
    """A page of rules and their tags."""
    resource_type = T.PORT_FORWARDING_RULE if purpose == RR.PORT_FORWARDING else T.FIREWALL_RULE
    stmt = select(FirewallRule).where(FirewallRule.purpose == purpose, FirewallRule.traffic_type == traffic)
    owner = ctx.owner_and_domain_filter(FirewallRule.account_id, FirewallRule.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    if args.has("projectid"):
        stmt = stmt.where(FirewallRule.id.is_(None))  # no projects here
    for cond in tag_conditions(args, resource_type, FirewallRule.id):
        stmt = stmt.where(cond)
    for param, column in (("id", FirewallRule.id), ("ipaddressid", FirewallRule.ip_address_id),
                          ("networkid", FirewallRule.network_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value.lower())
    display = args.opt_bool("fordisplay")
    if display is not None:
        stmt = stmt.where(FirewallRule.display.is_(display))
    rows, count = ctx.page(stmt.order_by(FirewallRule.created, FirewallRule.id), args)
    return rows, count, tag_map(ctx.db, resource_type, [r.id for r in rows])


# ---------------------------------------------------------------------------- port forwarding


@command("createPortForwardingRule", "Creates a port forwarding rule", admin=False, isasync=True, params=[
    Param("ipaddressid", "uuid", required=True, description="the IP address id of the port forwarding rule"),
    Param("privateport", "integer", required=True, description="the starting port of port forwarding rule's "
          "private port range"),
    Param("privateendport", "integer", description="the ending port of port forwarding rule's private port range"),
    Param("protocol", required=True, description="the protocol for the port forwarding rule. Valid values are TCP "
          "or UDP."),
    Param("publicport", "integer", required=True, description="the starting port of port forwarding rule's public "
          "port range"),
    Param("publicendport", "integer", description="the ending port of port forwarding rule's private port range"),
    Param("virtualmachineid", "uuid", required=True, description="the ID of the virtual machine for the port "
          "forwarding rule"),
    Param("cidrlist", "list", length=4096, description="the cidr list to forward traffic from"),
    Param("openfirewall", "boolean", description="if true, firewall rule for source/end public port is "
          "automatically created; if false - firewall rule has to be created explicitly. Has value true by default"),
    Param("networkid", "uuid", description="the network of the virtual machine the port forwarding rule will be "
          "created for."),
    Param("vmguestip", description="VM guest nic secondary IP address for the port forwarding rule"),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the rule to the end user"),
], response=PF_FIELDS)
def create_port_forwarding_rule(ctx: CallContext, args: Args) -> Result:
    ip = owned_ip(ctx, args)
    RULES.usable_address(ip, "a port forwarding rule")
    network = network_of(ctx, ip.network_id, "ipaddressid")
    if args.has("networkid") and args.str("networkid").lower() != network.id:
        raise errors.param_error("Invalid networkid: it is not the network of the ip address")
    check_firewall_service(network, "PortForwarding", "ipaddressid")
    proto = RULES.protocol(args.str("protocol"), RULES.PORT_PROTOCOLS)
    ps, pe, qs, qe = RULES.forward_ports(args.opt_int("publicport"), args.opt_int("publicendport"),
                                         args.opt_int("privateport"), args.opt_int("privateendport"))
    cidrs = RULES.cidr_list(args.list("cidrlist"))
    vm, guest_ip = rule_vm(ctx, args, network, ip.account_id, guest_ip=args.opt_str("vmguestip"))
    spec = RULES.RuleSpec(proto, ps, pe, cidrs=cidrs)
    RULES.check_conflicts(ctx.db, ip=ip, network_id=network.id, purpose=RR.PORT_FORWARDING, traffic=RR.INGRESS,
                          spec=spec)
    display = args.bool("fordisplay", True)
    rule = RULES.add_rule(ctx.db, ip=ip, network_id=network.id, account_id=ip.account_id, domain_id=ip.domain_id,
                          purpose=RR.PORT_FORWARDING, traffic=RR.INGRESS, spec=spec, display=display)
    ctx.db.add(PortForwardingRule(id=rule.id, vm_id=vm.id, dest_ip=guest_ip, dest_port_start=qs, dest_port_end=qe))
    change = RR.Change(rule_ids=[rule.id])
    if args.bool("openfirewall", True):
        fw_spec = RULES.RuleSpec(proto, ps, pe, cidrs=cidrs)
        RULES.check_conflicts(ctx.db, ip=ip, network_id=network.id, purpose=RR.FIREWALL, traffic=RR.INGRESS,
                              spec=fw_spec)
        fw = RULES.add_rule(ctx.db, ip=ip, network_id=network.id, account_id=ip.account_id, domain_id=ip.domain_id,
                            purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=fw_spec, related_id=rule.id,
                            display=display)
        change.rule_ids.insert(0, fw.id)
    ctx.db.flush()
    return queue_change(ctx, network.id, change, event="NET.RULEADD",
                        description=f"Creating port forwarding rule {ip.public_ip_address}:{ps}-{pe} to {vm.name}",
                        resource_type="PortForwardingRule", resource_id=rule.id, result_kind="portforwardingrule",
                        create=True)


@command("listPortForwardingRules", "Lists all port forwarding rules for an IP address.", admin=False,
         listall=True, params=[
    Param("id", "uuid", description="Lists rule with the specified ID."),
    Param("ipaddressid", "uuid", description="the ID of IP address of the port forwarding services"),
    Param("networkid", "uuid", description="list port forwarding rules for certain network"),
    *_LIST_OWNER,
], response=PF_FIELDS)
def list_port_forwarding_rules(ctx: CallContext, args: Args) -> Result:
    rows, count, tags = _list(ctx, args, RR.PORT_FORWARDING, RR.INGRESS)
    return ListResult("portforwardingrule", [port_forward_view(ctx.db, r, tags.get(r.id, [])) for r in rows], count)


@command("updatePortForwardingRule", "Updates a port forwarding rule. Only the private port and the virtual "
         "machine can be updated.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the port forwarding rule"),
    Param("privateport", "integer", description="the private start port of the port forwarding rule"),
    Param("privateendport", "integer", description="the private end port of the port forwarding rule"),
    Param("virtualmachineid", "uuid", description="the ID of the virtual machine for the port forwarding rule"),
    Param("vmguestip", description="VM guest nic Secondary ip address for the port forwarding rule"),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the rule to the end user"),
    Param("customid", description="an optional field, in case you want to set a custom id to the resource."),
], response=PF_FIELDS)
def update_port_forwarding_rule(ctx: CallContext, args: Args) -> Result:
    rule = owned_rule(ctx, args, RR.PORT_FORWARDING)
    pf = ctx.db.get(PortForwardingRule, rule.id)
    if pf is None or rule.state == RR.REVOKE:
        raise errors.param_error(f"Invalid id {rule.id}: the rule is being deleted")
    if args.has("customid"):
        raise errors.param_error("Invalid customid: custom ids are not supported")
    network = ctx.db.get(Network, rule.network_id)
    assert network is not None
    first = args.opt_int("privateport")
    last = args.opt_int("privateendport")
    if first is not None or last is not None:
        start = first if first is not None else pf.dest_port_start
        end = last if last is not None else (start + (pf.dest_port_end - pf.dest_port_start) if first is not None
                                             else pf.dest_port_end)
        _ps, _pe, qs, qe = RULES.forward_ports(rule.start_port, rule.end_port, start, end)
        pf.dest_port_start, pf.dest_port_end = qs, qe
    if args.has("virtualmachineid"):
        vm, guest_ip = rule_vm(ctx, args, network, rule.account_id, guest_ip=args.opt_str("vmguestip"))
        pf.vm_id, pf.dest_ip = vm.id, guest_ip
    elif args.has("vmguestip"):
        raise errors.param_error("Invalid vmguestip: give virtualmachineid with it")
    display = args.opt_bool("fordisplay")
    if display is not None:
        rule.display = display
    rule.state = RR.ADD  # the router gets the rule again, with what changed
    ctx.db.flush()
    return queue_change(ctx, network.id, RR.Change(rule_ids=[rule.id]), event="NET.RULEMODIFY",
                        description=f"Updating port forwarding rule {rule.id}", resource_type="PortForwardingRule",
                        resource_id=rule.id, result_kind="portforwardingrule")


def _delete(ctx: CallContext, rule: FirewallRule, event: str, what: str, resource_type: str) -> Result:
    if rule.state == RR.REVOKE:
        raise errors.param_error(f"Invalid id {rule.id}: the rule is being deleted already")
    ids = RULES.revoke(ctx.db, rule)
    ctx.db.flush()
    return queue_change(ctx, rule.network_id, RR.Change(rule_ids=ids), event=event,
                        description=f"Deleting {what} {rule.id}", resource_type=resource_type, resource_id=rule.id)


@command("deletePortForwardingRule", "Deletes a port forwarding rule", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the port forwarding rule"),
])
def delete_port_forwarding_rule(ctx: CallContext, args: Args) -> Result:
    rule = owned_rule(ctx, args, RR.PORT_FORWARDING)
    return _delete(ctx, rule, "NET.RULEDELETE", "port forwarding rule", "PortForwardingRule")


# ---------------------------------------------------------------------------- ingress firewall


_FW_PARAMS = (
    Param("protocol", required=True, description="the protocol for the firewall rule. Valid values are TCP/UDP/ICMP."),
    Param("startport", "integer", description="the starting port of firewall rule"),
    Param("endport", "integer", description="the ending port of firewall rule"),
    Param("cidrlist", "list", length=4096, description="the source CIDR list to allow traffic from"),
    Param("icmptype", "integer", description="type of the ICMP message being sent"),
    Param("icmpcode", "integer", description="error code for this ICMP message"),
    Param("type", description="type of firewall rule: system/user"),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the rule to the end user"),
)


def _rule_type(args: Args) -> None:
    kind = args.opt_str("type")
    if kind is not None and kind.strip().lower() != "user":
        raise errors.param_error(f"Invalid type {kind[:16]}: only user rules can be created")


@command("createFirewallRule", "Creates a firewall rule for a given IP address", admin=False, isasync=True,
         params=[Param("ipaddressid", "uuid", required=True, description="the IP address id of the firewall rule"),
                 *_FW_PARAMS], response=FW_FIELDS)
def create_firewall_rule(ctx: CallContext, args: Args) -> Result:
    ip = owned_ip(ctx, args)
    RULES.usable_address(ip, "a firewall rule")
    network = network_of(ctx, ip.network_id, "ipaddressid")
    check_firewall_service(network, "Firewall", "ipaddressid")
    _rule_type(args)
    spec = RULES.firewall_spec(args.str("protocol"), RULES.FIREWALL_PROTOCOLS, args.opt_int("startport"),
                               args.opt_int("endport"), args.opt_int("icmptype"), args.opt_int("icmpcode"),
                               args.list("cidrlist"))
    RULES.check_conflicts(ctx.db, ip=ip, network_id=network.id, purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=spec)
    rule = RULES.add_rule(ctx.db, ip=ip, network_id=network.id, account_id=ip.account_id, domain_id=ip.domain_id,
                          purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=spec, display=args.bool("fordisplay", True))
    return queue_change(ctx, network.id, RR.Change(rule_ids=[rule.id]), event="FIREWALL.OPEN",
                        description=f"Creating firewall rule on {ip.public_ip_address}", resource_type="FirewallRule",
                        resource_id=rule.id, result_kind="firewallrule", create=True)


@command("listFirewallRules", "Lists all firewall rules for an IP address.", admin=False, listall=True, params=[
    Param("id", "uuid", description="Lists rule with the specified ID."),
    Param("ipaddressid", "uuid", description="the ID of IP address of the firewall services"),
    Param("networkid", "uuid", description="list firewall rules for certain network"),
    *_LIST_OWNER,
], response=FW_FIELDS)
def list_firewall_rules(ctx: CallContext, args: Args) -> Result:
    rows, count, tags = _list(ctx, args, RR.FIREWALL, RR.INGRESS)
    return ListResult("firewallrule", [firewall_rule_view(ctx.db, r, tags.get(r.id, [])) for r in rows], count)


@command("deleteFirewallRule", "Deletes a firewall rule", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the firewall rule"),
])
def delete_firewall_rule(ctx: CallContext, args: Args) -> Result:
    rule = owned_rule(ctx, args, RR.FIREWALL)
    return _delete(ctx, rule, "FIREWALL.CLOSE", "firewall rule", "FirewallRule")


# ---------------------------------------------------------------------------- egress firewall


@command("createEgressFirewallRule", "Creates a egress firewall rule for a given network", admin=False,
         isasync=True, params=[
    Param("networkid", "uuid", required=True, description="the network id of the port forwarding rule"),
    Param("destcidrlist", "list", length=4096, description="the cidr list to forward traffic to"),
    *_FW_PARAMS,
], response=FW_FIELDS)
def create_egress_firewall_rule(ctx: CallContext, args: Args) -> Result:
    network = ctx.require(args, Network, "networkid")
    if network.removed is not None:
        raise errors.entity_not_found("networkid", network.id)
    mine(ctx, network.account_id, "network", network.id)
    check_firewall_service(network, "Firewall", "networkid")
    _rule_type(args)
    spec = RULES.firewall_spec(args.str("protocol"), RULES.EGRESS_PROTOCOLS, args.opt_int("startport"),
                               args.opt_int("endport"), args.opt_int("icmptype"), args.opt_int("icmpcode"),
                               args.list("cidrlist"), args.list("destcidrlist"))
    if network.cidr:
        guest = ipaddress.IPv4Network(network.cidr, strict=False)
        for cidr in spec.cidrs:
            if not ipaddress.IPv4Network(cidr).subnet_of(guest):
                raise errors.param_error(f"Invalid cidrlist: {cidr} is not within the network's guest CIDR "
                                         f"{network.cidr}")
    RULES.check_conflicts(ctx.db, ip=None, network_id=network.id, purpose=RR.FIREWALL, traffic=RR.EGRESS, spec=spec)
    rule = RULES.add_rule(ctx.db, ip=None, network_id=network.id, account_id=network.account_id,
                          domain_id=network.domain_id, purpose=RR.FIREWALL, traffic=RR.EGRESS, spec=spec,
                          display=args.bool("fordisplay", True))
    return queue_change(ctx, network.id, RR.Change(rule_ids=[rule.id]), event="FIREWALL.EGRESS.OPEN",
                        description=f"Creating egress firewall rule on network {network.name}",
                        resource_type="FirewallRule", resource_id=rule.id, result_kind="firewallrule", create=True)


@command("listEgressFirewallRules", "Lists all egress firewall rules for network ID.", admin=False, listall=True,
         params=[
    Param("id", "uuid", description="Lists rule with the specified ID."),
    Param("networkid", "uuid", description="the network ID for egress firewall services"),
    *_LIST_OWNER,
], response=FW_FIELDS)
def list_egress_firewall_rules(ctx: CallContext, args: Args) -> Result:
    rows, count, tags = _list(ctx, args, RR.FIREWALL, RR.EGRESS)
    return ListResult("firewallrule", [firewall_rule_view(ctx.db, r, tags.get(r.id, [])) for r in rows], count)


@command("deleteEgressFirewallRule", "Deletes an egress firewall rule", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the firewall rule"),
])
def delete_egress_firewall_rule(ctx: CallContext, args: Args) -> Result:
    rule = owned_rule(ctx, args, RR.FIREWALL, RR.EGRESS)
    return _delete(ctx, rule, "FIREWALL.EGRESS.CLOSE", "egress firewall rule", "FirewallRule")
