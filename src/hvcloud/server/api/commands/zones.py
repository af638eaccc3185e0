"""Zones, pods and clusters."""

from __future__ import annotations

import ipaddress

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.params import map_as_key_values
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Cluster, Pod, Zone
from hvcloud.server.orchestration.catalog import HYPERVISORS
from hvcloud.server.orchestration.resources import zones
from hvcloud.server.views.zones import cluster_view, pod_view, zone_view

command = REGISTRY.command

ZONE_FIELDS = ("id", "name", "networktype", "allocationstate", "dns1", "internaldns1", "localstorageenabled")
POD_FIELDS = ("id", "name", "zoneid", "gateway", "netmask", "startip", "endip", "allocationstate")
CLUSTER_FIELDS = ("id", "name", "podid", "zoneid", "hypervisortype", "clustertype", "allocationstate")
ALLOCATION_STATES = ("Enabled", "Disabled")


def _ip(command_name: str, name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise errors.invalid_value(command_name, name, value[:64]) from None


def _allocation(args: Args, default: str | None) -> str | None:
    value = args.opt_str("allocationstate")
    if value is None:
        return default
    for state in ALLOCATION_STATES:
        if state.lower() == value.lower():
            return state
    raise errors.param_error(f"Invalid allocation state {value[:32]}: expected Enabled or Disabled")


@command("createZone", "Creates a Zone", params=[
    Param("name", required=True, description="the name of the Zone"),
    Param("networktype", required=True, description="network type of the zone, Basic or Advanced"),
    Param("dns1", required=True, description="the first DNS for the Zone"),
    Param("internaldns1", required=True, description="the first internal DNS for the Zone"),
    Param("dns2", description="the second DNS for the Zone"),
    Param("internaldns2", description="the second internal DNS for the Zone"),
    Param("guestcidraddress", description="the guest CIDR address for the Zone"),
    Param("domain", description="Network domain name for the networks in the zone"),
    Param("localstorageenabled", "boolean", description="true if local storage offering enabled"),
    Param("securitygroupenabled", "boolean", description="true if network is security group enabled"),
    Param("allocationstate", description="Allocation state of this Zone: Enabled or Disabled"),
], response=ZONE_FIELDS)
def create_zone(ctx: CallContext, args: Args) -> Result:
    name = args.str("name")
    network_type = args.str("networktype")
    if network_type.lower() not in ("basic", "advanced"):
        raise errors.param_error(f"Invalid network type {network_type[:32]}: expected Basic or Advanced")
    cidr = args.opt_str("guestcidraddress")
    if cidr:
        try:
            cidr = str(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            raise errors.invalid_value(ctx.command, "guestcidraddress", cidr[:64]) from None
    zone = Zone(name=name, network_type=network_type.capitalize(),
                dns1=_ip(ctx.command, "dns1", args.str("dns1")) or "",
                dns2=_ip(ctx.command, "dns2", args.opt_str("dns2")),
                internal_dns1=_ip(ctx.command, "internaldns1", args.str("internaldns1")) or "",
                internal_dns2=_ip(ctx.command, "internaldns2", args.opt_str("internaldns2")),
                guest_cidr=cidr, network_domain=args.opt_str("domain"),
                local_storage_enabled=args.bool("localstorageenabled"),
                security_groups_enabled=args.bool("securitygroupenabled"),
                allocation_state=_allocation(args, "Disabled") or "Disabled")
    zones.create_zone(ctx.db, zone)
    ctx.event("ZONE.CREATE", f"Creating zone {name}", resource_type="Zone", resource_id=zone.id)
    return ObjectResult("zone", zone_view(zone))


@command("listZones", "Lists zones", admin=False, params=[
    Param("id", "uuid", description="the ID of the zone"),
    Param("name", description="the name of the zone"),
    Param("networktype", description="the network type of the zone"),
    Param("available", "boolean", description="true to list only zones the caller can deploy to"),
    Param("showcapacities", "boolean", description="flag to display the capacity of the zones"),
], response=ZONE_FIELDS)
def list_zones(ctx: CallContext, args: Args) -> Result:
    stmt = select(Zone).order_by(Zone.created, Zone.name)
    for param, column in (("id", Zone.id), ("name", Zone.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    network_type = args.opt_str("networktype")
    if network_type:
        stmt = stmt.where(Zone.network_type == network_type.capitalize())
    if not ctx.is_admin:
        stmt = stmt.where(Zone.allocation_state == "Enabled")
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Zone.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("zone", [zone_view(z) for z in rows], count)


@command("updateZone", "Updates a Zone", params=[
    Param("id", "uuid", required=True, description="the ID of the Zone"),
    Param("name", description="the name of the Zone"),
    Param("dns1", description="the first DNS for the Zone"),
    Param("dns2", description="the second DNS for the Zone"),
    Param("internaldns1", description="the first internal DNS for the Zone"),
    Param("internaldns2", description="the second internal DNS for the Zone"),
    Param("domain", description="Network domain name for the networks in the zone"),
    Param("localstorageenabled", "boolean", description="true if local storage offering enabled"),
    Param("allocationstate", description="Allocation state of this cluster: Enabled or Disabled"),
    Param("details", "map", description="the details for the Zone"),
], response=ZONE_FIELDS)
def update_zone(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "id")
    fields: list[tuple[str, str | bool | None]] = []
    for param, attr in (("dns1", "dns1"), ("dns2", "dns2"), ("internaldns1", "internal_dns1"),
                        ("internaldns2", "internal_dns2")):
        if args.has(param):
            fields.append((attr, _ip(ctx.command, param, args.opt_str(param))))
    if args.has("domain"):
        fields.append(("network_domain", args.opt_str("domain")))
    if args.opt_bool("localstorageenabled") is not None:
        fields.append(("local_storage_enabled", args.bool("localstorageenabled")))
    allocation_state = _allocation(args, None)
    details = map_as_key_values(args.map("details"))
    if len(details) > 64 or any(len(k) > 255 or len(v) > 1024 for k, v in details.items()):
        raise errors.param_error("Too many or too long zone details")
    zones.update_zone(ctx.db, zone, zones.ZoneEdit(name=args.opt_str("name"), fields=tuple(fields),
                                                   allocation_state=allocation_state,
                                                   details=tuple(details.items())))
    ctx.event("ZONE.EDIT", f"Updating zone {zone.name}", resource_type="Zone", resource_id=zone.id)
    return ObjectResult("zone", zone_view(zone))


@command("deleteZone", "Deletes a Zone", params=[
    Param("id", "uuid", required=True, description="the ID of the Zone")])
def delete_zone(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "id")
    zones.delete_zone(ctx.db, zone)
    ctx.event("ZONE.DELETE", f"Deleting zone {zone.name}", resource_type="Zone", resource_id=zone.id)
    return SuccessResult()


def _pod_range(ctx: CallContext, args: Args) -> zones.PodRange:
    gateway = _ip(ctx.command, "gateway", args.opt_str("gateway"))
    netmask = _ip(ctx.command, "netmask", args.opt_str("netmask"))
    start = _ip(ctx.command, "startip", args.opt_str("startip"))
    end = _ip(ctx.command, "endip", args.opt_str("endip"))
    if netmask is not None:
        try:
            ipaddress.ip_network(f"0.0.0.0/{netmask}")
        except ValueError:
            raise errors.invalid_value(ctx.command, "netmask", netmask) from None
    if start and end and int(ipaddress.ip_address(start)) > int(ipaddress.ip_address(end)):
        raise errors.param_error("Start IP of the pod range is after its end IP")
    if gateway and netmask and start:
        net = ipaddress.ip_network(f"{gateway}/{netmask}", strict=False)
        for ip in (start, end):
            if ip and ipaddress.ip_address(ip) not in net:
                raise errors.param_error(f"The IP {ip} is not in the pod's CIDR {net}")
    return zones.PodRange(gateway, netmask, start, end)


@command("createPod", "Creates a new Pod", params=[
    Param("name", required=True, description="the name of the Pod"),
    Param("zoneid", "uuid", required=True, description="the Zone ID in which the Pod will be created"),
    Param("gateway", description="the gateway for the Pod"),
    Param("netmask", description="the netmask for the Pod"),
    Param("startip", description="the starting IP address for the Pod"),
    Param("endip", description="the ending IP address for the Pod"),
    Param("allocationstate", description="Allocation state of this Pod: Enabled or Disabled"),
], response=POD_FIELDS)
def create_pod(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    name = args.str("name")
    pod = zones.create_pod(ctx.db, zone, name, _pod_range(ctx, args), _allocation(args, "Enabled") or "Enabled")
    ctx.event("POD.CREATE", f"Creating pod {name}", resource_type="Pod", resource_id=pod.id)
    return ObjectResult("pod", pod_view(pod))


@command("listPods", "Lists all Pods", params=[
    Param("id", "uuid", description="list Pods by ID"),
    Param("name", description="list Pods by name"),
    Param("zoneid", "uuid", description="list Pods by Zone ID"),
    Param("allocationstate", description="list pods by allocation state"),
], response=POD_FIELDS)
def list_pods(ctx: CallContext, args: Args) -> Result:
    stmt = select(Pod).order_by(Pod.created, Pod.name)
    for param, column in (("id", Pod.id), ("name", Pod.name), ("zoneid", Pod.zone_id),
                          ("allocationstate", Pod.allocation_state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Pod.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("pod", [pod_view(p) for p in rows], count)


@command("updatePod", "Updates a Pod", params=[
    Param("id", "uuid", required=True, description="the ID of the Pod"),
    Param("name", description="the name of the Pod"),
    Param("gateway", description="the gateway for the Pod"),
    Param("netmask", description="the netmask of the Pod"),
    Param("startip", description="the starting IP address for the Pod"),
    Param("endip", description="the ending IP address for the Pod"),
    Param("allocationstate", description="Allocation state of this Pod: Enabled or Disabled"),
], response=POD_FIELDS)
def update_pod(ctx: CallContext, args: Args) -> Result:
    pod = ctx.require(args, Pod, "id")
    zones.update_pod(ctx.db, pod, args.opt_str("name"), _pod_range(ctx, args), _allocation(args, None))
    ctx.event("POD.EDIT", f"Updating pod {pod.name}", resource_type="Pod", resource_id=pod.id)
    return ObjectResult("pod", pod_view(pod))


@command("deletePod", "Deletes a Pod", params=[
    Param("id", "uuid", required=True, description="the ID of the Pod")])
def delete_pod(ctx: CallContext, args: Args) -> Result:
    pod = ctx.require(args, Pod, "id")
    zones.delete_pod(ctx.db, pod)
    ctx.event("POD.DELETE", f"Deleting pod {pod.name}", resource_type="Pod", resource_id=pod.id)
    return SuccessResult()


def _hypervisor(value: str) -> str:
    for name in HYPERVISORS:
        if name.lower() == value.lower():
            return name
    raise errors.param_error(f"Unable to resolve Hypervisor type {value[:32]}; "
                             f"supported: {', '.join(HYPERVISORS)}")


def _ratio(ctx: CallContext, name: str, value: str | None, default: str) -> str:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise errors.invalid_value(ctx.command, name, value[:32]) from None
    if not 0 < number <= 100:
        raise errors.param_error(f"{name} must be a number in (0, 100]")
    return str(number)


@command("addCluster", "Adds a new cluster", params=[
    Param("clustername", required=True, description="the cluster name"),
    Param("clustertype", required=True, description="type of the cluster: CloudManaged, ExternalManaged"),
    Param("hypervisor", required=True, description="hypervisor type of the cluster"),
    Param("podid", "uuid", required=True, description="the Pod ID for the host"),
    Param("zoneid", "uuid", required=True, description="the Zone ID for the cluster"),
    Param("allocationstate", description="Allocation state of this cluster: Enabled or Disabled"),
    Param("cpuovercommitratio", description="value of the cpu overcommit ratio, defaults to 1"),
    Param("memoryovercommitratio", description="value of the memory overcommit ratio, defaults to 1"),
    Param("url", length=2048, description="the URL"),
    Param("username", description="the username for the cluster"),
    Param("password", description="the password for the cluster"),
], response=CLUSTER_FIELDS)
def add_cluster(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    pod = ctx.require(args, Pod, "podid")
    if pod.zone_id != zone.id:
        raise errors.param_error(f"Pod {pod.name} does not belong to zone {zone.name}")
    cluster_type = args.str("clustertype")
    if cluster_type not in ("CloudManaged", "ExternalManaged"):
        raise errors.param_error("Invalid cluster type: expected CloudManaged or ExternalManaged")
    name = args.str("clustername")
    cluster = Cluster(zone_id=zone.id, pod_id=pod.id, name=name,
                      hypervisor=_hypervisor(args.str("hypervisor")),
                      cluster_type=cluster_type, allocation_state=_allocation(args, "Enabled") or "Enabled",
                      cpu_overcommit=_ratio(ctx, "cpuovercommitratio", args.opt_str("cpuovercommitratio"),
                                            "1.0"),
                      memory_overcommit=_ratio(ctx, "memoryovercommitratio",
                                               args.opt_str("memoryovercommitratio"), "1.0"))
    zones.create_cluster(ctx.db, cluster, pod)
    ctx.event("CLUSTER.CREATE", f"Adding cluster {name}", resource_type="Cluster", resource_id=cluster.id)
    return ListResult("cluster", [cluster_view(cluster)], 1)


@command("listClusters", "Lists clusters", params=[
    Param("id", "uuid", description="lists clusters by the cluster ID"),
    Param("name", description="lists clusters by the cluster name"),
    Param("podid", "uuid", description="lists clusters by Pod ID"),
    Param("zoneid", "uuid", description="lists clusters by Zone ID"),
    Param("hypervisor", description="lists clusters by hypervisor type"),
    Param("clustertype", description="lists clusters by cluster type"),
    Param("allocationstate", description="lists clusters by allocation state"),
    Param("managedstate", description="whether this cluster is managed by cloudstack"),
], response=CLUSTER_FIELDS)
def list_clusters(ctx: CallContext, args: Args) -> Result:
    stmt = select(Cluster).order_by(Cluster.created, Cluster.name)
    for param, column in (("id", Cluster.id), ("name", Cluster.name), ("podid", Cluster.pod_id),
                          ("zoneid", Cluster.zone_id), ("clustertype", Cluster.cluster_type),
                          ("allocationstate", Cluster.allocation_state),
                          ("managedstate", Cluster.managed_state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    hypervisor = args.opt_str("hypervisor")
    if hypervisor:
        stmt = stmt.where(Cluster.hypervisor == _hypervisor(hypervisor))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Cluster.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("cluster", [cluster_view(c) for c in rows], count)


@command("updateCluster", "Updates an existing cluster", params=[
    Param("id", "uuid", required=True, description="the ID of the Cluster"),
    Param("clustername", description="the cluster name"),
    Param("allocationstate", description="Allocation state of this cluster: Enabled or Disabled"),
    Param("managedstate", description="whether this cluster is managed by cloudstack"),
], response=CLUSTER_FIELDS)
def update_cluster(ctx: CallContext, args: Args) -> Result:
    cluster = ctx.require(args, Cluster, "id")
    managed = args.opt_str("managedstate")
    if managed is not None and managed not in ("Managed", "Unmanaged"):
        raise errors.param_error("managedstate must be Managed or Unmanaged")
    zones.update_cluster(ctx.db, cluster, args.opt_str("clustername"), _allocation(args, None), managed)
    ctx.event("CLUSTER.EDIT", f"Updating cluster {cluster.name}", resource_type="Cluster",
              resource_id=cluster.id)
    return ObjectResult("cluster", cluster_view(cluster))


@command("deleteCluster", "Deletes a cluster", params=[
    Param("id", "uuid", required=True, description="the cluster ID")])
def delete_cluster(ctx: CallContext, args: Args) -> Result:
    cluster = ctx.require(args, Cluster, "id")
    zones.delete_cluster(ctx.db, cluster)
    ctx.event("CLUSTER.DELETE", f"Deleting cluster {cluster.name}", resource_type="Cluster",
              resource_id=cluster.id)
    return SuccessResult()
