"""Network offerings and guest networks (CloudStack's ``networkoffering`` and ``network`` objects)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline, submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import (
    Account,
    Domain,
    Network,
    NetworkOffering,
    PhysicalNetwork,
    ServiceOffering,
    Zone,
)
from hvcloud.server.orchestration import domain_scope
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.networks import networks, offerings
from hvcloud.server.orchestration.networks.physical import state_name
from hvcloud.server.views.networks import NETWORK_VIEW_LOADS, network_offering_view, network_view
from hvcloud.server.views.tags import tag_map

command = REGISTRY.command

OFFERING_FIELDS = ("id", "name", "displaytext", "traffictype", "isdefault", "specifyvlan", "conservemode",
                   "specifyipranges", "availability", "state", "guestiptype", "service", "forvpc")
NETWORK_FIELDS = ("id", "name", "displaytext", "broadcastdomaintype", "traffictype", "gateway", "netmask", "cidr",
                  "zoneid", "networkofferingid", "state", "type", "acltype", "service", "networkdomain", "tags")
MAX_MAP_ENTRIES = 64


def _bool_filter(args: Args, name: str, column: Any) -> ColumnElement[bool] | None:
    value = args.opt_bool(name)
    if value is None:
        return None
    return column.is_(value)  # type: ignore[no-any-return]


def _services_filter(args: Args) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    for raw in args.list("supportedservices"):
        service = offerings.canonical(raw, offerings.SERVICES, "supportedservices")
        out.append(NetworkOffering.services_json.like(f'%"{service}":%'))
    return out


# ---------------------------------------------------------------------------- network offerings


def live_offering(ctx: CallContext, args: Args, name: str) -> NetworkOffering:
    offering = ctx.require(args, NetworkOffering, name)
    if offering.removed is not None or offering.is_system:
        raise errors.entity_not_found(name, offering.id)
    return offering


@command("listNetworkOfferings", "Lists all available network offerings.", admin=False, params=[
    Param("id", "uuid", description="list network offerings by ID"),
    Param("name", description="list network offerings by name"),
    Param("displaytext", description="list network offerings by display text"),
    Param("traffictype", description="list by traffic type"),
    Param("isdefault", "boolean", description="true if need to list only default network offerings"),
    Param("specifyvlan", "boolean", description="the tags for the network offering."),
    Param("availability", description="the availability of network offering. Default value is required"),
    Param("zoneid", "uuid", description="list network offerings available for network creation in specific zone"),
    Param("state", description="list network offerings by state"),
    Param("networkid", "uuid", description="the ID of the network: offerings it can be updated to"),
    Param("guestiptype", description="list network offerings by guest type: shared, isolated or l2"),
    Param("supportedservices", "list", description="list network offerings supporting certain services"),
    Param("sourcenatsupported", "boolean", description="true if need to list only netwok offerings where source NAT "
          "is supported"),
    Param("specifyipranges", "boolean", description="true if need to list only network offerings which support "
          "specifying ip ranges"),
    Param("forvpc", "boolean", description="the network offering can be used only for network creation inside the "
          "VPC"),
    Param("istagged", "boolean", description="true if need to list only networks which support specifying ip ranges"),
    Param("tags", description="list network offerings by tags"),
], response=OFFERING_FIELDS)
def list_network_offerings(ctx: CallContext, args: Args) -> Result:
    stmt = select(NetworkOffering).where(NetworkOffering.removed.is_(None), NetworkOffering.is_system.is_(False))
    if not ctx.is_admin:
        stmt = stmt.where(NetworkOffering.state == "Enabled")
    for param, column in (("id", NetworkOffering.id), ("name", NetworkOffering.name),
                          ("displaytext", NetworkOffering.display_text), ("tags", NetworkOffering.tags)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    for param, choices in (("traffictype", ("Guest", "Public", "Management", "Storage")),
                           ("availability", offerings.AVAILABILITIES), ("state", ("Enabled", "Disabled")),
                           ("guestiptype", offerings.GUEST_TYPES)):
        value = args.opt_str(param)
        if value is not None:
            column = {"traffictype": NetworkOffering.traffic_type, "availability": NetworkOffering.availability,
                      "state": NetworkOffering.state, "guestiptype": NetworkOffering.guest_ip_type}[param]
            stmt = stmt.where(column == offerings.canonical(value, choices, param))
    for param, flag in (("isdefault", NetworkOffering.is_default), ("specifyvlan", NetworkOffering.specify_vlan),
                        ("specifyipranges", NetworkOffering.specify_ip_ranges)):
        cond = _bool_filter(args, param, flag)
        if cond is not None:
            stmt = stmt.where(cond)
    istagged = args.opt_bool("istagged")
    if istagged is not None:
        stmt = stmt.where(NetworkOffering.tags.is_not(None) if istagged else NetworkOffering.tags.is_(None))
    sourcenat = args.opt_bool("sourcenatsupported")
    if sourcenat is not None:
        like = NetworkOffering.services_json.like('%"SourceNat":%')
        stmt = stmt.where(like if sourcenat else ~like)
    for cond in _services_filter(args):
        stmt = stmt.where(cond)
    if args.has("zoneid"):
        ctx.require(args, Zone, "zoneid")
    if args.bool("forvpc"):
        stmt = stmt.where(false())
    if args.has("networkid"):
        network = _visible_network(ctx, args, "networkid")
        current = network.offering
        stmt = stmt.where(NetworkOffering.guest_ip_type == current.guest_ip_type,
                          NetworkOffering.specify_vlan.is_(current.specify_vlan),
                          NetworkOffering.specify_ip_ranges.is_(current.specify_ip_ranges))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(or_(NetworkOffering.name.ilike(pattern, escape="\\"),
                              NetworkOffering.display_text.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(NetworkOffering.created, NetworkOffering.name), args)
    return ListResult("networkoffering", [network_offering_view(o) for o in rows], count)


def _provider_map(args: Args) -> dict[str, list[str]]:
    entries = args.map("serviceproviderlist")
    if len(entries) > MAX_MAP_ENTRIES:
        raise errors.param_error("Invalid serviceproviderlist: too many entries")
    out: dict[str, list[str]] = {}
    for index in sorted(entries):
        entry = entries[index]
        service, provider = entry.get("service"), entry.get("provider")
        if not service or not provider:
            raise errors.param_error(f"Invalid serviceproviderlist[{index}]: give service and provider")
        out.setdefault(service, []).append(provider)
    return out


def _capability_map(args: Args) -> dict[str, dict[str, str]]:
    entries = args.map("servicecapabilitylist")
    if len(entries) > MAX_MAP_ENTRIES:
        raise errors.param_error("Invalid servicecapabilitylist: too many entries")
    out: dict[str, dict[str, str]] = {}
    for index in sorted(entries):
        entry = entries[index]
        service, cap, value = entry.get("service"), entry.get("capabilitytype"), entry.get("capabilityvalue")
        if not service or not cap or value is None:
            raise errors.param_error(f"Invalid servicecapabilitylist[{index}]: give service, capabilitytype and "
                                     "capabilityvalue")
        name = offerings.canonical(service, offerings.SERVICES, "servicecapabilitylist")
        out.setdefault(name, {})[cap[:64]] = value[:255]
    return out


@command("createNetworkOffering", "Creates a network offering.", params=[
    Param("name", required=True, description="the name of the network offering"),
    Param("displaytext", description="the display text of the network offering, defaults to the value of 'name'."),
    Param("guestiptype", required=True, description="guest type of the network offering: Shared, Isolated or L2"),
    Param("traffictype", required=True, description="the traffic type for the network offering. Supported type in "
          "current release is GUEST only"),
    Param("supportedservices", "list", length=1024, description="services supported by the network offering"),
    Param("serviceproviderlist", "map", description="provider to service mapping"),
    Param("servicecapabilitylist", "map", description="desired service capabilities as part of network offering"),
    Param("specifyvlan", "boolean", description="true if network offering supports vlans"),
    Param("specifyipranges", "boolean", description="true if network offering supports specifying ip ranges"),
    Param("availability", description="the availability of network offering: Required or Optional"),
    Param("conservemode", "boolean", description="true if the network offering is IP conserve mode enabled"),
    Param("egressdefaultpolicy", "boolean", description="true if guest network default egress policy is allow"),
    Param("tags", description="the tags for the network offering."),
    Param("networkrate", "integer", description="data transfer rate in megabits per second allowed"),
    Param("ispersistent", "boolean", description="true if network offering supports persistent networks"),
    Param("forvpc", "boolean", description="true if network offering is meant to be used for VPC"),
    Param("serviceofferingid", "uuid", description="the service offering ID used by virtual router provider"),
    Param("enable", "boolean", description="set to true if the offering is to be enabled during creation"),
    Param("keepaliveenabled", "boolean", description="if true keepalive will be turned on in the loadbalancer"),
    Param("maxconnections", "integer", description="maximum number of concurrent connections supported"),
], response=OFFERING_FIELDS)
def create_network_offering(ctx: CallContext, args: Args) -> Result:
    traffic = args.str("traffictype")
    if traffic.strip().lower() != "guest":
        raise errors.param_error(f"Invalid traffictype {traffic[:16]}: only Guest is supported")
    if args.bool("forvpc"):
        raise errors.param_error("Invalid forvpc: VPC network offerings are not supported")
    if args.has("serviceofferingid"):
        so = ctx.require(args, ServiceOffering, "serviceofferingid")
        if so.removed is not None:
            raise errors.entity_not_found("serviceofferingid", so.id)
    guest_type = offerings.canonical(args.str("guestiptype"), offerings.GUEST_TYPES, "guestiptype")
    services = offerings.build_services(args.list("supportedservices"), _provider_map(args))
    spec = offerings.OfferingSpec(
        name=args.str("name"), display_text=args.opt_str("displaytext") or args.str("name"),
        guest_ip_type=guest_type, services=services, capabilities=_capability_map(args),
        specify_vlan=args.bool("specifyvlan"), specify_ip_ranges=args.bool("specifyipranges"),
        availability=offerings.canonical(args.opt_str("availability") or "Optional", offerings.AVAILABILITIES,
                                         "availability"),
        conserve_mode=args.bool("conservemode", True), egress_default_policy=args.bool("egressdefaultpolicy"),
        network_rate=args.opt_int("networkrate"), tags=args.opt_str("tags"), is_persistent=args.bool("ispersistent"),
        enabled=args.bool("enable"))
    offering = offerings.create_offering(ctx.db, ctx.user, spec)
    return ObjectResult("networkoffering", network_offering_view(offering))


@command("updateNetworkOffering", "Updates a network offering.", params=[
    Param("id", "uuid", required=True, description="the id of the network offering"),
    Param("name", description="the name of the network offering"),
    Param("displaytext", description="the display text of the network offering"),
    Param("availability", description="the availability of network offering: Required or Optional"),
    Param("sortkey", "integer", description="sort key of the network offering, integer"),
    Param("state", description="update state for the network offering: Enabled or Disabled"),
    Param("maxconnections", "integer", description="maximum number of concurrent connections supported"),
    Param("tags", description="the tags for the network offering."),
], response=OFFERING_FIELDS)
def update_network_offering(ctx: CallContext, args: Args) -> Result:
    offering = live_offering(ctx, args, "id")
    state, availability = args.opt_str("state"), args.opt_str("availability")
    edit = offerings.OfferingEdit(
        name=args.opt_str("name") or None, display_text=args.opt_str("displaytext") or None,
        state=state_name(state) if state else None,
        availability=offerings.canonical(availability, offerings.AVAILABILITIES, "availability")
        if availability else None,
        sort_key=args.opt_int("sortkey"), tags=args.opt_str("tags"), max_connections=args.opt_int("maxconnections"))
    offerings.update_offering(ctx.db, ctx.user, offering, edit)
    return ObjectResult("networkoffering", network_offering_view(offering))


@command("deleteNetworkOffering", "Deletes a network offering.", params=[
    Param("id", "uuid", required=True, description="the ID of the network offering")])
def delete_network_offering(ctx: CallContext, args: Args) -> Result:
    offering = live_offering(ctx, args, "id")
    offerings.delete_offering(ctx.db, ctx.user, offering)
    return SuccessResult()


# ---------------------------------------------------------------------------- networks


def _domain_chain(ctx: CallContext, domain_id: str) -> list[str]:
    """``domain_id`` and its ancestors (a shared network with subdomain access reaches down)."""
    chain: list[str] = []
    current: str | None = domain_id
    while current is not None and current not in chain and len(chain) < 64:
        chain.append(current)
        row = ctx.db.get(Domain, current)
        current = row.parent_id if row is not None else None
    return chain


def _user_scope(ctx: CallContext) -> ColumnElement[bool]:
    """What a plain user sees: its account's networks and the domain-wide networks of its domain (or of
    an ancestor domain that gives its subdomains access)."""
    chain = _domain_chain(ctx, ctx.account.domain_id)
    return or_(and_(Network.acl_type == "Account", Network.account_id == ctx.account.id),
               and_(Network.acl_type == "Domain", Network.domain_id == ctx.account.domain_id),
               and_(Network.acl_type == "Domain", Network.subdomain_access.is_(True), Network.domain_id.in_(chain)))


def _can_see(ctx: CallContext, network: Network) -> bool:
    if ctx.is_admin:
        return True
    if network.acl_type == "Account":
        return ctx.may_act_for(network.account_id)
    if network.domain_id == ctx.account.domain_id or ctx.manages_domain_id(network.domain_id):
        return True
    return bool(network.subdomain_access) and network.domain_id in _domain_chain(ctx, ctx.account.domain_id)


def _visible_network(ctx: CallContext, args: Args, name: str) -> Network:
    network = ctx.require(args, Network, name)
    if network.removed is not None or not _can_see(ctx, network):
        raise errors.entity_not_found(name, network.id)
    return network


def _owned_network(ctx: CallContext, args: Args, name: str = "id") -> Network:
    """A network the caller may change: its own account's, or any for an admin (a domain admin: those
    of its subtree)."""
    network = _visible_network(ctx, args, name)
    if not (ctx.manages_domain_id(network.domain_id) if network.acl_type != "Account"
            else ctx.may_act_for(network.account_id)):
        raise errors.permission_denied(f"Account {ctx.account.name} does not have permission to operate on network "
                                       f"{network.name}")
    return network


def _owner(ctx: CallContext, args: Args) -> Account:
    """Whose network: ``account`` + ``domainid`` for an admin, else the caller's account."""
    if args.has("projectid"):
        return ctx.project_owner(args.str("projectid"))
    name, domain = args.opt_str("account"), ctx.optional_domain(args)
    if name is None:
        return ctx.account
    if domain is None:
        raise errors.param_error("Invalid domainid: give domainid with account")
    account = ctx.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.name == name,
                                                  Account.removed.is_(None)))
    if account is None:
        raise errors.param_error(f"Invalid account {name[:64]}: no such account in domain {domain.id}")
    if not ctx.may_act_for(account.id):
        raise errors.permission_denied(f"Account {ctx.account.name} cannot act for account {account.name}")
    return account


@command("createNetwork", "Creates a network", admin=False, params=[
    Param("name", required=True, description="the name of the network"),
    Param("displaytext", description="the display text of the network"),
    Param("networkofferingid", "uuid", required=True, description="the network offering ID"),
    Param("zoneid", "uuid", required=True, description="the zone ID for the network"),
    Param("physicalnetworkid", "uuid", description="the physical network ID the network belongs to"),
    Param("gateway", description="the gateway of the network"),
    Param("netmask", description="the netmask of the network"),
    Param("startip", description="the beginning IP address in the network IP range"),
    Param("endip", description="the ending IP address in the network IP range"),
    Param("vlan", description="the ID or VID of the network (admin, offerings with specifyvlan)"),
    Param("networkdomain", description="network domain"),
    Param("acltype", description="Access control type; supported values are account and domain"),
    Param("account", description="account that will own the network (with domainid)"),
    Param("domainid", "uuid", description="domain ID of the account owning a network"),
    Param("projectid", "uuid", description="an optional project for the network"),
    Param("subdomainaccess", "boolean", description="Defines whether to allow subdomains to use networks dedicated "
          "to their parent domain(s)"),
    Param("displaynetwork", "boolean", description="an optional field, whether to the display the network to the "
          "end user or not."),
    Param("vpcid", "uuid", description="the VPC network belongs to"),
], response=NETWORK_FIELDS)
def create_network(ctx: CallContext, args: Args) -> Result:
    if args.has("vpcid"):
        raise errors.param_error("Invalid vpcid: VPCs are not supported")
    offering = live_offering(ctx, args, "networkofferingid")
    zone = ctx.require(args, Zone, "zoneid")
    owner = _owner(ctx, args)
    domain = ctx.optional_domain(args)
    display = args.opt_bool("displaynetwork")
    if display is not None and not ctx.is_admin:
        raise errors.param_error("Invalid displaynetwork: only an admin sets it")
    name = args.str("name")
    req = networks.NetworkRequest(
        name=name, display_text=args.opt_str("displaytext") or name, offering=offering, zone=zone, owner=owner,
        caller_is_admin=ctx.is_admin,
        domain_id=domain.id if (domain is not None and not args.has("account")) else owner.domain_id,
        acl_type=args.opt_str("acltype"), gateway=args.opt_str("gateway"), netmask=args.opt_str("netmask"),
        start_ip=args.opt_str("startip"), end_ip=args.opt_str("endip"), vlan=args.opt_str("vlan"),
        network_domain=args.opt_str("networkdomain"),
        physical_network=ctx.optional(args, PhysicalNetwork, "physicalnetworkid"),
        subdomain_access=args.opt_bool("subdomainaccess"), display_network=True if display is None else display)
    if domain is not None and domain.id != ctx.account.domain_id and not ctx.manages_domain_id(domain.id):
        raise errors.permission_denied(f"Account {ctx.account.name} cannot create networks in domain {domain.name}")
    network = networks.create_network(ctx.db, ctx.user, req)
    return ObjectResult("network", network_view(network))


def _owner_scope(ctx: CallContext, args: Args, stmt: Select[Network]) -> Select[Network]:
    """listNetworks' visibility without ``projectid``: a user's own and its domains' shared networks;
    ``account``/``domainid``/``isrecursive``/``listall`` for admins (domain admins in their subtree)."""
    account_name = args.opt_str("account")
    domain = ctx.optional_domain(args)
    if ctx.is_domain_admin:
        stmt = stmt.where(or_(_user_scope(ctx), Network.domain_id.in_(
            domain_scope.subtree_domain_ids(ctx.account.domain)) if args.bool("listall") or domain is not None
            else false()))
        if domain is not None and not ctx.manages_domain_id(domain.id) \
                and domain.id not in _domain_chain(ctx, ctx.account.domain_id):
            raise errors.permission_denied(f"Account {ctx.account.name} cannot list networks of domain {domain.name}")
    elif not ctx.is_admin:
        stmt = stmt.where(_user_scope(ctx))
        if domain is not None and domain.id not in _domain_chain(ctx, ctx.account.domain_id):
            raise errors.permission_denied(f"Account {ctx.account.name} cannot list networks of domain {domain.name}")
    if account_name is not None:
        owner = _owner(ctx, args)
        stmt = stmt.where(Network.account_id == owner.id, Network.acl_type == "Account")
    elif domain is not None:
        if args.bool("isrecursive"):
            sub = select(Domain.id).where(or_(Domain.id == domain.id, Domain.path.like(f"{domain.path}/%")))
            stmt = stmt.where(Network.domain_id.in_(sub))
        else:
            stmt = stmt.where(Network.domain_id == domain.id)
    elif ctx.is_admin and not args.bool("listall"):
        stmt = stmt.where(or_(Network.acl_type == "Domain", Network.account_id == ctx.account.id))
    return stmt


@command("listNetworks", "Lists all available networks.", admin=False, listall=True, params=[
    Param("id", "uuid", description="list networks by ID"),
    Param("ids", "list", length=4096, description="the IDs of the networks"),
    Param("name", description="list networks by name"),
    Param("zoneid", "uuid", description="the zone ID of the network"),
    Param("type", description="the type of the network. Supported values are: isolated, l2, shared and all"),
    Param("traffictype", description="type of the traffic"),
    Param("issystem", "boolean", description="true if network is system, false otherwise"),
    Param("acltype", description="list networks by ACL (access control list) type: account or domain"),
    Param("account", description="list resources by account (with domainid)"),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: the domain's subdomains too"),
    Param("projectid", "uuid", description="list objects by project"),
    Param("physicalnetworkid", "uuid", description="list networks by physical network id"),
    Param("canusefordeploy", "boolean", description="list networks available for VM deployment"),
    Param("restartrequired", "boolean", description="list networks by restartRequired"),
    Param("specifyipranges", "boolean", description="true if need to list only networks which support specifying "
          "ip ranges"),
    Param("supportedservices", "list", description="list networks supporting certain services"),
    Param("networkofferingid", "uuid", description="list networks by network offering ID"),
    Param("forvpc", "boolean", description="the network belongs to VPC"),
    Param("vpcid", "uuid", description="List networks by VPC"),
    Param("displaynetwork", "boolean", description="list resources by display flag"),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
], response=NETWORK_FIELDS)
def list_networks(ctx: CallContext, args: Args) -> Result:
    stmt = select(Network).join(NetworkOffering, NetworkOffering.id == Network.network_offering_id).where(
        Network.removed.is_(None))
    empty = args.bool("issystem") or args.bool("forvpc") or args.has("vpcid") \
        or args.opt_bool("canusefordeploy") is False
    if empty:
        stmt = stmt.where(false())
    if args.has("projectid"):
        stmt = stmt.where(ctx.project_scope(Network.account_id, args), Network.acl_type == "Account")
    else:
        stmt = _owner_scope(ctx, args, stmt)
    for param, column in (("id", Network.id), ("name", Network.name), ("zoneid", Network.zone_id),
                          ("physicalnetworkid", Network.physical_network_id),
                          ("networkofferingid", Network.network_offering_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    ids = args.list("ids")
    if ids:
        if len(ids) > 500:
            raise errors.param_error("Invalid ids: at most 500 ids")
        stmt = stmt.where(Network.id.in_([i.lower() for i in ids]))
    kind = args.opt_str("type")
    if kind is not None and kind.strip().lower() != "all":
        stmt = stmt.where(Network.guest_type == offerings.canonical(kind, offerings.GUEST_TYPES, "type"))
    traffic = args.opt_str("traffictype")
    if traffic is not None:
        stmt = stmt.where(Network.traffic_type == offerings.canonical(
            traffic, ("Guest", "Public", "Management", "Storage", "Control"), "traffictype"))
    acl = args.opt_str("acltype")
    if acl is not None:
        stmt = stmt.where(Network.acl_type == offerings.canonical(acl, networks.ACL_TYPES, "acltype"))
    for param, flag in (("restartrequired", Network.restart_required), ("displaynetwork", Network.display_network),
                        ("specifyipranges", NetworkOffering.specify_ip_ranges)):
        cond = _bool_filter(args, param, flag)
        if cond is not None:
            stmt = stmt.where(cond)
    if not ctx.is_admin:
        stmt = stmt.where(Network.display_network.is_(True))
    for cond in (*_services_filter(args), *tag_conditions(args, T.NETWORK, Network.id)):
        stmt = stmt.where(cond)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(or_(Network.name.ilike(pattern, escape="\\"),
                              Network.display_text.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(Network.created, Network.id).options(*NETWORK_VIEW_LOADS), args)
    tags = tag_map(ctx.db, T.NETWORK, [n.id for n in rows])
    return ListResult("network", [network_view(n, tags.get(n.id, [])) for n in rows], count)


@command("updateNetwork", "Updates a network", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the network"),
    Param("name", description="the new name for the network"),
    Param("displaytext", description="the new display text for the network"),
    Param("networkdomain", description="network domain"),
    Param("networkofferingid", "uuid", description="network offering ID"),
    Param("guestvmcidr", description="CIDR for guest VMs, CloudStack allocates IPs to guest VMs only from this CIDR"),
    Param("displaynetwork", "boolean", description="an optional field, whether to the display the network to the "
          "end user or not."),
    Param("changecidr", "boolean", description="Force update even if CIDR type is different"),
    Param("forced", "boolean", description="Setting this to true will cause a forced network update"),
], response=NETWORK_FIELDS)
def update_network(ctx: CallContext, args: Args) -> Result:
    network = _owned_network(ctx, args)
    if args.has("guestvmcidr"):
        raise errors.param_error("Invalid guestvmcidr: changing the guest VM CIDR of a network is not supported yet")
    display = args.opt_bool("displaynetwork")
    if display is not None and not ctx.is_admin:
        raise errors.param_error("Invalid displaynetwork: only an admin sets it")
    new_offering = live_offering(ctx, args, "networkofferingid") if args.has("networkofferingid") else None
    edit = networks.NetworkEdit(name=args.opt_str("name") or None, display_text=args.opt_str("displaytext") or None,
                                network_domain=args.opt_str("networkdomain"), display_network=display,
                                offering=new_offering)
    networks.update_network(ctx.db, ctx.user, network, edit)
    ctx.db.refresh(network)
    return run_inline(ctx, ObjectResult("network", network_view(network)), instance_type="Network",
                      instance_id=network.id)


@command("deleteNetwork", "Deletes a network", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the network"),
    Param("forced", "boolean", description="Force delete a network (admin only)"),
])
def delete_network(ctx: CallContext, args: Args) -> Result:
    network = _owned_network(ctx, args)
    if args.bool("forced") and not ctx.is_admin:
        raise errors.param_error("Invalid forced: only an admin forces a network's deletion")
    networks.check_deletable(ctx.db, network)
    ctx.event("NETWORK.DELETE", f"Deleting network {network.name}", resource_type="Network",
              resource_id=network.id)
    return submit_job(ctx, networks.JOB_DELETE, {"network_id": network.id}, instance_type="Network",
                      instance_id=network.id)
