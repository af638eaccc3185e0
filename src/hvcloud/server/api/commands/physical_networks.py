"""A zone's network infrastructure: physical networks, traffic types, network service providers, the
VirtualRouter element and IP ranges (CloudStack's admin network API).

CloudStack runs the create/update/delete commands of physical networks, traffic types, providers
and elements as async jobs; their work here is a few rows, done in the request and recorded as a
finished job (``run_inline``), so the caller sees CloudStack's ``{jobid}`` answer.
"""

from __future__ import annotations

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import (
    Account,
    Network,
    NetworkServiceProvider,
    PhysicalNetwork,
    PhysicalNetworkTrafficType,
    Pod,
    VirtualRouterElement,
    VlanIpRange,
    Zone,
)
from hvcloud.server.orchestration.networks import physical, ranges
from hvcloud.server.orchestration.networks import validation as V
from hvcloud.server.views.networks import (
    element_view,
    physical_network_view,
    provider_view,
    traffic_type_view,
    vlan_range_view,
)

command = REGISTRY.command

PN_FIELDS = ("id", "name", "zoneid", "state", "isolationmethods", "vlan", "broadcastdomainrange", "networkspeed",
             "tags", "domainid")
TRAFFIC_FIELDS = ("id", "traffictype", "physicalnetworkid", "kvmnetworklabel", "hypervnetworklabel",
                  "xennetworklabel", "vmwarenetworklabel")
NSP_FIELDS = ("id", "name", "physicalnetworkid", "state", "servicelist", "canenableindividualservice")
ELEMENT_FIELDS = ("id", "nspid", "enabled")
VLAN_FIELDS = ("id", "forvirtualnetwork", "zoneid", "vlan", "gateway", "netmask", "startip", "endip", "networkid",
               "physicalnetworkid")
LABEL_PARAMS = [Param(p, length=255, description=f"The network name label of the physical device dedicated to this "
                      f"traffic ({p.removesuffix('networklabel').removesuffix('label')})")
                for p in physical.LABEL_PARAMS]


def live_pn(ctx: CallContext, args: Args, name: str) -> PhysicalNetwork:
    pn = ctx.require(args, PhysicalNetwork, name)
    if pn.removed is not None:
        raise errors.entity_not_found(name, pn.id)
    return pn


def _pn_result(ctx: CallContext, pn: PhysicalNetwork) -> Result:
    return run_inline(ctx, ObjectResult("physicalnetwork", physical_network_view(pn, ctx.db.get(Zone, pn.zone_id))),
                      instance_type="PhysicalNetwork", instance_id=pn.id, create=True)


def _tags(args: Args) -> str | None:
    tags = args.list("tags")
    if len(tags) > 1:
        raise errors.param_error("Invalid tags: only one tag can be given for a physical network")
    return tags[0] if tags else None


@command("createPhysicalNetwork", "Creates a physical network", isasync=True, params=[
    Param("zoneid", "uuid", required=True, description="the Zone ID for the physical network"),
    Param("name", required=True, description="the name of the physical network"),
    Param("isolationmethods", "list", description="the isolation method for the physical network: VLAN or VXLAN"),
    Param("vlan", length=1024, description="the VLAN/VNI range for the physical network, e.g. 100-199[,300-310]"),
    Param("broadcastdomainrange", description="the broadcast domain range: ZONE (Advanced zones) or POD"),
    Param("networkspeed", description="the speed for the physical network, e.g. 1G"),
    Param("tags", "list", description="tag for the physical network"),
    Param("domainid", "uuid", description="domain ID of the account owning a physical network"),
], response=PN_FIELDS)
def create_physical_network(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    methods = args.list("isolationmethods")
    if len(methods) > 1:
        raise errors.param_error("Invalid isolationmethods: only one isolation method can be given for a physical "
                                 "network at this time")
    method = V.isolation_method(methods[0]) if methods else "VLAN"
    vlan = args.opt_str("vlan")
    vnet_ranges = V.parse_vnet_ranges(vlan, method) if vlan else []
    bdr = (args.opt_str("broadcastdomainrange") or ("ZONE" if zone.network_type == "Advanced" else "POD")).upper()
    if bdr not in physical.BROADCAST_DOMAIN_RANGES:
        raise errors.param_error(f"Invalid broadcastdomainrange {bdr[:16]}: expected ZONE or POD")
    if zone.network_type == "Advanced" and bdr != "ZONE":
        raise errors.param_error("Invalid broadcastdomainrange: an Advanced zone supports ZONE only")
    domain = ctx.optional_domain(args)
    spec = physical.PhysicalNetworkSpec(name=args.str("name"), isolation_method=method, vnet_ranges=vnet_ranges,
                                        broadcast_domain_range=bdr, network_speed=args.opt_str("networkspeed"),
                                        tags=_tags(args), domain_id=domain.id if domain else None)
    pn = physical.create_physical_network(ctx.db, ctx.user, zone, spec)
    return _pn_result(ctx, pn)


@command("listPhysicalNetworks", "Lists physical networks", params=[
    Param("id", "uuid", description="list physical network by id"),
    Param("name", description="search by name"),
    Param("zoneid", "uuid", description="the Zone ID for the physical network"),
], response=PN_FIELDS)
def list_physical_networks(ctx: CallContext, args: Args) -> Result:
    stmt = select(PhysicalNetwork).where(PhysicalNetwork.removed.is_(None))
    for param, column in (("id", PhysicalNetwork.id), ("name", PhysicalNetwork.name),
                          ("zoneid", PhysicalNetwork.zone_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(PhysicalNetwork.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(PhysicalNetwork.created, PhysicalNetwork.id), args)
    zones = {z.id: z for z in ctx.db.scalars(select(Zone).where(Zone.id.in_({r.zone_id for r in rows})))}
    return ListResult("physicalnetwork", [physical_network_view(r, zones.get(r.zone_id)) for r in rows], count)


@command("updatePhysicalNetwork", "Updates a physical network", isasync=True, params=[
    Param("id", "uuid", required=True, description="physical network id"),
    Param("state", description="Enabled/Disabled"),
    Param("vlan", length=1024, description="the new VLAN/VNI range of the physical network (replaces the range)"),
    Param("removevlan", length=1024, description="the VLAN/VNI range to remove from the physical network"),
    Param("networkspeed", description="the speed for the physical network"),
    Param("tags", "list", description="tag for the physical network"),
], response=PN_FIELDS)
def update_physical_network(ctx: CallContext, args: Args) -> Result:
    pn = live_pn(ctx, args, "id")
    method = pn.isolation_methods
    new_ranges: list[tuple[int, int]] | None = None
    vlan, remove = args.opt_str("vlan"), args.opt_str("removevlan")
    if vlan is not None:
        new_ranges = V.parse_vnet_ranges(vlan, method) if vlan.strip() else []
    if remove is not None:
        base = new_ranges if new_ranges is not None else V.stored_ranges(pn.vnet_range)
        new_ranges = V.subtract_ranges(base, V.parse_vnet_ranges(remove, method, "removevlan"))
    state = args.opt_str("state")
    tags = (_tags(args) or "") if args.has("tags") else None  # "": tags cleared
    physical.update_physical_network(ctx.db, ctx.user, pn, state=physical.state_name(state) if state else None,
                                     vnet_ranges=new_ranges, network_speed=args.opt_str("networkspeed"), tags=tags)
    return _pn_result(ctx, pn)


@command("deletePhysicalNetwork", "Deletes a physical network", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the physical network")])
def delete_physical_network(ctx: CallContext, args: Args) -> Result:
    pn = live_pn(ctx, args, "id")
    physical.delete_physical_network(ctx.db, ctx.user, pn)
    return run_inline(ctx, SuccessResult(), instance_type="PhysicalNetwork", instance_id=pn.id)


# ---------------------------------------------------------------------------- traffic types


def _labels(args: Args) -> dict[str, str | None]:
    return {p: args.opt_str(p) for p in physical.LABEL_PARAMS if args.has(p)}


@command("addTrafficType", "Adds traffic type to a physical network", isasync=True, params=[
    Param("physicalnetworkid", "uuid", required=True, description="the Physical Network ID"),
    Param("traffictype", required=True, description="the trafficType to be added: Guest, Public, Management, Storage"),
    *LABEL_PARAMS,
    Param("vlan", description="The VLAN id to be used for Management traffic by VMware host"),
    Param("isolationmethod", description="Used if physical network has multiple isolation types"),
], response=TRAFFIC_FIELDS)
def add_traffic_type(ctx: CallContext, args: Args) -> Result:
    pn = live_pn(ctx, args, "physicalnetworkid")
    kind = physical.traffic_type_name(args.str("traffictype"))
    method = args.opt_str("isolationmethod")
    if method is not None and V.isolation_method(method, "isolationmethod") != pn.isolation_methods:
        raise errors.param_error(f"Invalid isolationmethod {method[:16]}: physical network {pn.name} isolates by "
                                 f"{pn.isolation_methods}")
    vlan = args.opt_str("vlan")
    if vlan is not None:
        vlan = V.parse_segment(vlan, "VLAN").uri.removeprefix("vlan://")
    row = physical.add_traffic_type(ctx.db, ctx.user, pn, kind, _labels(args), vlan)
    return run_inline(ctx, ObjectResult("traffictype", traffic_type_view(row, pn)), instance_type="TrafficType",
                      instance_id=row.id, create=True)


@command("listTrafficTypes", "Lists traffic types of a given physical network.", params=[
    Param("physicalnetworkid", "uuid", required=True, description="the Physical Network ID"),
], response=TRAFFIC_FIELDS)
def list_traffic_types(ctx: CallContext, args: Args) -> Result:
    pn = live_pn(ctx, args, "physicalnetworkid")
    stmt = select(PhysicalNetworkTrafficType).where(PhysicalNetworkTrafficType.physical_network_id == pn.id)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(PhysicalNetworkTrafficType.traffic_type.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(PhysicalNetworkTrafficType.traffic_type), args)
    return ListResult("traffictype", [traffic_type_view(r, pn) for r in rows], count)


@command("updateTrafficType", "Updates traffic type of a physical network", isasync=True, params=[
    Param("id", "uuid", required=True, description="traffic type id"),
    *LABEL_PARAMS,
], response=TRAFFIC_FIELDS)
def update_traffic_type(ctx: CallContext, args: Args) -> Result:
    row = ctx.require(args, PhysicalNetworkTrafficType, "id")
    physical.update_traffic_type(ctx.db, ctx.user, row, _labels(args))
    pn = ctx.db.get(PhysicalNetwork, row.physical_network_id)
    return run_inline(ctx, ObjectResult("traffictype", traffic_type_view(row, pn)), instance_type="TrafficType",
                      instance_id=row.id)


@command("deleteTrafficType", "Deletes traffic type of a physical network", isasync=True, params=[
    Param("id", "uuid", required=True, description="traffic type id")])
def delete_traffic_type(ctx: CallContext, args: Args) -> Result:
    row = ctx.require(args, PhysicalNetworkTrafficType, "id")
    row_id = row.id
    physical.delete_traffic_type(ctx.db, ctx.user, row)
    return run_inline(ctx, SuccessResult(), instance_type="TrafficType", instance_id=row_id)


# ---------------------------------------------------------------------------- providers and elements


@command("listNetworkServiceProviders", "Lists network serviceproviders for a given physical network.", params=[
    Param("physicalnetworkid", "uuid", description="the Physical Network ID"),
    Param("name", description="list providers by name"),
    Param("state", description="list providers by state"),
], response=NSP_FIELDS)
def list_network_service_providers(ctx: CallContext, args: Args) -> Result:
    stmt = select(NetworkServiceProvider).join(
        PhysicalNetwork, PhysicalNetwork.id == NetworkServiceProvider.physical_network_id).where(
        PhysicalNetwork.removed.is_(None))
    for param, column in (("physicalnetworkid", NetworkServiceProvider.physical_network_id),
                          ("name", NetworkServiceProvider.name), ("state", NetworkServiceProvider.state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(NetworkServiceProvider.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt.order_by(NetworkServiceProvider.created, NetworkServiceProvider.name), args)
    return ListResult("networkserviceprovider", [provider_view(r) for r in rows], count)


@command("updateNetworkServiceProvider", "Updates a network serviceProvider of a physical network", isasync=True,
         params=[
             Param("id", "uuid", required=True, description="network service provider id"),
             Param("state", description="Enabled/Disabled/Shutdown the physical network service provider"),
             Param("servicelist", "list", description="the list of services to be enabled for this provider"),
         ], response=NSP_FIELDS)
def update_network_service_provider(ctx: CallContext, args: Args) -> Result:
    nsp = ctx.require(args, NetworkServiceProvider, "id")
    state = args.opt_str("state")
    services = args.list("servicelist") if args.has("servicelist") else None
    physical.update_provider(ctx.db, ctx.user, nsp, physical.state_name(state) if state else None, services)
    return run_inline(ctx, ObjectResult("networkserviceprovider", provider_view(nsp)),
                      instance_type="PhysicalNetworkServiceProvider", instance_id=nsp.id)


@command("listVirtualRouterElements", "Lists all available virtual router elements.", params=[
    Param("id", "uuid", description="list virtual router elements by id"),
    Param("nspid", "uuid", description="list virtual router elements by network service provider id"),
    Param("enabled", "boolean", description="list network offerings by enabled state"),
], response=ELEMENT_FIELDS)
def list_virtual_router_elements(ctx: CallContext, args: Args) -> Result:
    stmt = select(VirtualRouterElement)
    for param, column in (("id", VirtualRouterElement.id), ("nspid", VirtualRouterElement.provider_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    enabled = args.opt_bool("enabled")
    if enabled is not None:
        stmt = stmt.where(VirtualRouterElement.enabled.is_(enabled))
    rows, count = ctx.page(stmt.order_by(VirtualRouterElement.id), args)
    return ListResult("virtualrouterelement", [element_view(r) for r in rows], count)


@command("configureVirtualRouterElement", "Configures a virtual router element.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the virtual router provider"),
    Param("enabled", "boolean", required=True, description="Enabled/Disabled the service provider"),
], response=ELEMENT_FIELDS)
def configure_virtual_router_element(ctx: CallContext, args: Args) -> Result:
    element = ctx.require(args, VirtualRouterElement, "id")
    physical.configure_element(ctx.db, ctx.user, element, args.bool("enabled"))
    return run_inline(ctx, ObjectResult("virtualrouterelement", element_view(element)),
                      instance_type="VirtualRouterElement", instance_id=element.id)


# ---------------------------------------------------------------------------- IP ranges


def _range_owner(ctx: CallContext, args: Args) -> Account | None:
    name = args.opt_str("account")
    if name is None:
        return None
    domain = ctx.optional_domain(args)
    if domain is None:
        raise errors.param_error("Invalid domainid: give domainid with account")
    account = ctx.db.scalar(select(Account).where(Account.domain_id == domain.id, Account.name == name,
                                                  Account.removed.is_(None)))
    if account is None:
        raise errors.param_error(f"Invalid account {name[:64]}: no such account in domain {domain.id}")
    return account


@command("createVlanIpRange", "Creates a VLAN IP range.", params=[
    Param("zoneid", "uuid", description="the Zone ID of the VLAN IP range"),
    Param("podid", "uuid", description="optional parameter. Have to be specified for Direct Untagged vlan only."),
    Param("physicalnetworkid", "uuid", description="the physical network id"),
    Param("networkid", "uuid", description="the network id (a Shared network)"),
    Param("vlan", description="the ID or VID of the VLAN (vlan://N, N or untagged)"),
    Param("gateway", description="the gateway of the VLAN IP range"),
    Param("netmask", description="the netmask of the VLAN IP range"),
    Param("startip", required=True, description="the beginning IP address in the VLAN IP range"),
    Param("endip", description="the ending IP address in the VLAN IP range"),
    Param("forvirtualnetwork", "boolean", description="true if VLAN is of Virtual type, false if Direct"),
    Param("forsystemvms", "boolean", description="true if IP range is set to system vms, false if not"),
    Param("account", description="account who will own the VLAN (with domainid)"),
    Param("domainid", "uuid", description="domain ID of the account owning a VLAN"),
    Param("projectid", "uuid", description="project who will own the VLAN"),
], response=VLAN_FIELDS)
def create_vlan_ip_range(ctx: CallContext, args: Args) -> Result:
    if args.has("projectid"):
        raise errors.param_error("Invalid projectid: projects are not supported")
    network = ctx.optional(args, Network, "networkid")
    if network is not None and network.removed is not None:
        raise errors.entity_not_found("networkid", network.id)
    zone = ctx.optional(args, Zone, "zoneid")
    if network is not None:
        if zone is not None and zone.id != network.zone_id:
            raise errors.param_error(f"Invalid zoneid: network {network.name} is in another zone")
        zone = ctx.db.get(Zone, network.zone_id)
    if zone is None:
        raise errors.missing_parameter(ctx.command, "zoneid")
    pn = ctx.optional(args, PhysicalNetwork, "physicalnetworkid")
    if pn is not None and (pn.removed is not None or pn.zone_id != zone.id):
        raise errors.param_error(f"Invalid physicalnetworkid {pn.id}: not a physical network of zone {zone.name}")
    if network is not None:
        if pn is not None and pn.id != network.physical_network_id:
            raise errors.param_error(f"Invalid physicalnetworkid: network {network.name} is on another physical "
                                     "network")
        pn = ctx.db.get(PhysicalNetwork, network.physical_network_id) if network.physical_network_id else None
    elif pn is None:
        pn = next((p for p in physical.live_physical_networks(ctx.db, zone.id)
                   if physical.carries(ctx.db, p.id, "Public")), None)
    elif not physical.carries(ctx.db, pn.id, "Public"):
        raise errors.param_error(f"Invalid physicalnetworkid: physical network {pn.name} carries no Public traffic")
    pod = ctx.optional(args, Pod, "podid")
    if pod is not None and pod.zone_id != zone.id:
        raise errors.param_error(f"Invalid podid: pod {pod.name} is not in zone {zone.name}")
    owner = _range_owner(ctx, args)
    if owner is not None and network is not None:
        raise errors.param_error("Invalid account: a shared network's range cannot be dedicated to an account")
    for_virtual = args.opt_bool("forvirtualnetwork")
    spec = ranges.RangeSpec(gateway=args.opt_str("gateway"), netmask=args.opt_str("netmask"),
                            start_ip=args.str("startip"), end_ip=args.opt_str("endip"), vlan=args.opt_str("vlan"),
                            for_virtual_network=for_virtual if for_virtual is not None else network is None,
                            for_system_vms=args.bool("forsystemvms"))
    row = ranges.add_range(ctx.db, ctx.user, zone=zone, physical_network=pn, network=network, pod=pod, owner=owner,
                           spec=spec)
    return ObjectResult("vlan", vlan_range_view(row, zone))


@command("listVlanIpRanges", "Lists all VLAN IP ranges.", params=[
    Param("id", "uuid", description="the ID of the VLAN IP range"),
    Param("vlan", description="the ID or VID of the VLAN"),
    Param("zoneid", "uuid", description="the Zone ID of the VLAN IP range"),
    Param("podid", "uuid", description="the Pod ID of the VLAN IP range"),
    Param("networkid", "uuid", description="network id of the VLAN IP range"),
    Param("physicalnetworkid", "uuid", description="physical network id of the VLAN IP range"),
    Param("forvirtualnetwork", "boolean", description="true if VLAN is of Virtual type, false if Direct"),
    Param("account", description="the account with which the VLAN IP range is associated (with domainid)"),
    Param("domainid", "uuid", description="the domain ID with which the VLAN IP range is associated"),
    Param("projectid", "uuid", description="project who will own the VLAN"),
], response=VLAN_FIELDS)
def list_vlan_ip_ranges(ctx: CallContext, args: Args) -> Result:
    stmt = select(VlanIpRange).where(VlanIpRange.removed.is_(None))
    for param, column in (("id", VlanIpRange.id), ("zoneid", VlanIpRange.zone_id), ("podid", VlanIpRange.pod_id),
                          ("networkid", VlanIpRange.network_id),
                          ("physicalnetworkid", VlanIpRange.physical_network_id),
                          ("domainid", VlanIpRange.domain_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    vlan = args.opt_str("vlan")
    if vlan is not None:
        text = vlan.strip().lower()
        stmt = stmt.where(VlanIpRange.vlan_tag.in_([text, f"vlan://{text}", f"vxlan://{text}"]))
    forvirtual = args.opt_bool("forvirtualnetwork")
    if forvirtual is not None:
        stmt = stmt.where(VlanIpRange.for_virtual_network.is_(forvirtual))
    if args.has("account"):
        owner = _range_owner(ctx, args)
        stmt = stmt.where(VlanIpRange.account_id == (owner.id if owner else None))
    if args.has("projectid"):
        return ListResult("vlaniprange", [], 0)  # no projects here: no range belongs to one
    rows, count = ctx.page(stmt.order_by(VlanIpRange.created, VlanIpRange.id), args)
    zones = {z.id: z for z in ctx.db.scalars(select(Zone).where(Zone.id.in_({r.zone_id for r in rows})))}
    return ListResult("vlaniprange", [vlan_range_view(r, zones.get(r.zone_id)) for r in rows], count)


@command("deleteVlanIpRange", "Deletes a VLAN IP range.", params=[
    Param("id", "uuid", required=True, description="the id of the VLAN IP range")])
def delete_vlan_ip_range(ctx: CallContext, args: Args) -> Result:
    row = ctx.require(args, VlanIpRange, "id")
    if row.removed is not None:
        raise errors.entity_not_found("id", row.id)
    ranges.delete_range(ctx.db, ctx.user, row)
    return SuccessResult()
