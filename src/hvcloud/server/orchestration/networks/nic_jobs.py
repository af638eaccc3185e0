"""The NIC jobs: addNicToVirtualMachine, removeNicFromVirtualMachine, updateDefaultNicForVirtualMachine.

The API writes what it can check at once (the new NIC with its address, in the request's
transaction, so that a bad address is refused before any job and two requests cannot take one
address); the job does the host's part. A running VM's NIC is hot-plugged with ``PlugNicCommand`` and
unplugged with ``UnPlugNicCommand``; a stopped VM's NIC is only a row (its next StartCommand carries
it). Jobs on one VM run in order (``VirtualMachine:<id>``) and each is resumable: a rerun after a crash
reads the rows again and repeats only what is not recorded (plugging is idempotent on the agent).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hvcloud import logs
from hvcloud.server.db.models import Host, Nic, VMInstance
from hvcloud.server.errors import INTERNAL_ERROR, PARAM_ERROR
from hvcloud.server.jobs.handlers import JobContext, JobFailure, register
from hvcloud.server.orchestration.networks import nics, routing, sg_sync
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.wire import commands as C
from hvcloud.wire.to import NicTO

log = logs.get(__name__)

JOB_ADD_NIC = "vm.nic.add"
JOB_REMOVE_NIC = "vm.nic.remove"
JOB_DEFAULT_NIC = "vm.nic.default"


def _steps(jctx: JobContext) -> Steps:
    return Steps(jctx.sessions, jctx.agents, jctx.state.box)


def _result(jctx: JobContext, vm_id: str) -> dict[str, Any]:
    from hvcloud.server.views.vms import vm_view

    with jctx.sessions() as db:
        vm = db.get(VMInstance, vm_id)
        if vm is None:
            raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
        return {"virtualmachine": vm_view(db, vm)}


def _rows(db: Session, vm_id: str, nic_id: str) -> tuple[VMInstance, Nic | None]:
    vm = db.get(VMInstance, vm_id)
    if vm is None or vm.removed is not None:
        raise JobFailure(PARAM_ERROR, f"VM {vm_id} does not exist")
    nic = db.get(Nic, nic_id)
    if nic is None or nic.vm_id != vm.id or nic.removed is not None:
        return vm, None
    return vm, nic


def _host_of_running(db: Session, vm: VMInstance) -> Host | None:
    if vm.state != S.RUNNING or vm.host_id is None:
        return None
    return db.get(Host, vm.host_id)


def plug_target(db: Session, vm_id: str, nic_id: str) -> tuple[str | None, str]:
    """The host to hot-plug the NIC on (None: the VM does not run, or the NIC is gone) and the VM's
    instance name."""
    vm, nic = _rows(db, vm_id, nic_id)
    host = _host_of_running(db, vm) if nic is not None else None
    return (host.id if host is not None else None), vm.instance_name


def nic_to_send(db: Session, vm_id: str, nic_id: str) -> NicTO | None:
    """The NIC as the host's plug/unplug command carries it (read after its network is implemented)."""
    vm, nic = _rows(db, vm_id, nic_id)
    if nic is None:
        return None
    host = _host_of_running(db, vm)
    return nics.nic_to(db, vm, nic, host.hypervisor if host is not None else None)


def drop_nic(db: Session, vm_id: str, nic_id: str) -> None:
    """An added NIC the host did not take: it goes, and its address with it."""
    _, nic = _rows(db, vm_id, nic_id)
    if nic is not None:
        nics.remove_nic(nic)


async def run_add_nic(jctx: JobContext) -> dict[str, Any]:
    vm_id, nic_id = str(jctx.params["vm_id"]), str(jctx.params["nic_id"])
    steps = _steps(jctx)
    host_id, name = await steps.tx(plug_target, vm_id, nic_id)
    if host_id is not None:
        try:
            # the NIC's network may not be implemented yet: its segment and router come first
            await routing.prepare_vm_start(steps, vm_id, host_id)
            to = await steps.tx(nic_to_send, vm_id, nic_id)
            if to is not None:
                if to.broadcastUri is None:
                    raise StepFailed(f"the network of NIC {nic_id} is not implemented (it has no segment id yet)",
                                     host_fault=False)
                await steps.send(host_id, C.PlugNicCommand(nic=to, instanceName=name, vmType="User"),
                                 f"plugging NIC {nic_id} into VM {name}")
        except StepFailed as exc:
            log.warning("nic_plug_failed", vm=name, nic=nic_id, reason=exc.text)
            await steps.tx(drop_nic, vm_id, nic_id)
            await routing.withdraw_vm(steps, vm_id, [nic_id])
            raise JobFailure(INTERNAL_ERROR, f"Unable to add NIC to VM {name}: {exc.text}") from None
        try:  # a NIC on a security-group network gets the VM's rules (its address joins its groups' too)
            await sg_sync.vm_changed(steps, vm_id, host_id)
        except StepFailed as exc:
            log.warning("nic_security_groups_failed", vm=name, nic=nic_id, reason=exc.text[:300])
    log.info("nic_added", vm=name, nic=nic_id, plugged=host_id is not None)
    return _result(jctx, vm_id)


async def rollback_add_nic(jctx: JobContext) -> None:
    """An add abandoned after interruptions: the NIC goes (unplugged if the VM runs, best effort)."""
    vm_id, nic_id = str(jctx.params["vm_id"]), str(jctx.params["nic_id"])
    steps = _steps(jctx)
    host_id, name = await steps.tx(plug_target, vm_id, nic_id)
    if host_id is not None:
        to = await steps.tx(nic_to_send, vm_id, nic_id)
        if to is not None:
            try:
                await steps.send(host_id, C.UnPlugNicCommand(nic=to, instanceName=name),
                                 f"unplugging NIC {nic_id} from VM {name}")
            except StepFailed as exc:
                log.warning("nic_rollback_unplug_failed", vm=name, nic=nic_id, reason=exc.text)
    await steps.tx(drop_nic, vm_id, nic_id)
    await routing.withdraw_vm(steps, vm_id, [nic_id])


def unplug_target(db: Session, vm_id: str, nic_id: str) -> tuple[bool, str | None, str]:
    """Whether the NIC is still there (a rerun may find it gone), the host to unplug it on, and the
    VM's instance name; the removal's rules checked again (another job may have changed the NICs)."""
    vm, nic = _rows(db, vm_id, nic_id)
    if nic is None:
        return False, None, vm.instance_name
    nics.check_removable(db, vm, nic)
    host = _host_of_running(db, vm)
    return True, (host.id if host is not None else None), vm.instance_name


def removed(db: Session, vm_id: str, nic_id: str) -> None:
    _, nic = _rows(db, vm_id, nic_id)
    if nic is not None:
        nics.remove_nic(nic)


async def run_remove_nic(jctx: JobContext) -> dict[str, Any]:
    vm_id, nic_id = str(jctx.params["vm_id"]), str(jctx.params["nic_id"])
    steps = _steps(jctx)
    present, host_id, name = await steps.tx(unplug_target, vm_id, nic_id)
    if present:
        if host_id is not None:
            to = await steps.tx(nic_to_send, vm_id, nic_id)
            if to is not None:
                try:
                    await steps.send(host_id, C.UnPlugNicCommand(nic=to, instanceName=name),
                                     f"unplugging NIC {nic_id} from VM {name}")
                except StepFailed as exc:
                    raise JobFailure(INTERNAL_ERROR, f"Unable to remove NIC {nic_id} from VM {name}: "
                                                     f"{exc.text}") from None
        await steps.tx(removed, vm_id, nic_id)
    await routing.withdraw_vm(steps, vm_id, [nic_id])
    log.info("nic_removed", vm=name, nic=nic_id, unplugged=host_id is not None)
    return _result(jctx, vm_id)


def set_default(db: Session, vm_id: str, nic_id: str) -> None:
    vm, nic = _rows(db, vm_id, nic_id)
    if nic is None:
        raise JobFailure(PARAM_ERROR, f"NIC {nic_id} is no longer a NIC of VM {vm.instance_name}")
    nics.make_default(db, vm, nic)


async def run_default_nic(jctx: JobContext) -> dict[str, Any]:
    vm_id, nic_id = str(jctx.params["vm_id"]), str(jctx.params["nic_id"])
    steps = _steps(jctx)
    await steps.tx(set_default, vm_id, nic_id)
    # the routers hand out the default route and DNS by the default NIC: publish the VM again
    await routing.refresh_vm_data(steps, vm_id)
    return _result(jctx, vm_id)


register(JOB_ADD_NIC, run_add_nic, resumable=True, rollback=rollback_add_nic)
register(JOB_REMOVE_NIC, run_remove_nic, resumable=True)
register(JOB_DEFAULT_NIC, run_default_nic, resumable=True)
