"""Host-level commands: the startup exchange, liveness, setup, stats and HA checks."""

from __future__ import annotations

import time

from hvcloud.agent.context import HostContext, HostIdentity
from hvcloud.agent.dispatch import handles
from hvcloud.agent.handlers.router import router_states
from hvcloud.hosttypes import HostNic
from hvcloud.hypervisor.driver import power_state_of
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer, WireModel
from hvcloud.wire.codec import WireError
from hvcloud.wire.startup import StartupRoutingCommand, StartupStorageCommand
from hvcloud.wire.to import StoragePoolInfo

HEARTBEAT_ALIVE_SECONDS = 180


def _mac_dotnet(mac: str) -> str:
    """.NET's ``PhysicalAddress.ToString()``: 12 upper-case hex digits, no separators."""
    return mac.replace(":", "").replace("-", "").upper()


def _primary_nic(nics: tuple[HostNic, ...], wanted_ip: str | None) -> HostNic | None:
    for n in nics:
        if wanted_ip and n.ip == wanted_ip:
            return n
    return nics[0] if nics else None


def startup(ctx: HostContext, objs: list[WireModel]) -> list[WireModel]:
    """Fill in the StartupRoutingCommand the server sent (reference §3.3) and append the local
    pool. Identity fields are echoed unchanged and remembered."""
    if not objs or not isinstance(objs[0], StartupRoutingCommand):
        raise WireError("the startup exchange must start with a StartupRoutingCommand")
    cmd = objs[0]
    info = ctx.driver.host_info()
    ctx.remember_identity(HostIdentity(guid=cmd.guid, zone=cmd.dataCenter, pod=cmd.pod, cluster=cmd.cluster,
                                       name=cmd.name, private_ip=cmd.privateIpAddress or ctx.address))
    nic = _primary_nic(info.nics, cmd.privateIpAddress)
    if nic is not None:
        mac = _mac_dotnet(nic.mac)
        cmd.privateNetmask = nic.netmask
        cmd.privateMacAddress = mac
        cmd.storageNetmask = nic.netmask
        cmd.storageMacAddress = mac
        cmd.gatewayIpAddress = mac  # the Hyper-V agent's documented quirk, kept for compatibility
        if not cmd.privateIpAddress:
            cmd.privateIpAddress = nic.ip
        if not cmd.storageIpAddress:
            cmd.storageIpAddress = nic.ip
    cmd.hypervisorVersion = info.hypervisor_version
    cmd.caps = "hvm"
    cmd.cpus = info.cpus
    cmd.cpuSockets = info.cpu_sockets
    cmd.speed = info.cpu_mhz
    cmd.memory = info.memory_bytes
    cmd.dom0MinMemory = info.dom0_min_memory_bytes
    details = dict(cmd.hostDetails or {})
    details["product_version"] = info.hypervisor_version
    details["hvcloud.driver"] = ctx.driver.name
    details["host.arch"] = info.arch
    if info.console_port is not None:
        # CloudStack's Hyper-V agent reports VMConnect's port here; the server keeps it per host
        details["rdp.server.port"] = info.console_port
    cmd.hostDetails = details
    if not cmd.hypervisorType:
        cmd.hypervisorType = info.hypervisor_type
    cmd.vms = {vm.name: {"state": vm.state.value, "host": cmd.privateIpAddress} for vm in ctx.driver.list_vms()}
    if ctx.routers is not None:
        cmd.vms.update({r.name: {"state": r.state, "host": cmd.privateIpAddress} for r in ctx.routers.routers()})
    out: list[WireModel] = [cmd]
    pool = ctx.driver.local_pool()
    if pool is not None:
        out.append(StartupStorageCommand(
            poolInfo=StoragePoolInfo(uuid=cmd.guid, host=cmd.privateIpAddress, localPath=pool.path,
                                     hostPath=pool.path, poolType="Filesystem",
                                     capacityBytes=pool.capacity_bytes, availableBytes=pool.available_bytes),
            guid=cmd.guid, dataCenter=cmd.dataCenter, resourceType="STORAGE_POOL", contextMap={},
        ))
    return out


def vm_state_report(ctx: HostContext) -> dict[str, str]:
    """Every VM on the host with its exact CloudStack PowerState name (reference §3.4)."""
    states = {vm.name: power_state_of(vm.state).value for vm in ctx.driver.list_vms()}
    states.update(router_states(ctx))
    return states


@handles(C.SetupCommand, A.SetupAnswer, blocking=False)
def setup(ctx: HostContext, cmd: C.SetupCommand) -> Answer:
    return A.SetupAnswer(details="success - NOP")


@handles(C.ReadyCommand, A.ReadyAnswer, blocking=False)
def ready(ctx: HostContext, cmd: C.ReadyCommand) -> Answer:
    return A.ReadyAnswer()


@handles(C.CheckHealthCommand, A.CheckHealthAnswer, blocking=False)
def check_health(ctx: HostContext, cmd: C.CheckHealthCommand) -> Answer:
    return A.CheckHealthAnswer(details="resource is alive")


@handles(C.MaintainCommand, A.MaintainAnswer, blocking=False)
def maintain(ctx: HostContext, cmd: C.MaintainCommand) -> Answer:
    return A.MaintainAnswer(details="success - NOP for MaintainCommand")


@handles(C.PingCommand, Answer, blocking=False)
def ping(ctx: HostContext, cmd: C.PingCommand) -> Answer:
    return Answer(details="success - NOP for PingCommand")


@handles(C.PingRoutingCommand, Answer, blocking=False)
def ping_routing(ctx: HostContext, cmd: C.PingRoutingCommand) -> Answer:
    return Answer(details="success - NOP for PingRoutingCommand")


@handles(C.CheckNetworkCommand, A.CheckNetworkAnswer, blocking=False)
def check_network(ctx: HostContext, cmd: C.CheckNetworkCommand) -> Answer:
    return A.CheckNetworkAnswer()


@handles(C.CheckSshCommand, A.CheckSshAnswer, blocking=False)
def check_ssh(ctx: HostContext, cmd: C.CheckSshCommand) -> Answer:
    return A.CheckSshAnswer()


@handles(C.CleanupNetworkRulesCmd, Answer, blocking=False)
def cleanup_network_rules(ctx: HostContext, cmd: C.CleanupNetworkRulesCmd) -> Answer:
    return Answer(result=False, details="nothing to cleanup")


@handles(C.PrepareForMigrationCommand, A.PrepareForMigrationAnswer, blocking=False)
def prepare_for_migration(ctx: HostContext, cmd: C.PrepareForMigrationCommand) -> Answer:
    return A.PrepareForMigrationAnswer(details="NOP - success")


@handles(C.GetHostStatsCommand, A.GetHostStatsAnswer)
def host_stats(ctx: HostContext, cmd: C.GetHostStatsCommand) -> Answer:
    s = ctx.driver.host_stats()
    return A.GetHostStatsAnswer(hostStats=A.HostStatsEntry(
        hostId=cmd.hostId, cpuUtilization=s.cpu_utilization, networkReadKBs=s.network_read_kb,
        networkWriteKBs=s.network_write_kb, totalMemoryKBs=s.total_memory_kb, freeMemoryKBs=s.free_memory_kb))


@handles(C.CheckOnHostCommand, A.CheckOnHostAnswer)
def check_on_host(ctx: HostContext, cmd: C.CheckOnHostCommand) -> Answer:
    """``result:true`` means the queried host is **dead** (CloudStack's inverted semantics)."""
    ip = cmd.host.privateNetwork.ip if cmd.host.privateNetwork else None
    if not ip:
        return A.CheckOnHostAnswer(result=False, details="CheckOnHostCommand failed: the host has no private IP")
    now = time.time()
    newest: float | None = None
    for pool in list(ctx.pools.values()):
        try:
            seen = ctx.storage.read_heartbeat(pool, ip)
        except Exception:
            continue
        if seen is not None and (newest is None or seen > newest):
            newest = seen
    if newest is not None and now - newest < HEARTBEAT_ALIVE_SECONDS:
        return A.CheckOnHostAnswer(result=False, details="host is alive")
    return A.CheckOnHostAnswer(result=True, details="host is not alive")
