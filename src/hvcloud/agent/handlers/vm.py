"""VM commands: start, stop, reboot, state, stats and migration (consoles: :mod:`.console`)."""

from __future__ import annotations

from hvcloud.agent import router_translate, translate
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import handles
from hvcloud.agent.handlers import router
from hvcloud.hypervisor.driver import DriverError, InvalidVmState, VmNotFound, VmSpec, VmState, power_state_of
from hvcloud.wire import answers as A
from hvcloud.wire import commands as C
from hvcloud.wire.base import Answer

_RUNNING_LIKE = {VmState.RUNNING, VmState.STARTING, VmState.PAUSED, VmState.RESUMING, VmState.PAUSING}


def _same_definition(a: VmSpec, b: VmSpec) -> bool:
    return (a.vcpus, a.memory_mib, a.disks, a.nics) == (b.vcpus, b.memory_mib, b.disks, b.nics)


@handles(C.StartCommand, A.StartAnswer, vm=lambda c: c.vm.name)
def start(ctx: HostContext, cmd: C.StartCommand) -> Answer:
    """Define and start the VM (reference §4). A VM of that name that already runs with the same
    definition is success; a stopped leftover definition is replaced; the disks are never touched.
    A ``DomainRouter`` starts on the host's router runtime instead."""
    if router_translate.is_router(cmd.vm):
        return router.start_router(ctx, cmd)
    spec = translate.vm_spec(cmd.vm, ctx.storage)
    driver = ctx.driver
    try:
        current = driver.get_vm(spec.name)
    except VmNotFound:
        current = None
    if current is not None:
        if current.state in _RUNNING_LIKE:
            if _same_definition(current.spec, spec):
                if current.state == VmState.PAUSED:
                    driver.resume_vm(spec.name)
                return A.StartAnswer(vm=cmd.vm, details="VM is already running")
            return A.StartAnswer(vm=cmd.vm, result=False,
                                 details=f"StartCommand failed: VM {spec.name} is already running with another "
                                         "definition")
        driver.undefine_vm(spec.name)
    driver.define_vm(spec)
    try:
        driver.start_vm(spec.name)
    except DriverError:
        driver.undefine_vm(spec.name)
        raise
    return A.StartAnswer(vm=cmd.vm)


@handles(C.StopCommand, A.StopAnswer, vm=lambda c: c.vmName)
def stop(ctx: HostContext, cmd: C.StopCommand) -> Answer:
    """Stop and remove the definition, keeping disks. A missing VM is already stopped. A router
    stops (or, with ``expungeVM``, is destroyed) on the router runtime."""
    if router.is_router_name(ctx, cmd.vmName):
        return router.stop_router(ctx, cmd)
    try:
        current = ctx.driver.get_vm(cmd.vmName)
    except VmNotFound:
        return A.StopAnswer(vm=cmd.vm, details=f"VM {cmd.vmName} is not on this host")
    if cmd.checkBeforeCleanup and current.state in _RUNNING_LIKE:
        return A.StopAnswer(vm=cmd.vm, result=False, details=f"VM {cmd.vmName} is still running on this host")
    if current.state != VmState.STOPPED:
        timeout = float(cmd.wait) if cmd.wait and cmd.wait > 0 else ctx.stop_timeout
        ctx.driver.stop_vm(cmd.vmName, timeout=min(timeout, ctx.stop_timeout), force=bool(cmd.forceStop))
    ctx.driver.undefine_vm(cmd.vmName)
    return A.StopAnswer(vm=cmd.vm)


@handles(C.RebootCommand, A.RebootAnswer, vm=lambda c: c.vmName)
def reboot(ctx: HostContext, cmd: C.RebootCommand) -> Answer:
    status = router.router_status(ctx, cmd.vmName)
    if status is not None:
        return router.reboot_router(ctx, status)
    ctx.driver.reboot_vm(cmd.vmName)
    return A.RebootAnswer()


@handles(C.CheckVirtualMachineCommand, A.CheckVirtualMachineAnswer)
def check_vm(ctx: HostContext, cmd: C.CheckVirtualMachineCommand) -> Answer:
    status = router.router_status(ctx, cmd.vmName)
    if status is not None:
        return A.CheckVirtualMachineAnswer(state=router.router_power_state(status),
                                           details=f"router {status.name} is {status.state}")
    try:
        info = ctx.driver.get_vm(cmd.vmName)
    except VmNotFound:
        return A.CheckVirtualMachineAnswer(state="PowerOff", details=f"VM {cmd.vmName} is not on this host")
    port = None
    if info.state == VmState.RUNNING:
        try:
            endpoint = ctx.driver.console(cmd.vmName)
            port = endpoint.port if endpoint.protocol == "vnc" else None
        except DriverError:
            port = None
    return A.CheckVirtualMachineAnswer(state=power_state_of(info.state).value, vncPort=port)


@handles(C.GetVmStatsCommand, A.GetVmStatsAnswer)
def vm_stats(ctx: HostContext, cmd: C.GetVmStatsCommand) -> Answer:
    stats = ctx.driver.vm_stats(cmd.vmNames)
    return A.GetVmStatsAnswer(vmStatsMap={
        name: A.VmStatsEntry(cpuUtilization=s.cpu_utilization, networkReadKBs=s.network_read_kb,
                             networkWriteKBs=s.network_write_kb, diskReadKBs=s.disk_read_kb,
                             diskWriteKBs=s.disk_write_kb, diskReadIOs=s.disk_read_iops,
                             diskWriteIOs=s.disk_write_iops, memoryKBs=s.memory_kb, numCPUs=s.num_cpus)
        for name, s in stats.items()})


@handles(C.MigrateCommand, A.MigrateAnswer, vm=lambda c: c.vmName)
def migrate(ctx: HostContext, cmd: C.MigrateCommand) -> Answer:
    info = ctx.driver.get_vm(cmd.vmName)
    if info.state not in _RUNNING_LIKE:
        raise InvalidVmState(f"VM {cmd.vmName} is {info.state.value}; only running VMs migrate")
    ctx.driver.migrate_vm(cmd.vmName, cmd.destIp, live=True)
    return A.MigrateAnswer()


@handles(C.MigrateWithStorageCommand, A.MigrateWithStorageAnswer, vm=lambda c: c.vm.name)
def migrate_with_storage(ctx: HostContext, cmd: C.MigrateWithStorageCommand) -> Answer:
    if not cmd.tgtHost:
        raise translate.TranslationError("MigrateWithStorageCommand needs tgtHost")
    name = cmd.vm.name or ""
    info = ctx.driver.get_vm(name)
    if info.state not in _RUNNING_LIKE:
        raise InvalidVmState(f"VM {name} is {info.state.value}; only running VMs migrate")
    ctx.driver.migrate_vm(name, cmd.tgtHost, with_storage=True, live=True)
    return A.MigrateWithStorageAnswer(volumeTos=[p.t for p in cmd.volumeToFilerAsList or [] if p.t is not None])
