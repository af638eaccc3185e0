"""Virtual-router commands (``com.cloud.agent.api.routing.*``) and the router side of the VM
commands: a ``StartCommand`` of a ``DomainRouter`` starts a router on this host's
:class:`~hvcloud.router.api.RouterHost`, and stop, reboot and state checks of a name that is a
router reach it too (the VM handlers ask :func:`is_router_name` first).

Every routing command names its router in ``accessDetails["router.name"]``. A host without a
router runtime (``HostContext.routers`` None) answers every one of them ``result:false``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from hvcloud import logs
from hvcloud.agent import router_translate as RT
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.host_errors import HostError
from hvcloud.router.api import InvalidRouterRequest, RouterHost, RouterNotFound, RouterStatus, RuleChange
from hvcloud.router.public import combine
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer
from hvcloud.wire.routing import (
    AGGREGATION_CLEANUP,
    AGGREGATION_FINISH,
    AGGREGATION_START,
    AggregationControlCommand,
    DhcpEntryCommand,
    DnsMasqConfigCommand,
    IpAssocAnswer,
    IpAssocCommand,
    LoadBalancerConfigCommand,
    NetworkElementCommand,
    SavePasswordCommand,
    SetFirewallRulesAnswer,
    SetFirewallRulesCommand,
    SetPortForwardingRulesAnswer,
    SetPortForwardingRulesCommand,
    SetSourceNatCommand,
    SetStaticNatRulesAnswer,
    SetStaticNatRulesCommand,
    VmDataCommand,
)

log = logs.get(__name__)

NO_ROUTERS = "this host does not run virtual routers (Hyper-V hosts get a router system VM in a later issue)"

#: a router's public interface is made by its first public address (IpAssocCommand), so a NIC is
#: never plugged into a router (issue #16 built the public side this way)
NO_PUBLIC_IPS = ("a router's public interface (eth1) comes with its first public address (IpAssocCommand); "
                 "NICs are not plugged into routers (issue #16)")


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


# --------------------------------------------------------------------------- the public side


class _Batches:
    """``AggregationControlCommand``: between ``Start`` and ``Finish`` a router's rule changes are
    queued (and answered as queued); ``Finish`` applies them as ONE change, ``Cleanup`` drops them.
    Kept per host context (one agent serves one host). A batch left open longer than
    :data:`BATCH_TTL` seconds (a management server that died between Start and Finish) is dropped,
    so the router's later changes are applied rather than queued for ever."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: weakref.WeakKeyDictionary[HostContext, dict[str, tuple[float, RuleChange]]] = \
            weakref.WeakKeyDictionary()

    def start(self, ctx: HostContext, name: str) -> None:
        with self._lock:
            self._queues.setdefault(ctx, {})[name] = (time.monotonic(), RuleChange())

    def queue(self, ctx: HostContext, name: str, change: RuleChange) -> bool:
        """Queue ``change`` when a batch is open for the router; False: apply it now."""
        with self._lock:
            queues = self._queues.get(ctx, {})
            if name not in queues:
                return False
            started, queued = queues[name]
            if time.monotonic() - started > BATCH_TTL:
                del queues[name]
                log.warning("router_batch_expired", router=name, seconds=BATCH_TTL)
                return False
            queues[name] = (started, combine(queued, change))
            return True

    def take(self, ctx: HostContext, name: str) -> RuleChange | None:
        with self._lock:
            item = self._queues.get(ctx, {}).pop(name, None)
        if item is None:
            return None
        if time.monotonic() - item[0] > BATCH_TTL:
            log.warning("router_batch_expired", router=name, seconds=BATCH_TTL)
            return None
        return item[1]


#: how long an aggregation may stay open (CloudStack sends Finish right after the batch)
BATCH_TTL = 300.0
BATCHES = _Batches()


def _apply(ctx: HostContext, cmd: NetworkElementCommand, change: RuleChange) -> str:
    """Apply (or queue) ``change`` on the command's router; the words for the answer's details."""
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    routers.status(name)  # RouterNotFound before anything is queued
    if BATCHES.queue(ctx, name, change):
        return f"queued on {name} until the aggregation finishes"
    state = routers.apply(name, change)
    return (f"{name} holds {len(state.addresses)} public addresses, {len(state.port_forwards)} port forwards, "
            f"{len(state.static_nats)} static NATs, {len(state.firewall)} firewall rules, "
            f"{len(state.load_balancers)} load balancers")


def _per_rule(ctx: HostContext, cmd: NetworkElementCommand, rules: list[Any], ids: list[str],
              translate: Callable[[], RuleChange], answer: Callable[..., Answer]) -> Answer:
    """Translate and apply a Set*RulesCommand; ``results`` one entry per rule in the command's
    order: the rule's id when applied, ``"Failed"`` when not (all or nothing: one change)."""
    try:
        change = translate()
        details = _apply(ctx, cmd, change)
    except HostError as exc:
        return answer(result=False, results=["Failed"] * len(rules),
                      details=f"{type(cmd).__name__} failed: {exc}")
    return answer(result=True, results=ids, details=details)


def _public_trunk(ctx: HostContext, cmd: NetworkElementCommand) -> str | None:
    """Where a public address without a traffic label (``networkName``) goes: the host's default
    trunk, else the trunk of the router's guest segment (public ranges are usually untagged on it)."""
    if ctx.default_trunk:
        return ctx.default_trunk
    try:
        return routers_of(ctx).status(RT.target_router(cmd)).spec.segment.trunk
    except HostError:
        return None


@handles(IpAssocCommand, IpAssocAnswer, vm=_lock_name)
def ip_assoc(ctx: HostContext, cmd: IpAssocCommand) -> Answer:
    """Each address's result is the address, or ``"Failed"`` (all of them: one change)."""
    addresses = cmd.ipAddresses or []
    try:
        details = _apply(ctx, cmd, RT.ip_assoc(cmd, _public_trunk(ctx, cmd)))
    except HostError as exc:
        return IpAssocAnswer(result=False, results=["Failed"] * len(addresses),
                             details=f"IpAssocCommand failed: {exc}")
    return IpAssocAnswer(result=True, results=[a.publicIp or "" for a in addresses], details=details)


@handles(SetSourceNatCommand, Answer, vm=_lock_name)
def set_source_nat(ctx: HostContext, cmd: SetSourceNatCommand) -> Answer:
    return Answer(details=_apply(ctx, cmd, RT.source_nat(cmd, _public_trunk(ctx, cmd))))


def _ids(rules: list[Any]) -> list[str]:
    return [str(r.id) if r.id is not None else "" for r in rules]


@handles(SetPortForwardingRulesCommand, SetPortForwardingRulesAnswer, vm=_lock_name)
def set_port_forwards(ctx: HostContext, cmd: SetPortForwardingRulesCommand) -> Answer:
    rules = list(cmd.rules or [])
    return _per_rule(ctx, cmd, rules, _ids(rules), lambda: RT.port_forwards(cmd), SetPortForwardingRulesAnswer)


@handles(SetStaticNatRulesCommand, SetStaticNatRulesAnswer, vm=_lock_name)
def set_static_nats(ctx: HostContext, cmd: SetStaticNatRulesCommand) -> Answer:
    rules = list(cmd.rules or [])
    return _per_rule(ctx, cmd, rules, [r.srcIp or "" for r in rules], lambda: RT.static_nats(cmd),
                     SetStaticNatRulesAnswer)


@handles(SetFirewallRulesCommand, SetFirewallRulesAnswer, vm=_lock_name)
def set_firewall_rules(ctx: HostContext, cmd: SetFirewallRulesCommand) -> Answer:
    rules = list(cmd.rules or [])
    return _per_rule(ctx, cmd, rules, _ids(rules), lambda: RT.firewall_rules(cmd), SetFirewallRulesAnswer)


@handles(LoadBalancerConfigCommand, Answer, vm=_lock_name)
def load_balancer_config(ctx: HostContext, cmd: LoadBalancerConfigCommand) -> Answer:
    return Answer(details=_apply(ctx, cmd, RT.load_balancers(cmd)))


@handles(AggregationControlCommand, Answer, vm=_lock_name)
def aggregation_control(ctx: HostContext, cmd: AggregationControlCommand) -> Answer:
    routers = routers_of(ctx)
    name = RT.target_router(cmd)
    action = (cmd.action or "").strip()
    if action == AGGREGATION_START:
        routers.status(name)
        BATCHES.start(ctx, name)
        return Answer(details=f"aggregation started on {name}")
    if action == AGGREGATION_CLEANUP:
        BATCHES.take(ctx, name)
        return Answer(details=f"aggregation on {name} dropped")
    if action == AGGREGATION_FINISH:
        change = BATCHES.take(ctx, name)
        if change is None:
            return Answer(result=False, details=f"AggregationControlCommand failed: no aggregation open on {name} "
                          f"(never started, cleaned up, or older than {BATCH_TTL:.0f} s)")
        state = routers.apply(name, change)
        return Answer(details=f"aggregation applied on {name} as one change ({len(state.firewall)} firewall rules, "
                      f"{len(state.port_forwards)} port forwards)")
    return Answer(result=False, details=f"AggregationControlCommand failed: action {action[:32]!r} is not "
                  f"{AGGREGATION_START}, {AGGREGATION_FINISH} or {AGGREGATION_CLEANUP}")


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
