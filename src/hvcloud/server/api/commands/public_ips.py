"""Public addresses: ``associateIpAddress``, ``disassociateIpAddress``, ``listPublicIpAddresses``,
``enableStaticNat``, ``disableStaticNat`` and ``listIpForwardingRules``; and the helpers the rule
commands (``firewall``, ``load_balancers``) share: whose address or VM a caller may use, and the
job that applies a change to the network's router
(:mod:`hvcloud.server.orchestration.networks.rule_jobs`).

Users see and change their own addresses and rules, admins everyone's (a foreign id is 531).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import AsyncResult, ListResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import (
    FirewallRule,
    LoadBalancerVmMap,
    Network,
    Nic,
    UserIpAddress,
    VlanIpRange,
    VMInstance,
    Zone,
)
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import public_ips as IP
from hvcloud.server.orchestration.networks import router_rules as RR
from hvcloud.server.orchestration.networks import rule_jobs
from hvcloud.server.orchestration.networks import rules as RULES
from hvcloud.server.orchestration.networks import validation as V
from hvcloud.server.orchestration.vm import states as VS
from hvcloud.server.views.public_ips import ip_forwarding_view, ip_view
from hvcloud.server.views.tags import tag_map

command = REGISTRY.command

IP_FIELDS = ("id", "ipaddress", "allocated", "zoneid", "zonename", "issourcenat", "isstaticnat", "account",
             "domainid", "domain", "forvirtualnetwork", "vlanid", "vlanname", "virtualmachineid",
             "virtualmachinename", "virtualmachinedisplayname", "vmipaddress", "associatednetworkid",
             "associatednetworkname", "physicalnetworkid", "state", "issystem", "fordisplay", "tags")
IP_FORWARDING_FIELDS = ("id", "protocol", "startport", "endport", "ipaddressid", "ipaddress", "virtualmachineid",
                        "virtualmachinename", "virtualmachinedisplayname", "vmguestip", "state", "cidrlist")
#: VMs rules may point at
_RULE_VM_STATES = (VS.RUNNING, VS.STOPPED, VS.STARTING, VS.STOPPING, VS.MIGRATING)


# ---------------------------------------------------------------------------- shared helpers


def mine(ctx: CallContext, account_id: str, what: str, object_id: str) -> None:
    if not ctx.may_act_for(account_id):
        raise errors.permission_denied(f"Account {ctx.account.name} does not have permission to operate with "
                                       f"{what} {object_id}")


def owned_ip(ctx: CallContext, args: Args, name: str = "ipaddressid") -> UserIpAddress:
    """A live address the caller owns (or any, for an admin): 431 unknown, 531 foreign."""
    ip = ctx.require(args, UserIpAddress, name)
    if ip.removed is not None:
        raise errors.entity_not_found(name, ip.id)
    mine(ctx, ip.account_id, "ip address", ip.id)
    return ip


def owned_rule(ctx: CallContext, args: Args, purpose: str, traffic: str = RR.INGRESS,
               name: str = "id") -> FirewallRule:
    rule = ctx.require(args, FirewallRule, name)
    if rule.purpose != purpose or rule.traffic_type != traffic:
        raise errors.entity_not_found(name, rule.id)
    mine(ctx, rule.account_id, "rule", rule.id)
    return rule


def network_of(ctx: CallContext, network_id: str | None, name: str) -> Network:
    network = ctx.db.get(Network, network_id) if network_id else None
    if network is None or network.removed is not None:
        raise errors.param_error(f"Invalid {name}: the ip address is not associated with a live network")
    return network


def rule_vm(ctx: CallContext, args: Args, network: Network, account_id: str, name: str = "virtualmachineid",
            guest_ip: str | None = None) -> tuple[VMInstance, str]:
    """A VM of ``account_id`` with a NIC on ``network``: the VM and that NIC's guest address (``guest_ip``,
    when given, must be it)."""
    vm = ctx.require(args, VMInstance, name)
    if vm.removed is not None or vm.state not in _RULE_VM_STATES:
        raise errors.param_error(f"Invalid {name} {vm.id}: the VM is {vm.state if vm.removed is None else 'gone'}")
    mine(ctx, vm.account_id, "VM", vm.id)
    if vm.account_id != account_id:
        raise errors.param_error(f"Invalid {name} {vm.id}: the VM and the ip address belong to different accounts")
    nic = ctx.db.scalar(select(Nic).where(Nic.vm_id == vm.id, Nic.network_id == network.id, Nic.removed.is_(None))
                        .order_by(Nic.device_id))
    if nic is None or not nic.ip4_address:
        raise errors.param_error(f"Invalid {name} {vm.id}: the VM has no NIC on network {network.name}, the network "
                                 "of the ip address")
    if guest_ip is not None and guest_ip.strip() != nic.ip4_address:
        raise errors.param_error(f"Invalid vmguestip {guest_ip[:64]}: it is not the address of VM {vm.name} on "
                                 f"network {network.name}")
    return vm, nic.ip4_address


def queue_change(ctx: CallContext, network_id: str, change: RR.Change, *, event: str, description: str,
                 resource_type: str, resource_id: str, result_kind: str | None = None, create: bool = False
                 ) -> AsyncResult:
    """Record the event and queue the job that sends ``change`` to the network's router (after every
    earlier job of the network)."""
    ctx.event(event, description, resource_type=resource_type, resource_id=resource_id)
    params: dict[str, Any] = {"network_id": network_id, **change.as_params()}
    if result_kind is not None:
        params.update(result_kind=result_kind, result_id=resource_id)
    return submit_job(ctx, rule_jobs.JOB_APPLY, params, instance_type=resource_type, instance_id=resource_id,
                      create=create, object_key=f"Network:{network_id}")


def check_firewall_service(network: Network, service: str, name: str) -> None:
    """The network's offering must give ``service`` (Firewall, PortForwarding, StaticNat, Lb)."""
    services = N.offering_services(network.offering.services_json if network.offering else None)
    if network.guest_type != N.ISOLATED or (services and service not in services):
        raise errors.param_error(f"Invalid {name}: network {network.name} does not support the {service} service")


# ---------------------------------------------------------------------------- addresses


def _account_network(ctx: CallContext, zone: Zone, owner_id: str) -> Network:
    found = list(ctx.db.scalars(select(Network).where(Network.zone_id == zone.id, Network.account_id == owner_id,
                                                      Network.guest_type == N.ISOLATED, Network.removed.is_(None))
                                .limit(2)))
    if not found:
        raise errors.param_error(f"Invalid zoneid {zone.id}: the account has no isolated network in the zone; give "
                                 "networkid")
    if len(found) > 1:
        raise errors.param_error("Invalid zoneid: the account has more than one isolated network in the zone; give "
                                 "networkid")
    return found[0]


@command("associateIpAddress", "Acquires and associates a public IP to an account.", admin=False, isasync=True,
         params=[
    Param("networkid", "uuid", description="The network this IP address should be associated to."),
    Param("zoneid", "uuid", description="the ID of the availability zone you want to acquire an public IP address "
          "from"),
    Param("ipaddress", description="IP Address to be associated"),
    Param("account", description="the account to associate with this IP address"),
    Param("domainid", "uuid", description="the ID of the domain to associate with this IP address"),
    Param("projectid", "uuid", description="Deploy VM for the project"),
    Param("vpcid", "uuid", description="the VPC you want the IP address to be associated with"),
    Param("isportable", "boolean", description="should be set to true if public IP is required to be transferable "
          "across zones, if not specified defaults to false"),
    Param("regionid", "integer", description="region ID from where portable IP is to be associated."),
    Param("fordisplay", "boolean", description="an optional field, whether to the display the IP to the end user"),
], response=IP_FIELDS)
def associate_ip(ctx: CallContext, args: Args) -> Result:
    for name in ("projectid", "vpcid"):
        if args.has(name):
            raise errors.param_error(f"Invalid {name}: {'projects' if name == 'projectid' else 'VPCs'} are not "
                                     "supported")
    if args.bool("isportable"):
        raise errors.param_error("Invalid isportable: portable IP addresses are not supported")
    owner = ctx.owner_for(args)
    if args.has("networkid"):
        network = ctx.require(args, Network, "networkid")
        if network.removed is not None:
            raise errors.entity_not_found("networkid", network.id)
        mine(ctx, network.account_id, "network", network.id)
        if args.has("zoneid") and args.str("zoneid") != network.zone_id:
            raise errors.param_error("Invalid zoneid: the network is in another zone")
        if not args.has("account"):
            owner = network.account
    elif args.has("zoneid"):
        network = _account_network(ctx, ctx.require(args, Zone, "zoneid"), owner.id)
    else:
        raise errors.param_error("Unable to execute API command associateipaddress due to missing parameter "
                                 "networkid or zoneid")
    if network.guest_type != N.ISOLATED or not N.needs_router(network):
        raise errors.param_error(f"Invalid networkid {network.id}: public addresses go to isolated networks with a "
                                 "virtual router only")
    if network.account_id != owner.id:
        raise errors.param_error(f"Invalid networkid {network.id}: the network belongs to another account")
    requested = args.opt_str("ipaddress")
    if requested is not None:
        requested = str(V.ipv4(requested, "ipaddress"))
    ip = IP.associate(ctx.db, ctx.state.config, zone_id=network.zone_id, account=owner, network=network,
                      requested=requested)
    ip.state = IP.ALLOCATING
    display = args.opt_bool("fordisplay")
    if display is not None:
        ip.display = display
    ctx.db.flush()
    return queue_change(ctx, network.id, RR.Change(ip_ids=[ip.id]), event="NET.IPASSIGN",
                        description=f"Associating ip address {ip.public_ip_address} with network {network.name}",
                        resource_type="IpAddress", resource_id=ip.id, result_kind="ipaddress", create=True)


@command("disassociateIpAddress", "Disassociates an IP address from the account.", admin=False, isasync=True,
         params=[
    Param("id", "uuid", description="the ID of the public IP address to disassociate"),
    Param("ipaddress", description="IP Address to be disassociated (instead of id)"),
])
def disassociate_ip(ctx: CallContext, args: Args) -> Result:
    if args.has("id"):
        ip = owned_ip(ctx, args, "id")
    elif args.has("ipaddress"):
        address = args.str("ipaddress").strip()
        found = ctx.db.scalar(select(UserIpAddress).where(UserIpAddress.public_ip_address == address,
                                                          UserIpAddress.removed.is_(None)))
        if found is None:
            raise errors.entity_not_found("ipaddress", address[:64])
        mine(ctx, found.account_id, "ip address", found.id)
        ip = found
    else:
        raise errors.param_error("Unable to execute API command disassociateipaddress due to missing parameter id")
    if ip.source_nat:
        raise errors.param_error(f"Invalid id {ip.id}: ip address {ip.public_ip_address} is used for source nat "
                                 "purposes and can not be disassociated")
    if ip.state == IP.RELEASING:
        raise errors.param_error(f"Invalid id {ip.id}: ip address {ip.public_ip_address} is being released already")
    change = RR.Change(ip_ids=[ip.id])
    for rule in ctx.db.scalars(select(FirewallRule).where(FirewallRule.ip_address_id == ip.id)):
        rule.state = RR.REVOKE
        if rule.purpose == RR.LOAD_BALANCING:
            change.lb = True
        else:
            change.rule_ids.append(rule.id)
    if change.lb:
        lb_ids = select(FirewallRule.id).where(FirewallRule.ip_address_id == ip.id,
                                               FirewallRule.purpose == RR.LOAD_BALANCING)
        for member in ctx.db.scalars(select(LoadBalancerVmMap).where(LoadBalancerVmMap.load_balancer_id.in_(lb_ids))):
            member.revoke = True
    if ip.one_to_one_nat:
        change.nat_disable[ip.id] = ip.vm_ip or ""
    ip.state = IP.RELEASING
    ctx.db.flush()
    return queue_change(ctx, ip.network_id or "", change, event="NET.IPRELEASE",
                        description=f"Disassociating ip address {ip.public_ip_address}", resource_type="IpAddress",
                        resource_id=ip.id)


def _bool_cond(args: Args, name: str, column: Any) -> ColumnElement[bool] | None:
    value = args.opt_bool(name)
    return None if value is None else column.is_(value)  # type: ignore[no-any-return]


@command("listPublicIpAddresses", "Lists all public IP addresses", admin=False, listall=True, params=[
    Param("id", "uuid", description="lists IP address by ID"),
    Param("ipaddress", description="lists the specified IP address"),
    Param("zoneid", "uuid", description="lists all public IP addresses by zone ID"),
    Param("associatednetworkid", "uuid", description="lists all public IP addresses associated to the network "
          "specified"),
    Param("issourcenat", "boolean", description="list only source NAT IP addresses"),
    Param("isstaticnat", "boolean", description="list only static NAT IP addresses"),
    Param("allocatedonly", "boolean", description="limits search results to allocated public IP addresses"),
    Param("forvirtualnetwork", "boolean", description="the virtual network for the IP address"),
    Param("forloadbalancing", "boolean", description="list only IPs used for load balancing"),
    Param("vlanid", "uuid", description="lists all public IP addresses by VLAN ID"),
    Param("physicalnetworkid", "uuid", description="lists all public IP addresses by physical network ID"),
    Param("networkid", "uuid", description="lists all public IP addresses by source network ID"),
    Param("state", description="lists all public IP addresses by state"),
    Param("account", description="list resources by account. Must be used with the domainId parameter."),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="defaults to false, but if true, lists all resources from the "
          "parent specified by the domainId till leaves."),
    Param("projectid", "uuid", description="list objects by project"),
    Param("vpcid", "uuid", description="List ips belonging to the VPC"),
    Param("issystem", "boolean", description="true if it is a system IP (used for system VMs)"),
    Param("fordisplay", "boolean", description="list resources by display flag"),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
], response=IP_FIELDS)
def list_public_ips(ctx: CallContext, args: Args) -> Result:
    stmt = select(UserIpAddress).where(UserIpAddress.removed.is_(None))
    owner = ctx.owner_and_domain_filter(UserIpAddress.account_id, UserIpAddress.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    if args.has("projectid") or args.has("vpcid") or args.opt_bool("forvirtualnetwork") is False \
            or args.bool("issystem") or args.has("networkid"):
        stmt = stmt.where(UserIpAddress.id.is_(None))  # none of those exist here
    stmt = stmt.where(*tag_conditions(args, T.PUBLIC_IP, UserIpAddress.id))
    for param, column in (("id", UserIpAddress.id), ("zoneid", UserIpAddress.zone_id),
                          ("associatednetworkid", UserIpAddress.network_id), ("vlanid", UserIpAddress.vlan_id),
                          ("physicalnetworkid", UserIpAddress.physical_network_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value.lower())
    address = args.opt_str("ipaddress")
    if address is not None:
        stmt = stmt.where(UserIpAddress.public_ip_address == address.strip())
    for param, flag in (("issourcenat", UserIpAddress.source_nat), ("isstaticnat", UserIpAddress.one_to_one_nat),
                        ("fordisplay", UserIpAddress.display)):
        cond = _bool_cond(args, param, flag)
        if cond is not None:
            stmt = stmt.where(cond)
    state = args.opt_str("state")
    wanted: str | None = None
    if state is not None:
        wanted = next((s for s in (IP.FREE, *IP.HELD_STATES) if s.lower() == state.strip().lower()), None)
        if wanted is None:
            raise errors.param_error(f"Invalid state {state[:32]}: valid values are Free, Allocating, Allocated, "
                                     "Releasing")
        stmt = stmt.where(UserIpAddress.state == wanted)
    lb = args.opt_bool("forloadbalancing")
    if lb is not None:
        with_lb = select(FirewallRule.ip_address_id).where(FirewallRule.purpose == RR.LOAD_BALANCING)
        stmt = stmt.where(UserIpAddress.id.in_(with_lb) if lb else UserIpAddress.id.not_in(with_lb))
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(UserIpAddress.public_ip_address.ilike(pattern, escape="\\"))
    stmt = stmt.order_by(UserIpAddress.allocated, UserIpAddress.public_ip_address)
    if not args.bool("allocatedonly", True) and _free_possible(args, wanted if state is not None else None):
        return _with_free(ctx, args, stmt)
    rows, count = ctx.page(stmt, args)
    tags = tag_map(ctx.db, T.PUBLIC_IP, [ip.id for ip in rows])
    return ListResult("publicipaddress", [ip_view(ctx.db, ip, tags.get(ip.id, [])) for ip in rows], count)


#: free addresses ``allocatedonly=false`` enumerates at most (a hostile /8 range costs no more)
MAX_FREE_LISTED = 65536


def _free_possible(args: Args, state: str | None) -> bool:
    """Whether free addresses can match the filters (they have no owner, network or NAT)."""
    if state not in (None, IP.FREE) or args.bool("issourcenat") or args.bool("isstaticnat") \
            or args.bool("forloadbalancing") or args.opt_bool("fordisplay") is False:
        return False
    return not any(args.has(p) for p in ("id", "associatednetworkid", "account", "domainid", "projectid", "vpcid",
                                         "networkid", "tags"))


def _with_free(ctx: CallContext, args: Args, stmt: Any) -> Result:
    """``allocatedonly=false``: the held addresses and the free ones of the zones' public ranges, by
    address; free ones have no row, so their ``id`` is derived from zone and address (and names
    nothing another command takes: ``associateIpAddress ipaddress=`` takes one)."""
    state = args.opt_str("state")
    held = [] if state is not None and state.strip().lower() == "free" else list(ctx.db.scalars(stmt))
    entries: list[tuple[int, dict[str, Any]]] = [(int(ipaddress.IPv4Address(ip.public_ip_address)),
                                                  ip_view(ctx.db, ip)) for ip in held]
    ranges = select(VlanIpRange).where(VlanIpRange.for_virtual_network.is_(True), VlanIpRange.network_id.is_(None),
                                       VlanIpRange.removed.is_(None))
    for param, column in (("zoneid", VlanIpRange.zone_id), ("vlanid", VlanIpRange.id),
                          ("physicalnetworkid", VlanIpRange.physical_network_id)):
        value = args.opt_str(param)
        if value is not None:
            ranges = ranges.where(column == value.lower())
    taken = set(ctx.db.scalars(select(UserIpAddress.ip_key).where(UserIpAddress.ip_key.is_not(None))))
    wanted, pattern = args.opt_str("ipaddress"), args.opt_str("keyword")
    zones = {z.id: z.name for z in ctx.db.scalars(select(Zone))}
    budget = MAX_FREE_LISTED
    for rng in ctx.db.scalars(ranges.order_by(VlanIpRange.created, VlanIpRange.id)):
        for address in IP.range_addresses(rng, budget):
            budget -= 1
            if IP.ip_key(rng.zone_id, address) in taken or (wanted is not None and address != wanted.strip()) \
                    or (pattern and pattern.lower() not in address):
                continue
            entries.append((int(ipaddress.IPv4Address(address)), {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"hvcloud:public-ip:{rng.zone_id}/{address}")),
                "ipaddress": address, "zoneid": rng.zone_id, "zonename": zones.get(rng.zone_id), "state": IP.FREE,
                "issourcenat": False, "isstaticnat": False, "issystem": False, "forvirtualnetwork": True,
                "vlanid": rng.id, "vlanname": rng.vlan_tag, "physicalnetworkid": rng.physical_network_id,
                "fordisplay": True, "isportable": False, "tags": []}))
        if budget <= 0:
            break
    entries.sort(key=lambda e: e[0])
    views = [v for _n, v in entries]
    return ListResult("publicipaddress", _page_of(ctx, args, views), len(views))


def _page_of(ctx: CallContext, args: Args, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``page``/``pagesize`` over a list, with :meth:`CallContext.page`'s rules."""
    page, pagesize = args.opt_int("page"), args.opt_int("pagesize")
    limit = ctx.state.config.max_page_size
    if pagesize == -1:
        if page is not None:
            raise errors.param_error("Can't specify page parameter when pagesize is -1 (Unlimited)")
        return items
    if pagesize is None and page is None:
        return items[:limit]
    if pagesize is None:
        raise errors.param_error('"pagesize" parameter is required when "page" is specified')
    if page is None:
        raise errors.param_error('"page" parameter is required when "pagesize" is specified')
    if pagesize > limit:
        raise errors.param_error(f"Page size can't exceed max allowed page size value: {limit}")
    if pagesize < 1 or page < 1:
        raise errors.param_error("page and pagesize must be positive")
    return items[(page - 1) * pagesize:page * pagesize]


# ---------------------------------------------------------------------------- static NAT


@command("enableStaticNat", "Enables static NAT for given IP address", admin=False, params=[
    Param("ipaddressid", "uuid", required=True, description="the public IP address ID for which static NAT "
          "feature is being enabled"),
    Param("virtualmachineid", "uuid", required=True, description="the ID of the virtual machine for enabling "
          "static NAT feature"),
    Param("networkid", "uuid", description="The network of the VM the static NAT will be enabled for."),
    Param("vmguestip", description="VM guest NIC secondary IP address for the port forwarding rule"),
])
def enable_static_nat(ctx: CallContext, args: Args) -> Result:
    ip = owned_ip(ctx, args)
    RULES.usable_address(ip, "static nat")
    network = network_of(ctx, ip.network_id, "ipaddressid")
    if args.has("networkid") and args.str("networkid").lower() != network.id:
        raise errors.param_error("Invalid networkid: it is not the network of the ip address")
    check_firewall_service(network, "StaticNat", "ipaddressid")
    if ip.source_nat:
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: can't enable static nat, ip address "
                                 f"{ip.public_ip_address} is a source nat ip address")
    vm, guest_ip = rule_vm(ctx, args, network, ip.account_id, guest_ip=args.opt_str("vmguestip"))
    if ip.one_to_one_nat:
        if ip.vm_id == vm.id:
            return SuccessResult()
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: static nat is already enabled for it, to VM "
                                 f"{ip.vm_id}")
    if RULES.has_rules(ctx.db, ip.id, (RR.PORT_FORWARDING, RR.LOAD_BALANCING)):
        raise errors.rule_conflict(f"Failed to enable static nat for the ip address id={ip.id} as it already has "
                                   "PortForwarding/LoadBalancing rules assigned (ipaddressid)")
    other = ctx.db.scalar(select(UserIpAddress.public_ip_address).where(
        UserIpAddress.vm_id == vm.id, UserIpAddress.one_to_one_nat.is_(True), UserIpAddress.removed.is_(None),
        UserIpAddress.network_id == network.id))
    if other is not None:
        raise errors.param_error(f"Invalid virtualmachineid {vm.id}: the VM already has static nat through {other}")
    ip.one_to_one_nat, ip.vm_id, ip.vm_ip = True, vm.id, guest_ip
    ctx.db.flush()
    queue_change(ctx, network.id, RR.Change(nat_enable=[ip.id]), event="STATICNAT.ENABLE",
                 description=f"Enabling static nat of {ip.public_ip_address} to VM {vm.name}",
                 resource_type="IpAddress", resource_id=ip.id)
    return SuccessResult()


@command("disableStaticNat", "Disables static rule for given IP address", admin=False, isasync=True, params=[
    Param("ipaddressid", "uuid", required=True, description="the public IP address ID for which static NAT "
          "feature is being disabled"),
])
def disable_static_nat(ctx: CallContext, args: Args) -> Result:
    ip = owned_ip(ctx, args)
    if not ip.one_to_one_nat:
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: the ip address is not associated with any VM through "
                                 "static nat")
    if ip.state == IP.RELEASING:
        raise errors.param_error(f"Invalid ipaddressid {ip.id}: the ip address is being released")
    return queue_change(ctx, ip.network_id or "", RR.Change(nat_disable={ip.id: ip.vm_ip or ""}),
                        event="STATICNAT.DISABLE", description=f"Disabling static nat of {ip.public_ip_address}",
                        resource_type="IpAddress", resource_id=ip.id)


@command("listIpForwardingRules", "List the IP forwarding rules", admin=False, listall=True, params=[
    Param("id", "uuid", description="Lists rule with the specified ID."),
    Param("ipaddressid", "uuid", description="list the rule belonging to this public IP address"),
    Param("virtualmachineid", "uuid", description="Lists all rules applied to the specified VM."),
    Param("account", description="list resources by account. Must be used with the domainId parameter."),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: the domain's sub-domains too"),
    Param("projectid", "uuid", description="list objects by project"),
], response=IP_FORWARDING_FIELDS)
def list_ip_forwarding_rules(ctx: CallContext, args: Args) -> Result:
    stmt = select(UserIpAddress).where(UserIpAddress.removed.is_(None), UserIpAddress.one_to_one_nat.is_(True))
    owner = ctx.owner_and_domain_filter(UserIpAddress.account_id, UserIpAddress.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    if args.has("projectid"):
        stmt = stmt.where(UserIpAddress.id.is_(None))
    for param, column in (("id", UserIpAddress.id), ("ipaddressid", UserIpAddress.id),
                          ("virtualmachineid", UserIpAddress.vm_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value.lower())
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(UserIpAddress.public_ip_address.ilike(pattern, escape="\\"),
                              UserIpAddress.vm_ip.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(UserIpAddress.allocated, UserIpAddress.public_ip_address), args)
    return ListResult("ipforwardingrule", [ip_forwarding_view(ctx.db, ip) for ip in rows], count)
