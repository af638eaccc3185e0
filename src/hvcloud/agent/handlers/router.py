"""Virtual-router commands (``com.cloud.agent.api.routing.*``) and the router side of the VM
commands: a ``StartCommand`` of a ``DomainRouter`` starts a router on this host's
:class:`~hvcloud.router.api.RouterHost`, and stop, reboot and state checks of a name that is a
router reach it too (the VM handlers ask :func:`is_router_name` first).

Every routing command names its router in ``accessDetails["router.name"]``. A host without a
router runtime (``HostContext.routers`` None) answers every one of them ``result:false``.
"""

from __future__ import annotations

from hvcloud import logs
from hvcloud.agent import router_translate as RT
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.host_errors import HostError
from hvcloud.router.api import InvalidRouterRequest, RouterHost, RouterNotFound, RouterStatus
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer
from hvcloud.wire.routing import (
    DhcpEntryCommand,
    DnsMasqConfigCommand,
    IpAssocAnswer,
    IpAssocCommand,
    NetworkElementCommand,
    SavePasswordCommand,
    VmDataCommand,
)

log = logs.get(__name__)

NO_ROUTERS = "this host does not run virtual routers (Hyper-V hosts get a router system VM in a later issue)"
NO_PUBLIC_IPS = ("public addresses (source NAT, static NAT, port forwarding) arrive with part 2 of guest "
                 "networks (issue #16); this router serves its guest network only")


class NoRouters(HostError):
    """This host has no router runtime."""

    def __init__(self) -> None:
        super().__init__(NO_ROUTERS)


def routers_of(ctx: HostContext) -> RouterHost:
    if ctx.routers is None:
        raise NoRouters()
    return ctx.routers


def _lock_name(cmd: NetworkElementCommand) -> str | None:
    """Routing commands for one router run one at a time, and never beside its start or stop."""
    name = cmd.router_name()
    return name if isinstance(name, str) else None


def router_status(ctx: HostContext, name: str | None) -> RouterStatus | None:
    """The router of that name on this host, or None when it is not one (or the host runs none)."""
    if ctx.routers is None or not name:
        return None
    try:
        return ctx.routers.status(name)
    except (RouterNotFound, InvalidRouterRequest):
        return None


def is_router_name(ctx: HostContext, name: str | None) -> bool:
    return router_status(ctx, name) is not None


# --------------------------------------------------------------------------- routing commands


@handles(DhcpEntryCommand, Answer, vm=_lock_name)
def dhcp_entry(ctx: HostContext, cmd: DhcpEntryCommand) -> Answer:
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    entry = RT.dhcp_entry(cmd)
    routers.dhcp_entry(name, entry, remove=bool(cmd.remove))
    verb = "removed" if cmd.remove else "set"
    return Answer(details=f"DHCP entry {entry.mac} {entry.ip} {entry.hostname} {verb} on {name}")


@handles(VmDataCommand, Answer, vm=_lock_name)
def vm_data(ctx: HostContext, cmd: VmDataCommand) -> Answer:
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    ip = RT.ipv4(cmd.vmIpAddress, "the VM's address")
    data = RT.vm_data(cmd)
    routers.vm_data(name, ip, data)
    return Answer(details=f"{len(data)} VM data entries for {ip} on {name}")


@handles(SavePasswordCommand, Answer, vm=_lock_name)
def save_password(ctx: HostContext, cmd: SavePasswordCommand) -> Answer:
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    ip = RT.ipv4(cmd.vmIpAddress, "the VM's address")
    routers.save_password(name, ip, RT.password(cmd.password))
    return Answer(details=f"password for {ip} saved on {name}")


@handles(DnsMasqConfigCommand, Answer, vm=_lock_name)
def dnsmasq_config(ctx: HostContext, cmd: DnsMasqConfigCommand) -> Answer:
    """The router's DHCP subnet comes with its start; this checks that CloudStack and the router
    agree on it and changes nothing."""
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    spec = routers.status(name).spec
    subnets = RT.dhcp_subnets(cmd.dhcpTOs or [])
    for address, prefix in subnets:
        if (address, prefix) != (spec.address, spec.prefix):
            return Answer(result=False, details=(
                f"DnsMasqConfigCommand failed: router {name} serves {spec.address}/{spec.prefix}, not "
                f"{address}/{prefix} (one subnet per router; more arrive with VPCs)"))
    return Answer(details=f"router {name} serves {spec.address}/{spec.prefix}")


@handles(IpAssocCommand, IpAssocAnswer, blocking=False)
def ip_assoc(ctx: HostContext, cmd: IpAssocCommand) -> Answer:
    """Refused honestly: each address is reported ``Failed``."""
    addresses = cmd.ipAddresses or []
    return IpAssocAnswer(result=False, results=["Failed"] * len(addresses),
                         details=f"IpAssocCommand failed: {NO_PUBLIC_IPS}")


# --------------------------------------------------------------------------- router lifecycle


def start_router(ctx: HostContext, cmd: C.StartCommand) -> Answer:
    routers = routers_of(ctx)
    spec = RT.router_spec(cmd.vm, ctx.default_trunk)
    status = routers.start(spec)
    log.info("router_started", router=spec.name, state=status.state, address=f"{spec.address}/{spec.prefix}",
             vlan=spec.segment.vlan, vxlan=spec.segment.vxlan, trunk=spec.segment.trunk)
    return A.StartAnswer(vm=cmd.vm, details=f"router {spec.name} is {status.state}")


def stop_router(ctx: HostContext, cmd: C.StopCommand) -> Answer:
    routers = routers_of(ctx)
    if cmd.expungeVM:
        routers.destroy(cmd.vmName)
        return A.StopAnswer(vm=cmd.vm, details=f"router {cmd.vmName} destroyed")
    routers.stop(cmd.vmName)
    return A.StopAnswer(vm=cmd.vm, details=f"router {cmd.vmName} stopped")


def reboot_router(ctx: HostContext, status: RouterStatus) -> Answer:
    routers = routers_of(ctx)
    routers.stop(status.name)
    routers.start(status.spec)
    return A.RebootAnswer(details=f"router {status.name} restarted")


def router_power_state(status: RouterStatus) -> str:
    return "PowerOn" if status.state == "Running" else "PowerOff"


def router_states(ctx: HostContext) -> dict[str, str]:
    """Every router of the host by its CloudStack power state, for the VM state reports."""
    if ctx.routers is None:
        return {}
    return {r.name: router_power_state(r) for r in ctx.routers.routers()}


def recover_routers(ctx: HostContext) -> list[str]:
    """After an agent start: the runtime brings back what was running; failures are logged, the
    agent serves anyway (the management server restarts a router it finds stopped)."""
    if ctx.routers is None:
        return []
    try:
        names = ctx.routers.recover()
    except HostError as exc:
        log.error("router_recovery_failed", host=ctx.address, error=str(exc))
        return []
    if names:
        log.info("routers_recovered", host=ctx.address, count=len(names), routers=names[:50])
    return names
