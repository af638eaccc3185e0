"""Hosts: discovery (``addHost``), listing, update, maintenance, reconnection and removal."""

from __future__ import annotations

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline, submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.params import map_as_key_values
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import Cluster, Host, Pod, Zone
from hvcloud.server.orchestration import host_jobs
from hvcloud.server.orchestration.agents.protocol import AgentService
from hvcloud.server.orchestration.resources import hosts
from hvcloud.server.views.hosts import host_view

command = REGISTRY.command

HOST_FIELDS = ("id", "name", "type", "state", "resourcestate", "ipaddress", "zoneid", "podid", "clusterid",
               "hypervisor", "cpunumber", "memorytotal", "certfingerprint", "managementserverid")
PORT_DETAIL = "agent.port"


def _manager(ctx: CallContext) -> AgentService:
    if ctx.state.agents is None:
        raise errors.unavailable(hosts.NO_AGENT_MANAGER)
    return ctx.state.agents


def _cluster_of(ctx: CallContext, args: Args, pod: Pod) -> Cluster:
    cluster = ctx.optional(args, Cluster, "clusterid")
    name = args.opt_str("clustername")
    if cluster is None and name:
        cluster = ctx.db.scalars(select(Cluster).where(Cluster.pod_id == pod.id, Cluster.name == name)).first()
        if cluster is None:
            raise errors.param_error(f"Cluster {name[:64]} does not exist in pod {pod.name}")
    if cluster is None:
        raise errors.param_error("A cluster is required to add a host: give clusterid or clustername")
    if cluster.pod_id != pod.id:
        raise errors.param_error("The cluster does not belong to the given pod")
    return cluster


@command("addHost", "Adds a new host.", params=[
    Param("hypervisor", required=True, description="hypervisor type of the host"),
    Param("podid", "uuid", required=True, description="the Pod ID for the host"),
    Param("url", required=True, length=2048, description="the host URL, http://<name or IP>[:port]"),
    Param("zoneid", "uuid", required=True, description="the Zone ID for the host"),
    Param("clusterid", "uuid", description="the cluster ID for the host"),
    Param("clustername", description="the cluster name for the host"),
    Param("username", description="the agent's username"),
    Param("password", description="the agent's password"),
    Param("hosttags", "list", description="list of tags to be added to the host"),
    Param("allocationstate", description="Allocation state of this Host for allocation of new resources"),
    Param("details", "map", description="details; agent.port overrides the agent's port (default 8250)"),
], response=HOST_FIELDS)
def add_host(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    pod = ctx.require(args, Pod, "podid")
    if pod.zone_id != zone.id:
        raise errors.param_error("The pod does not belong to the given zone")
    cluster = _cluster_of(ctx, args, pod)
    hypervisor = args.str("hypervisor")
    if hypervisor.lower() != cluster.hypervisor.lower():
        raise errors.param_error(f"Hypervisor {hypervisor[:32]} does not match the cluster's hypervisor "
                                 f"{cluster.hypervisor}")
    state = args.opt_str("allocationstate")
    if state is not None and state.lower() not in ("enabled", "disabled"):
        raise errors.param_error("allocationstate must be Enabled or Disabled")
    username, password = args.opt_str("username"), args.opt_str("password")
    if (username is None) != (password is None):
        raise errors.param_error("Give both username and password for the agent, or neither")
    details = map_as_key_values(args.map("details"))
    new = hosts.NewHost(zone=zone, pod=pod, cluster=cluster, url=args.str("url"),
                        port_override=details.get(PORT_DETAIL), username=username, password=password,
                        host_tags=",".join(args.list("hosttags")) or None,
                        disabled=state is not None and state.lower() == "disabled")
    host = hosts.add_host(ctx.db, ctx.state.agents, ctx.state.box, new)
    ctx.event("HOST.ADD", f"Added host {host.name} ({host.url})", resource_type="Host", resource_id=host.id)
    return ListResult("host", [host_view(host)], 1)


@command("reconnectHost", "Reconnects a host.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the host ID")], response=HOST_FIELDS)
def reconnect_host(ctx: CallContext, args: Args) -> Result:
    host = ctx.require(args, Host, "id")
    _manager(ctx)
    return submit_job(ctx, host_jobs.JOB_RECONNECT, {"host_id": host.id}, instance_type="Host",
                      instance_id=host.id)


@command("listHosts", "Lists hosts", params=[
    Param("id", "uuid", description="the id of the host"),
    Param("name", description="the name of the host"),
    Param("zoneid", "uuid", description="the Zone ID for the host"),
    Param("podid", "uuid", description="the Pod ID for the host"),
    Param("clusterid", "uuid", description="lists hosts existing in particular cluster"),
    Param("type", description="the host type"),
    Param("state", description="the state of the host"),
    Param("resourcestate", description="list hosts by resource state"),
    Param("hypervisor", description="hypervisor type of host"),
], response=HOST_FIELDS)
def list_hosts(ctx: CallContext, args: Args) -> Result:
    stmt = select(Host).order_by(Host.created, Host.name)
    for param, column in (("id", Host.id), ("name", Host.name), ("zoneid", Host.zone_id),
                          ("podid", Host.pod_id),
                          ("clusterid", Host.cluster_id), ("type", Host.host_type), ("state", Host.status),
                          ("resourcestate", Host.resource_state), ("hypervisor", Host.hypervisor)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(Host.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("host", [host_view(h) for h in rows], count)


@command("updateHost", "Updates a host", params=[
    Param("id", "uuid", required=True, description="the ID of the host to update"),
    Param("allocationstate", description="Change resource state of host: Enable or Disable"),
    Param("hosttags", "list", description="list of tags to be added to the host"),
    Param("name", description="the new name for the host"),
    Param("url", length=2048, description="the new URL for the host"),
], response=HOST_FIELDS)
def update_host(ctx: CallContext, args: Args) -> Result:
    host = ctx.require(args, Host, "id")
    event = args.opt_str("allocationstate")
    if event is not None and event.lower() not in ("enable", "disable"):
        raise errors.param_error("allocationstate must be Enable or Disable")
    hosts.update_host(host, enable=None if event is None else event.lower() == "enable",
                      host_tags=",".join(args.list("hosttags")) or None, tags_given=args.has("hosttags"),
                      name=args.opt_str("name"))
    ctx.event("HOST.UPDATE", f"Updating host {host.name}", resource_type="Host", resource_id=host.id)
    return ObjectResult("host", host_view(host))


@command("prepareHostForMaintenance", "Prepares a host for maintenance", isasync=True, params=[
    Param("id", "uuid", required=True, description="the host ID")], response=HOST_FIELDS)
def prepare_host_for_maintenance(ctx: CallContext, args: Args) -> Result:
    host = ctx.require(args, Host, "id")
    hosts.prepare_maintenance(host)
    ctx.event("MAINT.PREPARE", f"Preparing host {host.name} for maintenance", resource_type="Host",
              resource_id=host.id)
    return submit_job(ctx, host_jobs.JOB_MAINTAIN, {"host_id": host.id}, instance_type="Host",
                      instance_id=host.id)


@command("cancelHostMaintenance", "Cancels host maintenance", isasync=True, params=[
    Param("id", "uuid", required=True, description="the host ID")], response=HOST_FIELDS)
def cancel_host_maintenance(ctx: CallContext, args: Args) -> Result:
    host = ctx.require(args, Host, "id")
    outcome: Result | errors.ApiError
    try:
        hosts.cancel_maintenance(host)
    except errors.ApiError as exc:
        outcome = exc
    else:
        ctx.event("MAINT.CANCEL", f"Host {host.name} left maintenance", resource_type="Host",
                  resource_id=host.id)
        outcome = ObjectResult("host", host_view(host))
    return run_inline(ctx, outcome, instance_type="Host", instance_id=host.id)


@command("deleteHost", "Deletes a host", params=[
    Param("id", "uuid", required=True, description="the host ID"),
    Param("forced", "boolean", description="Force delete the host even if it is not in maintenance"),
    Param("forcedestroylocalstorage", "boolean", description="Force destroy local storage on this host"),
])
def delete_host(ctx: CallContext, args: Args) -> Result:
    host = ctx.require(args, Host, "id")
    hosts.delete_host(ctx.db, ctx.state.agents, host, forced=args.bool("forced"))
    ctx.event("HOST.DELETE", f"Deleting host {host.name}", resource_type="Host", resource_id=host.id)
    return SuccessResult()
