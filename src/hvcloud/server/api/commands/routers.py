"""Virtual routers: list, start, stop, reboot, destroy; and ``restartNetwork``.

The router commands are for administrators, as in CloudStack (a domain administrator role does not
exist here). ``restartNetwork`` is for the network's owner too. Requests check and queue a job on
the router's network (``Network:<id>``, so the jobs of one network run in order);
:mod:`hvcloud.server.orchestration.networks.routers` does the work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.db.models import Account, DomainRouter, Network
from hvcloud.server.orchestration.networks import implement as N
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.views.routers import router_views

command = REGISTRY.command

ROUTER_FIELDS = ("id", "name", "state", "zoneid", "hostid", "guestnetworkid", "guestipaddress", "nic")
_ROUTER_STATES = (RT.STARTING, RT.RUNNING, RT.STOPPING, RT.STOPPED)
_RESTARTABLE = (N.IMPLEMENTED, "Setup")


def _router(ctx: CallContext, args: Args) -> DomainRouter:
    router = ctx.require(args, DomainRouter, "id")
    if router.removed is not None or router.state == RT.DESTROYED:
        raise errors.entity_not_found("id", router.id)
    return router


_EVENTS = {RT.JOB_START: ("ROUTER.START", "Starting"), RT.JOB_STOP: ("ROUTER.STOP", "Stopping"),
           RT.JOB_REBOOT: ("ROUTER.REBOOT", "Rebooting"), RT.JOB_DESTROY: ("ROUTER.DESTROY", "Destroying")}


def _job(ctx: CallContext, handler: str, router: DomainRouter, params: dict[str, Any] | None = None) -> Result:
    event, verb = _EVENTS[handler]
    ctx.event(event, f"{verb} router {router.name}", resource_type="DomainRouter", resource_id=router.id)
    return submit_job(ctx, handler, {"router_id": router.id, **(params or {})}, instance_type="DomainRouter",
                      instance_id=router.id, object_key=f"Network:{router.network_id}")


@command("listRouters", "List routers.", listall=True, params=[
    Param("id", "uuid", description="the ID of the disk router"),
    Param("name", description="the name of the router"),
    Param("state", description="the state of the router"),
    Param("zoneid", "uuid", description="the Zone ID of the router"),
    Param("hostid", "uuid", description="the host ID of the router"),
    Param("networkid", "uuid", description="list by network id"),
    Param("account", description="list resources by account; must be used with the domainId parameter"),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("version", description="list virtual router elements by version"),
    Param("role", description="the role of the router (VIRTUAL_ROUTER)"),
], response=ROUTER_FIELDS)
def list_routers(ctx: CallContext, args: Args) -> Result:
    stmt = select(DomainRouter.id).where(DomainRouter.removed.is_(None))
    domain = ctx.optional_domain(args)
    account_name = args.opt_str("account")
    if account_name is not None:
        if domain is None:
            raise errors.param_error("Unable to list routers: account must be given with domainid")
        account_id = ctx.db.scalar(select(Account.id).where(Account.domain_id == domain.id,
                                                            Account.name == account_name, Account.removed.is_(None)))
        if account_id is None:
            raise errors.param_error(f"Unable to find account {account_name[:64]} in domain {domain.id}")
        stmt = stmt.where(DomainRouter.account_id == account_id)
    elif domain is not None:
        stmt = stmt.where(DomainRouter.domain_id == domain.id)
    else:
        owner = ctx.owner_filter(DomainRouter.account_id, args)
        if owner is not None:
            stmt = stmt.where(owner)
    for param, column in (("id", DomainRouter.id), ("name", DomainRouter.name), ("zoneid", DomainRouter.zone_id),
                          ("hostid", DomainRouter.host_id), ("networkid", DomainRouter.network_id),
                          ("version", DomainRouter.version), ("role", DomainRouter.role)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    state = args.opt_str("state")
    if state is not None:
        stmt = stmt.where(DomainRouter.state.ilike(state.replace("%", "").replace("_", "")))
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(DomainRouter.name.ilike(pattern, escape="\\"),
                              DomainRouter.guest_ip.ilike(pattern, escape="\\")))
    ids, count = ctx.page(stmt.order_by(DomainRouter.created, DomainRouter.vm_number), args)
    return ListResult("router", router_views(ctx.db, ids), count)


@command("startRouter", "Starts a router.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the router"),
], response=ROUTER_FIELDS)
def start_router(ctx: CallContext, args: Args) -> Result:
    return _job(ctx, RT.JOB_START, _router(ctx, args))


@command("stopRouter", "Stops a router.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the router"),
    Param("forced", "boolean", description="Force stop the VM (vm is marked as Stopped even when command fails "
                                           "to be send to the backend, otherwise a force poweroff is attempted)."),
], response=ROUTER_FIELDS)
def stop_router(ctx: CallContext, args: Args) -> Result:
    return _job(ctx, RT.JOB_STOP, _router(ctx, args), {"forced": args.bool("forced")})


@command("rebootRouter", "Starts a router.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the router"),
    Param("forced", "boolean", description="Force reboot the router"),
], response=ROUTER_FIELDS)
def reboot_router(ctx: CallContext, args: Args) -> Result:
    router = _router(ctx, args)
    if router.state != RT.RUNNING:
        raise errors.param_error(f"Unable to reboot domR {router.name}, it is not in right state {router.state}")
    return _job(ctx, RT.JOB_REBOOT, router)


@command("destroyRouter", "Destroys a router.", isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the router"),
], response=ROUTER_FIELDS)
def destroy_router(ctx: CallContext, args: Args) -> Result:
    return _job(ctx, RT.JOB_DESTROY, _router(ctx, args))


@command("restartNetwork", "Restarts the network; includes 1) restarting network elements - virtual routers, "
         "DHCP servers 2) reapplying all public IPs 3) reapplying loadBalancing/portForwarding rules",
         admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the network to restart."),
    Param("cleanup", "boolean", description="If cleanup old network elements"),
], response=("success",))
def restart_network(ctx: CallContext, args: Args) -> Result:
    network = ctx.require(args, Network, "id")
    if network.removed is not None or not ctx.may_act_for(network.account_id):
        raise errors.entity_not_found("id", network.id)
    if network.state not in _RESTARTABLE:
        raise errors.param_error("Network is not in the right state to be restarted. Correct states are: "
                                 + ", ".join(_RESTARTABLE))
    if not N.needs_router(network):
        raise errors.param_error(f"Network {network.name} has no network elements to restart")
    cleanup = " with cleanup" if args.bool("cleanup") else ""
    ctx.event("NETWORK.RESTART", f"Restarting network {network.name}{cleanup}", resource_type="Network",
              resource_id=network.id)
    return submit_job(ctx, RT.JOB_RESTART_NETWORK, {"network_id": network.id, "cleanup": args.bool("cleanup")},
                      instance_type="Network", instance_id=network.id, object_key=f"Network:{network.id}")
