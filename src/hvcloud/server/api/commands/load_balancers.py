"""Load balancer rules (CloudStack's ``loadbalancer`` object): a public address and port spread over
member VMs' private port by roundrobin, leastconn or source. CloudStack's router gets every load
balancer of the network in each ``LoadBalancerConfigCommand``; so does ours (see :mod:`.public_ips`
for the helpers and the job)."""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.commands.public_ips import (
    check_firewall_service,
    network_of,
    owned_ip,
    owned_rule,
    queue_change,
    rule_vm,
)
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import FirewallRule, LoadBalancerVmMap, LoadBalancingRule, UserIpAddress
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import rules as RULES
from hvcloud.server.views.public_ips import load_balancer_view
from hvcloud.server.views.tags import tag_map
from hvcloud.server.views.vms import vm_views

command = REGISTRY.command

LB_FIELDS = ("id", "name", "description", "publicipid", "publicip", "publicport", "privateport", "algorithm",
             "networkid", "cidrlist", "account", "domainid", "domain", "state", "zoneid", "zonename", "protocol",
             "fordisplay", "tags")
#: VMs one assign/remove call may name
MAX_VMS = 100
_LB_PROTOCOLS = ("tcp", "udp", "tcp-proxy")


def _algorithm(value: str) -> str:
    text = value.strip().lower()
    if text not in RULES.ALGORITHMS:
        raise errors.param_error(f"Invalid algorithm {value[:32]}: valid values are {', '.join(RULES.ALGORITHMS)}")
    return text


def _lb(ctx: CallContext, args: Args) -> tuple[FirewallRule, LoadBalancingRule]:
    rule = owned_rule(ctx, args, RR.LOAD_BALANCING)
    lb = ctx.db.get(LoadBalancingRule, rule.id)
    if lb is None:
        raise errors.entity_not_found("id", rule.id)
    if rule.state == RR.REVOKE:
        raise errors.param_error(f"Invalid id {rule.id}: the load balancer rule is being deleted")
    return rule, lb


@command("createLoadBalancerRule", "Creates a load balancer rule", admin=False, isasync=True, params=[
    Param("name", required=True, description="name of the load balancer rule"),
    Param("algorithm", required=True, description="load balancer algorithm (source, roundrobin, leastconn)"),
    Param("privateport", "integer", required=True, description="the private port of the private IP address/virtual "
          "machine where the network traffic will be load balanced to"),
    Param("publicport", "integer", required=True, description="the public port from where the network traffic will "
          "be load balanced from"),
    Param("publicipid", "uuid", description="public IP address ID from where the network traffic will be load "
          "balanced from"),
    Param("networkid", "uuid", description="The guest network this rule will be created for."),
    Param("zoneid", "uuid", description="zone where the load balancer is going to be created."),
    Param("description", length=4096, description="the description of the load balancer rule"),
    Param("openfirewall", "boolean", description="if true, firewall rule for source/end public port is "
          "automatically created; if false - firewall rule has to be created explicitly. Has value true by default"),
    Param("cidrlist", "list", length=4096, description="the source CIDR list to allow traffic from"),
    Param("protocol", description="The protocol for the LB such as tcp, udp or tcp-proxy."),
    Param("account", description="the account associated with the load balancer."),
    Param("domainid", "uuid", description="the domain ID associated with the load balancer"),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the rule to the end user"),
], response=LB_FIELDS)
def create_load_balancer_rule(ctx: CallContext, args: Args) -> Result:
    if not args.has("publicipid"):
        raise errors.param_error("Unable to execute API command createloadbalancerrule due to missing parameter "
                                 "publicipid")
    ip = owned_ip(ctx, args, "publicipid")
    RULES.usable_address(ip, "a load balancer rule")
    network = network_of(ctx, ip.network_id, "publicipid")
    if args.has("networkid") and args.str("networkid").lower() != network.id:
        raise errors.param_error("Invalid networkid: it is not the network of the public ip address")
    if args.has("zoneid") and args.str("zoneid").lower() != ip.zone_id:
        raise errors.param_error("Invalid zoneid: it is not the zone of the public ip address")
    check_firewall_service(network, "Lb", "publicipid")
    algorithm = _algorithm(args.str("algorithm"))
    public = RULES.port(args.opt_int("publicport"), "publicport")
    private = RULES.port(args.opt_int("privateport"), "privateport")
    assert public is not None and private is not None
    lb_protocol = RULES.protocol(args.opt_str("protocol") or "tcp", _LB_PROTOCOLS)
    proto = "udp" if lb_protocol == "udp" else "tcp"
    cidrs = RULES.cidr_list(args.list("cidrlist"))
    name = args.str("name").strip()
    if not name:
        raise errors.param_error("Invalid name: it is empty")
    spec = RULES.RuleSpec(proto, public, public, cidrs=cidrs)
    RULES.check_conflicts(ctx.db, ip=ip, network_id=network.id, purpose=RR.LOAD_BALANCING, traffic=RR.INGRESS,
                          spec=spec)
    display = args.bool("fordisplay", True)
    rule = RULES.add_rule(ctx.db, ip=ip, network_id=network.id, account_id=ip.account_id, domain_id=ip.domain_id,
                          purpose=RR.LOAD_BALANCING, traffic=RR.INGRESS, spec=spec, display=display)
    ctx.db.add(LoadBalancingRule(id=rule.id, name=name[:255], description=args.opt_str("description"),
                                 algorithm=algorithm, default_port_start=private, default_port_end=private,
                                 lb_protocol=lb_protocol if lb_protocol != proto else None))
    change = RR.Change(lb=True)
    if args.bool("openfirewall", True):
        fw_spec = RULES.RuleSpec(proto, public, public, cidrs=cidrs)
        RULES.check_conflicts(ctx.db, ip=ip, network_id=network.id, purpose=RR.FIREWALL, traffic=RR.INGRESS,
                              spec=fw_spec)
        fw = RULES.add_rule(ctx.db, ip=ip, network_id=network.id, account_id=ip.account_id, domain_id=ip.domain_id,
                            purpose=RR.FIREWALL, traffic=RR.INGRESS, spec=fw_spec, related_id=rule.id,
                            display=display)
        change.rule_ids.append(fw.id)
    ctx.db.flush()
    return queue_change(ctx, network.id, change, event="LB.CREATE",
                        description=f"Creating load balancer rule {name[:64]} on {ip.public_ip_address}:{public}",
                        resource_type="LoadBalancer", resource_id=rule.id, result_kind="loadbalancer", create=True)


@command("listLoadBalancerRules", "Lists load balancer rules.", admin=False, listall=True, params=[
    Param("id", "uuid", description="the ID of the load balancer rule"),
    Param("name", description="the name of the load balancer rule"),
    Param("publicipid", "uuid", description="the public IP address ID of the load balancer rule"),
    Param("virtualmachineid", "uuid", description="the ID of the virtual machine of the load balancer rule"),
    Param("zoneid", "uuid", description="the availability zone ID"),
    Param("networkid", "uuid", description="list by network ID the rule belongs to"),
    Param("account", description="list resources by account. Must be used with the domainId parameter."),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: the domain's sub-domains too"),
    Param("projectid", "uuid", description="list objects by project"),
    Param("fordisplay", "boolean", description="list resources by display flag"),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
], response=LB_FIELDS)
def list_load_balancer_rules(ctx: CallContext, args: Args) -> Result:
    stmt = select(FirewallRule).join(LoadBalancingRule, LoadBalancingRule.id == FirewallRule.id)
    owner = ctx.owner_and_domain_filter(FirewallRule.account_id, FirewallRule.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    if args.has("projectid"):
        stmt = stmt.where(FirewallRule.id.is_(None))
    for cond in tag_conditions(args, T.LOAD_BALANCER, FirewallRule.id):
        stmt = stmt.where(cond)
    for param, column in (("id", FirewallRule.id), ("publicipid", FirewallRule.ip_address_id),
                          ("networkid", FirewallRule.network_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value.lower())
    name = args.opt_str("name")
    if name is not None:
        stmt = stmt.where(LoadBalancingRule.name == name)
    zone = args.opt_str("zoneid")
    if zone is not None:
        stmt = stmt.where(FirewallRule.ip_address_id.in_(select(UserIpAddress.id).where(
            UserIpAddress.zone_id == zone.lower())))
    vm = args.opt_str("virtualmachineid")
    if vm is not None:
        stmt = stmt.where(FirewallRule.id.in_(select(LoadBalancerVmMap.load_balancer_id).where(
            LoadBalancerVmMap.vm_id == vm.lower(), LoadBalancerVmMap.revoke.is_(False))))
    display = args.opt_bool("fordisplay")
    if display is not None:
        stmt = stmt.where(FirewallRule.display.is_(display))
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(LoadBalancingRule.name.ilike(pattern, escape="\\"),
                              LoadBalancingRule.description.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(FirewallRule.created, FirewallRule.id), args)
    tags = tag_map(ctx.db, T.LOAD_BALANCER, [r.id for r in rows])
    return ListResult("loadbalancerrule", [load_balancer_view(ctx.db, r, tags.get(r.id, [])) for r in rows], count)


def _vm_ids(ctx: CallContext, args: Args) -> list[str]:
    ids = [v.strip().lower() for v in args.list("virtualmachineids") if v.strip()]
    entries = args.map("vmidipmap")
    if len(entries) > MAX_VMS:
        raise errors.param_error(f"Invalid vmidipmap: at most {MAX_VMS} entries")
    for index in sorted(entries):
        vm = entries[index].get("vmid")
        if not vm:
            raise errors.param_error(f"Invalid vmidipmap[{index}]: give vmid")
        ids.append(vm.strip().lower())
    if not ids:
        raise errors.param_error("Unable to execute API command: give virtualmachineids or vmidipmap")
    if len(ids) > MAX_VMS:
        raise errors.param_error(f"Invalid virtualmachineids: at most {MAX_VMS} VMs")
    return list(dict.fromkeys(ids))


@command("assignToLoadBalancerRule", "Assigns virtual machine or a list of virtual machines to a load balancer "
         "rule.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the load balancer rule"),
    Param("virtualmachineids", "list", length=8192, description="the list of IDs of the virtual machine that are "
          "being assigned to the load balancer rule(i.e. virtualMachineIds=1,2,3)"),
    Param("vmidipmap", "map", description="VM ID and IP map, vmidipmap[0].vmid=1 vmidipmap[0].vmip=10.1.1.75"),
])
def assign_to_load_balancer_rule(ctx: CallContext, args: Args) -> Result:
    rule, _lb_row = _lb(ctx, args)
    network = network_of(ctx, rule.network_id, "id")
    members: list[tuple[str, str]] = []
    for vm_id in _vm_ids(ctx, args):
        one = Args(args.command, {"virtualmachineid": vm_id})  # one VM of the list, as rule_vm reads it
        vm, guest_ip = rule_vm(ctx, one, network, rule.account_id)
        existing = ctx.db.scalar(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id == rule.id,
                                                                 LoadBalancerVmMap.vm_id == vm.id))
        if existing is not None and not existing.revoke:
            raise errors.param_error(f"Invalid virtualmachineids: VM {vm.name} is already assigned to load balancer "
                                     f"rule {rule.id}")
        members.append((vm.id, guest_ip))
    for vm_id, guest_ip in members:
        existing = ctx.db.scalar(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id == rule.id,
                                                                 LoadBalancerVmMap.vm_id == vm_id))
        if existing is not None:
            existing.revoke, existing.state, existing.vm_ip = False, RR.ADD, guest_ip
        else:
            ctx.db.add(LoadBalancerVmMap(load_balancer_id=rule.id, vm_id=vm_id, vm_ip=guest_ip, state=RR.ADD))
    ctx.db.flush()
    return queue_change(ctx, network.id, RR.Change(lb=True), event="LB.ASSIGN.TO.RULE",
                        description=f"Assigning {len(members)} VM(s) to load balancer rule {rule.id}",
                        resource_type="LoadBalancer", resource_id=rule.id)


@command("removeFromLoadBalancerRule", "Removes a virtual machine or a list of virtual machines from a load "
         "balancer rule.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the load balancer rule"),
    Param("virtualmachineids", "list", length=8192, description="the list of IDs of the virtual machines that are "
          "being removed from the load balancer rule (i.e. virtualMachineIds=1,2,3)"),
    Param("vmidipmap", "map", description="VM ID and IP map, vmidipmap[0].vmid=1 vmidipmap[0].vmip=10.1.1.75"),
])
def remove_from_load_balancer_rule(ctx: CallContext, args: Args) -> Result:
    rule, _lb_row = _lb(ctx, args)
    rows: list[LoadBalancerVmMap] = []
    for vm_id in _vm_ids(ctx, args):
        member = ctx.db.scalar(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id == rule.id,
                                                               LoadBalancerVmMap.vm_id == vm_id))
        if member is None or member.revoke:
            raise errors.param_error(f"Invalid virtualmachineids: VM {vm_id[:64]} is not assigned to load balancer "
                                     f"rule {rule.id}")
        rows.append(member)
    for member in rows:
        member.revoke = True
    ctx.db.flush()
    return queue_change(ctx, rule.network_id, RR.Change(lb=True), event="LB.REMOVE.FROM.RULE",
                        description=f"Removing {len(rows)} VM(s) from load balancer rule {rule.id}",
                        resource_type="LoadBalancer", resource_id=rule.id)


@command("listLoadBalancerRuleInstances", "List all virtual machine instances that are assigned to a load "
         "balancer rule.", admin=False, params=[
    Param("id", "uuid", required=True, description="the ID of the load balancer rule"),
    Param("applied", "boolean", description="true if listing all virtual machines currently applied to the load "
          "balancer rule; default is true"),
    Param("lbvmips", "boolean", description="true if load balancer rule VM IP information to be included; default "
          "is false"),
])
def list_load_balancer_rule_instances(ctx: CallContext, args: Args) -> Result:
    rule = owned_rule(ctx, args, RR.LOAD_BALANCING)
    applied = args.bool("applied", True)
    members = list(ctx.db.scalars(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id == rule.id,
                                                                  LoadBalancerVmMap.revoke.is_(False))
                                  .order_by(LoadBalancerVmMap.id)))
    if not applied:
        return ListResult("loadbalancerruleinstance", [], 0)
    views = vm_views(ctx.db, [m.vm_id for m in members])
    if args.bool("lbvmips"):
        ips = {m.vm_id: m.vm_ip for m in members}
        out = [{"loadbalancerruleinstance": v, "lbvmipaddresses": [ips.get(v["id"])]} for v in views]
        return ListResult("lbrulevmidip", out, len(out))
    return ListResult("loadbalancerruleinstance", views, len(views))


@command("updateLoadBalancerRule", "Updates load balancer", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the load balancer rule to update"),
    Param("name", description="the name of the load balancer rule"),
    Param("description", length=4096, description="the description of the load balancer rule"),
    Param("algorithm", description="load balancer algorithm (source, roundrobin, leastconn)"),
    Param("protocol", description="The protocol for the LB"),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the rule to the end user"),
    Param("customid", description="an optional field, in case you want to set a custom id to the resource."),
], response=LB_FIELDS)
def update_load_balancer_rule(ctx: CallContext, args: Args) -> Result:
    rule, lb = _lb(ctx, args)
    if args.has("customid"):
        raise errors.param_error("Invalid customid: custom ids are not supported")
    name = args.opt_str("name")
    if name is not None:
        if not name.strip():
            raise errors.param_error("Invalid name: it is empty")
        lb.name = name.strip()[:255]
    description = args.opt_str("description")
    if description is not None:
        lb.description = description
    algorithm = args.opt_str("algorithm")
    if algorithm is not None:
        lb.algorithm = _algorithm(algorithm)
    protocol = args.opt_str("protocol")
    if protocol is not None:
        lb_protocol = RULES.protocol(protocol, _LB_PROTOCOLS)
        if ("udp" if lb_protocol == "udp" else "tcp") != rule.protocol:
            raise errors.param_error(f"Invalid protocol {protocol[:16]}: the rule is {rule.protocol}; create a new "
                                     "rule for another transport")
        lb.lb_protocol = lb_protocol if lb_protocol != rule.protocol else None
    display = args.opt_bool("fordisplay")
    if display is not None:
        rule.display = display
    ctx.db.flush()
    return queue_change(ctx, rule.network_id, RR.Change(lb=True), event="LB.UPDATE",
                        description=f"Updating load balancer rule {rule.id}", resource_type="LoadBalancer",
                        resource_id=rule.id, result_kind="loadbalancer")


@command("deleteLoadBalancerRule", "Deletes a load balancer rule.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the load balancer rule"),
])
def delete_load_balancer_rule(ctx: CallContext, args: Args) -> Result:
    rule, _lb_row = _lb(ctx, args)
    ids = RULES.revoke(ctx.db, rule)
    ctx.db.flush()
    return queue_change(ctx, rule.network_id, RR.Change(rule_ids=[i for i in ids if i != rule.id], lb=True),
                        event="LB.DELETE", description=f"Deleting load balancer rule {rule.id}",
                        resource_type="LoadBalancer", resource_id=rule.id)
