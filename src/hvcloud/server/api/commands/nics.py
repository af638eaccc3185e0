"""A VM's NICs: listNics, addNicToVirtualMachine, removeNicFromVirtualMachine,
updateDefaultNicForVirtualMachine.

The request checks and writes the rows it can (a new NIC with its address, in its own transaction);
:mod:`hvcloud.server.orchestration.networks.nic_jobs` hot-plugs or unplugs on a running VM's host.
"""

from __future__ import annotations

from sqlalchemy import func, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.commands.vms import VM_FIELDS, owned_vm
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.db.models import Account, Nic, VMInstance
from hvcloud.server.orchestration.networks import nic_jobs, nics
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.vms import nic_views

command = REGISTRY.command

NIC_FIELDS = ("id", "networkid", "networkname", "netmask", "gateway", "ipaddress", "isolationuri", "broadcasturi",
              "traffictype", "type", "isdefault", "macaddress", "deviceid", "virtualmachineid")
#: the VM states in which CloudStack changes a VM's NICs
_NIC_STATES = (S.RUNNING, S.STOPPED)


def _vm_for_nics(ctx: CallContext, args: Args, operation: str) -> VMInstance:
    vm = owned_vm(ctx, args, "virtualmachineid")
    if vm.state not in _NIC_STATES:
        raise errors.param_error(f"Unable to {operation} VM {vm.instance_name}: it is {vm.state}, not Running or "
                                 "Stopped")
    return vm


def _nic_of(ctx: CallContext, args: Args, vm: VMInstance) -> Nic:
    nic = ctx.require(args, Nic, "nicid")
    if nic.vm_id != vm.id or nic.removed is not None:
        raise errors.entity_not_found("nicid", nic.id)
    return nic


def _job(ctx: CallContext, handler: str, vm: VMInstance, nic: Nic) -> Result:
    return submit_job(ctx, handler, {"vm_id": vm.id, "nic_id": nic.id}, instance_type="VirtualMachine",
                      instance_id=vm.id)


@command("listNics", "list the vm nics  IP to NIC", admin=False, params=[
    Param("virtualmachineid", "uuid", required=True, description="the ID of the vm"),
    Param("nicid", "uuid", description="the ID of the nic to list IPs"),
    Param("networkid", "uuid", description="list nic of the specific vm's network"),
], response=NIC_FIELDS)
def list_nics(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args, "virtualmachineid")
    conditions = [Nic.vm_id == vm.id]
    for param, column in (("nicid", Nic.id), ("networkid", Nic.network_id)):
        value = args.opt_str(param)
        if value is not None:
            conditions.append(column == value)
    stmt = select(Nic.id).where(Nic.removed.is_(None), *conditions).order_by(Nic.device_id)
    ids, count = ctx.page(stmt, args)
    views = {v["id"]: v for v in nic_views(ctx.db, Nic.id.in_(ids))} if ids else {}
    return ListResult("nic", [views[i] for i in ids if i in views], count)


@command("addNicToVirtualMachine", "Adds VM to specified network by creating a NIC", admin=False, isasync=True,
         params=[
    Param("virtualmachineid", "uuid", required=True, description="Virtual Machine ID"),
    Param("networkid", "uuid", required=True, description="Network ID"),
    Param("ipaddress", description="IP Address for the new network"),
    Param("macaddress", description="MAC-Address for the new network"),
    Param("dhcpoptions", "map", description="DHCP options (not supported)"),
], response=VM_FIELDS)
def add_nic(ctx: CallContext, args: Args) -> Result:
    vm = _vm_for_nics(ctx, args, "add a NIC to")
    if args.map("dhcpoptions"):
        raise errors.param_error("Invalid parameter dhcpoptions: extra DHCP options are not supported")
    owner = ctx.db.get(Account, vm.account_id)
    if owner is None:
        raise errors.entity_not_found("virtualmachineid", vm.id)
    network = nics.usable_network(ctx.db, owner, vm.zone, args.str("networkid"), "networkid")
    nic = nics.add_nic(ctx.db, vm, network, args.opt_str("ipaddress"), args.opt_str("macaddress"))
    ctx.event("NIC.CREATE", f"Adding NIC to VM {vm.instance_name} in network {network.name}",
              resource_type="Nic", resource_id=nic.id)
    return _job(ctx, nic_jobs.JOB_ADD_NIC, vm, nic)


@command("removeNicFromVirtualMachine", "Removes VM from specified network by deleting a NIC", admin=False,
         isasync=True, params=[
    Param("virtualmachineid", "uuid", required=True, description="Virtual Machine ID"),
    Param("nicid", "uuid", required=True, description="NIC ID"),
], response=VM_FIELDS)
def remove_nic(ctx: CallContext, args: Args) -> Result:
    vm = _vm_for_nics(ctx, args, "remove a NIC from")
    nic = _nic_of(ctx, args, vm)
    nics.check_removable(ctx.db, vm, nic)
    ctx.event("NIC.DELETE", f"Removing NIC {nic.id} from VM {vm.instance_name}", resource_type="Nic",
              resource_id=nic.id)
    return _job(ctx, nic_jobs.JOB_REMOVE_NIC, vm, nic)


@command("updateDefaultNicForVirtualMachine", "Changes the default NIC on a VM", admin=False, isasync=True, params=[
    Param("virtualmachineid", "uuid", required=True, description="Virtual Machine ID"),
    Param("nicid", "uuid", required=True, description="NIC ID"),
], response=VM_FIELDS)
def update_default_nic(ctx: CallContext, args: Args) -> Result:
    vm = _vm_for_nics(ctx, args, "change the default NIC of")
    nic = _nic_of(ctx, args, vm)
    if nic.is_default:
        raise errors.param_error(f"The NIC {nic.id} is already the default NIC of VM {vm.instance_name}")
    live = ctx.db.scalar(select(func.count()).select_from(Nic).where(Nic.vm_id == vm.id, Nic.removed.is_(None)))
    if (live or 0) < 2:
        raise errors.param_error(f"VM {vm.instance_name} has only one NIC")
    ctx.event("NIC.UPDATE", f"Making NIC {nic.id} the default NIC of VM {vm.instance_name}", resource_type="Nic",
              resource_id=nic.id)
    return _job(ctx, nic_jobs.JOB_DEFAULT_NIC, vm, nic)
