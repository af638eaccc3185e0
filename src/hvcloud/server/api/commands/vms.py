"""Virtual machines: deploy, start, stop, reboot, destroy, recover, expunge, list, update, scale, ISOs.

Requests validate and write rows in one transaction, then queue a job on the VM
(``VirtualMachine:<id>``, so jobs on one VM run in order); :mod:`hvcloud.server.orchestration.vm.manager`
does the agent work.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_, select
from sqlalchemy.exc import IntegrityError

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline, submit_job
from hvcloud.server.api.commands.affinity_groups import VM_GROUP_PARAMS
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.params import map_as_key_values
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.api.vm_access import KEYPAIR_PARAMS, USERDATA_PARAMS, keypairs_of, user_data_of
from hvcloud.server.db.models import (
    Account,
    AffinityGroupVmMap,
    DiskOffering,
    Host,
    ServiceOffering,
    TemplateStoreRef,
    VMInstance,
    VMTemplate,
    Zone,
)
from hvcloud.server.db.sequences import SequenceMissing
from hvcloud.server.orchestration import affinity_groups as AG
from hvcloud.server.orchestration import domain_scope, instance_groups, planner
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration import vm_credentials as creds
from hvcloud.server.orchestration.agents import HOST_UP
from hvcloud.server.orchestration.networks import nics, security_groups
from hvcloud.server.orchestration.vm import allocation
from hvcloud.server.orchestration.vm import manager as vms
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.access import visible_vm
from hvcloud.server.views.vms import vm_view, vm_views

command = REGISTRY.command

VM_FIELDS = ("id", "name", "displayname", "state", "zoneid", "hostid", "templateid", "serviceofferingid",
             "cpunumber", "memory", "instancename", "nic", "tags")
GiB = 1024**3
DEFAULT_CPU_SPEED = 500
DEFAULT_NETWORK_LABEL = "guest"
NETWORK_LABEL_DETAIL = "guest.network.label"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_CPUS = 1024
MAX_MEMORY_MB = 16 * 1024 * 1024


def _job(ctx: CallContext, handler: str, vm: VMInstance, params: dict[str, Any] | None = None, *,
         create: bool = False) -> Result:
    return submit_job(ctx, handler, {"vm_id": vm.id, **(params or {})}, instance_type="VirtualMachine",
                      instance_id=vm.id, create=create)


def owned_vm(ctx: CallContext, args: Args, name: str = "id") -> VMInstance:
    return visible_vm(ctx.db, ctx.user, args.str(name), name)


def _check(operation: str, vm: VMInstance) -> None:
    """CloudStack's 431 when ``operation`` is not allowed in the VM's state (:class:`S.InvalidState`)."""
    S.check(operation, vm.state, vm.instance_name)


def next_number(ctx: CallContext, name: str) -> int:
    """The next value of a named sequence, taken outside the request's transaction (so that it does
    not hold the database's write lock for its whole length; gaps are harmless): see ``db.sequences``."""
    try:
        return ctx.state.sequences.next(name)
    except SequenceMissing as exc:
        raise errors.internal(str(exc)) from None


def _account_number(ctx: CallContext, account: Account) -> int:
    if account.number is None:
        account.number = next_number(ctx, "account")
    return account.number


def _custom(args: Args, offering: ServiceOffering) -> tuple[int, int, int]:
    details = {k.lower(): v for k, v in map_as_key_values(args.map("details")).items()}

    def pick(name: str, detail: str, fixed: int | None) -> int | None:
        if fixed is not None:
            return fixed
        raw = args.opt_int(name)
        if raw is None and detail.lower() in details:
            try:
                raw = int(details[detail.lower()])
            except ValueError:
                raise errors.param_error(f"details {detail} must be an integer") from None
        return raw
    cpus = pick("cpunumber", "cpuNumber", offering.cpu_number)
    memory = pick("memory", "memory", offering.memory)
    speed = pick("cpuspeed", "cpuSpeed", offering.cpu_speed) or DEFAULT_CPU_SPEED
    if cpus is None or memory is None:
        raise errors.param_error("The service offering is customized: give cpunumber and memory "
                                 "(or details[0].cpuNumber and details[0].memory)")
    if not 1 <= cpus <= MAX_CPUS or not 32 <= memory <= MAX_MEMORY_MB or not 1 <= speed <= 1_000_000:
        raise errors.param_error("cpunumber, memory (MB) or cpuspeed out of range")
    return cpus, speed, memory


def _ready_in_zone(ctx: CallContext, template: VMTemplate, zone: Zone) -> TemplateStoreRef:
    ref = ctx.db.scalars(select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id,
                                                        TemplateStoreRef.zone_id == zone.id)).first()
    if ref is None or ref.download_state != "DOWNLOADED":
        kind = "ISO" if template.is_iso else "template"
        raise errors.param_error(f"The {kind} {template.name} is not ready in zone {zone.name}")
    return ref


def _visible_template(ctx: CallContext, template: VMTemplate, name: str) -> None:
    if template.removed is not None or not (template.is_public or ctx.may_act_for(template.account_id)):
        raise errors.entity_not_found(name, template.id)


def _name(args: Args, default: str) -> str:
    name = args.opt_str("name")
    if name is None:
        return default
    if not _HOSTNAME.match(name):
        raise errors.param_error("Invalid value for name: it must be a host name of letters, digits and hyphens, "
                                 "not starting or ending with a hyphen, at most 63 characters")
    return name


@command("deployVirtualMachine", "Creates and automatically starts a virtual machine based on a service "
         "offering, disk offering, and template.", admin=False, isasync=True, params=[
    Param("serviceofferingid", "uuid", required=True, description="the ID of the service offering"),
    Param("zoneid", "uuid", required=True, description="availability zone for the virtual machine"),
    Param("templateid", "uuid", description="the ID of the template (or ISO) for the virtual machine"),
    Param("name", description="host name for the virtual machine"),
    Param("displayname", description="an optional user generated name for the virtual machine"),
    Param("diskofferingid", "uuid", description="the ID of the disk offering for a data disk"),
    Param("size", "long", description="the data disk size in GB for a custom disk offering"),
    Param("rootdisksize", "long", description="the ROOT disk size in GB"),
    Param("hostid", "uuid", description="destination host (admins only)"),
    Param("cpunumber", "integer", description="vCPUs of a custom service offering"),
    Param("cpuspeed", "integer", description="CPU MHz of a custom service offering"),
    Param("memory", "integer", description="memory (MB) of a custom service offering"),
    Param("details", "map", description="cpuNumber, cpuSpeed, memory for custom offerings"),
    *USERDATA_PARAMS, *KEYPAIR_PARAMS,
    Param("startvm", "boolean", description="true (default) to start the VM"),
    Param("group", description="an optional group for the virtual machine"),
    Param("hypervisor", description="the hypervisor on which to deploy the virtual machine"),
    Param("networkids", "list", description="list of network ids used by the virtual machine (the first is "
          "the default network)"),
    Param("iptonetworklist", "map", description="ip to network mapping: iptonetworklist[0].networkid=..&"
          "iptonetworklist[0].ip=.. (instead of networkids)"),
    Param("ipaddress", description="the IPv4 address for the virtual machine's default network"),
    Param("macaddress", description="the MAC address for the virtual machine's default network"),
    Param("securitygroupids", "list", description="security group ids (zones with security groups only)"),
    Param("securitygroupnames", "list", description="security group names (zones with security groups only)"),
    Param("account", description="an optional account for the virtual machine; must be used with domainid"),
    Param("domainid", "uuid", description="an optional domain ID for the virtual machine; with account"),
    Param("projectid", "uuid", description="Deploy VM for the project"),
    *VM_GROUP_PARAMS,
], response=VM_FIELDS)
def deploy_vm(ctx: CallContext, args: Args) -> Result:
    zone = ctx.require(args, Zone, "zoneid")
    offering = ctx.require(args, ServiceOffering, "serviceofferingid")
    if offering.removed is not None or offering.is_system:
        raise errors.entity_not_found("serviceofferingid", offering.id)
    template_id = args.opt_str("templateid")
    if template_id is None:
        raise errors.missing_parameter(ctx.command, "templateid")
    image = ctx.get(VMTemplate, "templateid", template_id, lazy=True)
    _visible_template(ctx, image, "templateid")
    image_ref = _ready_in_zone(ctx, image, zone)
    cpus, speed, memory = _custom(args, offering)
    host_id = args.opt_str("hostid")
    if host_id is not None:
        if not ctx.is_admin:
            raise errors.param_error("Only administrators may choose the host")
        host = ctx.get(Host, "hostid", host_id)
        if host.zone_id != zone.id:
            raise errors.param_error("The host is not in the given zone")
    disk_offering = ctx.optional(args, DiskOffering, "diskofferingid")
    root_gb = args.opt_int("rootdisksize")
    if root_gb is not None and not 1 <= root_gb <= 64 * 1024:
        raise errors.param_error("rootdisksize must be between 1 and 65536 GB")
    if image.is_iso and root_gb is None and disk_offering is None:
        raise errors.param_error("Deploying from an ISO needs a disk offering or rootdisksize for the ROOT disk")
    data_size = None
    if disk_offering is not None and not (image.is_iso and root_gb is None):
        data_size = _disk_size(args, disk_offering)
    account = ctx.owner_for(args)
    userdata = user_data_of(ctx, args, account)
    pairs = keypairs_of(ctx, args, account)
    nic_requests = _nic_requests(ctx, args, zone, account)
    groups = security_groups.groups_for_deploy(ctx.db, account, zone, [r.network for r in nic_requests],
                                               args.list("securitygroupids"), args.list("securitygroupnames"))
    affinity = AG.resolve(ctx.db, account, args.list("affinitygroupids"), args.list("affinitygroupnames"))
    number = next_number(ctx, "vm")
    instance = f"i-{_account_number(ctx, account)}-{number}-{ctx.state.config.instance_name_suffix}"
    name = _name(args, instance)
    label = planner.zone_details(zone).get(NETWORK_LABEL_DETAIL, DEFAULT_NETWORK_LABEL)
    root_size: int | None
    if image.is_iso:
        root_size = (root_gb * GiB) if root_gb is not None else _disk_size(args, disk_offering)  # type: ignore[arg-type]
    else:
        root_size = root_gb * GiB if root_gb else None
    new = allocation.NewVm(
        number=number, instance_name=instance, name=name, display_name=args.opt_str("displayname") or name,
        zone_id=zone.id, offering=offering, image=image, image_size=image_ref.size, host_id=host_id, cpus=cpus,
        speed=speed, memory=memory, user_data=userdata.content if userdata else None, group=args.opt_str("group"),
        network_label=label, nics=nic_requests, root_size=root_size,
        root_offering_id=disk_offering.id if image.is_iso and disk_offering and root_gb is None else None,
        disk_offering=disk_offering, data_size=data_size, affinity_groups=affinity)
    password = None
    try:
        vm = allocation.allocate(ctx.db, ctx.state.config, ctx.state.box, ctx.user, new, owner=account)
        security_groups.join(ctx.db, vm, groups)
        if userdata is not None:
            creds.set_user_data(vm, userdata.content, userdata.source, userdata.details)
        if pairs:
            creds.set_keys(vm, pairs)
        if image.password_enabled and not image.is_iso:
            password = creds.new_password(vm, ctx.state.box, ctx.state.config.vm_password_length)
        start = args.opt_bool("startvm") is not False
        result = _job(ctx, vms.JOB_START, vm, {"deploy": True}, create=True) if start else None
        ctx.db.flush()
    except IntegrityError:
        raise errors.internal("Could not allocate a unique instance name and MAC address; try again") from None
    if result is None:
        view = vm_view(ctx.db, vm)
        if password is not None:
            view["password"] = password
        return run_inline(ctx, ObjectResult("virtualmachine", view), instance_type="VirtualMachine",
                          instance_id=vm.id, create=True)
    return result


def _nic_requests(ctx: CallContext, args: Args, zone: Zone, account: Account) -> list[nics.NicRequest]:
    """deployVirtualMachine's network parameters, checked (431 naming the parameter)."""
    entries = args.map("iptonetworklist")
    if len(entries) > nics.MAX_NICS:
        raise errors.param_error(f"Invalid parameter iptonetworklist: at most {nics.MAX_NICS} networks")
    ip_to_network = [(e.get("networkid"), e.get("ip") or None) for _, e in sorted(entries.items())]
    if any(set(e) - {"networkid", "ip", "ipv6", "mac"} for e in entries.values()):
        raise errors.param_error("Invalid parameter iptonetworklist: entries take networkid, ip, ipv6 and mac")
    if any(e.get("ipv6") for e in entries.values()):
        raise errors.param_error("Invalid parameter iptonetworklist: IPv6 addresses are not supported")
    macs = [e.get("mac") for _, e in sorted(entries.items())]
    mac = args.opt_str("macaddress")
    if any(m for m in macs[1:]) or (macs and macs[0] and mac is not None):
        raise errors.param_error("Invalid parameter iptonetworklist: only the default network's MAC may be chosen")
    return nics.plan_deploy(ctx.db, account, zone, network_ids=args.list("networkids"),
                            ip_to_network=ip_to_network, ip=args.opt_str("ipaddress"),
                            mac=mac or (macs[0] if macs else None))


def _disk_size(args: Args, offering: DiskOffering) -> int:
    if offering.customized or not offering.disk_size_gb:
        size = args.opt_int("size")
        if size is None:
            raise errors.param_error(f"Disk offering {offering.name} is customized: give size (GB)")
        if not 1 <= size <= 64 * 1024:
            raise errors.param_error("size must be between 1 and 65536 GB")
        return size * GiB
    return offering.disk_size_gb * GiB


@command("startVirtualMachine", "Starts a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("hostid", "uuid", description="destination host (admins only)"),
], response=VM_FIELDS)
def start_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    _check("start", vm)
    host_id = args.opt_str("hostid")
    if host_id is not None:
        if not ctx.is_admin:
            raise errors.param_error("Only administrators may choose the host")
        ctx.get(Host, "hostid", host_id)
    vm.requested_host_id = host_id
    return _job(ctx, vms.JOB_START, vm)


@command("stopVirtualMachine", "Stops a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("forced", "boolean", description="Force stop the VM (the host may not confirm)"),
], response=VM_FIELDS)
def stop_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    _check("stop", vm)
    return _job(ctx, vms.JOB_STOP, vm, {"forced": args.bool("forced")})


@command("rebootVirtualMachine", "Reboots a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("forced", "boolean", description="Force reboot the VM"),
], response=VM_FIELDS)
def reboot_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    _check("reboot", vm)
    return _job(ctx, vms.JOB_REBOOT, vm)


@command("destroyVirtualMachine", "Destroys a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("expunge", "boolean", description="If true, the VM is expunged at once"),
], response=VM_FIELDS)
def destroy_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    if vm.state in (S.DESTROYED, S.EXPUNGING) and not args.bool("expunge"):
        raise errors.param_error(f"VM {vm.instance_name} is already {vm.state}")
    return _job(ctx, vms.JOB_DESTROY, vm, {"expunge": args.bool("expunge")})


@command("expungeVirtualMachine", "Expunge a virtual machine. Once expunged, it cannot be recoverd.",
         isasync=True, params=[Param("id", "uuid", required=True, description="The ID of the virtual machine")])
def expunge_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    if vm.state not in (S.DESTROYED, S.ERROR, S.EXPUNGING):
        raise errors.param_error(f"Unable to expunge VM {vm.instance_name}: it is {vm.state}; destroy it first")
    return _job(ctx, vms.JOB_EXPUNGE, vm)


@command("recoverVirtualMachine", "Recovers a virtual machine.", params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine")], response=VM_FIELDS)
def recover_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    _check("recover", vm)
    allocation.recover(ctx.db, ctx.user, vm)
    return ObjectResult("virtualmachine", vm_view(ctx.db, vm))


@command("listVirtualMachines", "List the virtual machines owned by the account.", admin=False, listall=True,
         params=[
    Param("id", "uuid", description="the ID of the virtual machine"),
    Param("ids", "list", description="the IDs of the virtual machines"),
    Param("name", description="name of the virtual machine (exact)"),
    Param("state", description="state of the virtual machine"),
    Param("zoneid", "uuid", description="the availability zone ID"),
    Param("hostid", "uuid", description="the host ID"),
    Param("templateid", "uuid", description="list by template"),
    Param("serviceofferingid", "uuid", description="list by service offering"),
    Param("groupid", "uuid", description="the group ID"),
    Param("affinitygroupid", "uuid", description="list vms by affinity group"),
    Param("details", "list", description="comma separated list of details: all, min, nics, stats, ..."),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
    Param("account", description="list resources by account; must be used with the domainId parameter"),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: also the sub-domains' resources"),
    Param("projectid", "uuid", description="list objects by project; -1: of all the caller's projects"),
], response=VM_FIELDS)
def list_vms(ctx: CallContext, args: Args) -> Result:
    stmt = select(VMInstance.id).where(VMInstance.removed.is_(None))
    owner = ctx.owner_and_domain_filter(VMInstance.account_id, domain_scope.domain_of_account(VMInstance.account_id),
                                        args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", VMInstance.id), ("name", VMInstance.name), ("zoneid", VMInstance.zone_id),
                          ("hostid", VMInstance.host_id), ("templateid", VMInstance.template_id),
                          ("serviceofferingid", VMInstance.service_offering_id), ("groupid", VMInstance.group_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    affinity_group = args.opt_str("affinitygroupid")
    if affinity_group is not None:
        stmt = stmt.where(VMInstance.id.in_(select(AffinityGroupVmMap.vm_id)
                                            .where(AffinityGroupVmMap.affinity_group_id == affinity_group)))
    ids = args.list("ids")
    if ids:
        stmt = stmt.where(VMInstance.id.in_(ids[:500]))
    state = args.opt_str("state")
    if state is not None:
        stmt = stmt.where(_shown_state_is(state.replace("%", "").replace("_", "")))
    for cond in tag_conditions(args, T.USER_VM, VMInstance.id):
        stmt = stmt.where(cond)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(VMInstance.name.ilike(pattern, escape="\\"),
                              VMInstance.display_name.ilike(pattern, escape="\\"),
                              VMInstance.instance_name.ilike(pattern, escape="\\")))
    ids, count = ctx.page(stmt.order_by(VMInstance.created, VMInstance.vm_number), args)
    details = {d.lower() for d in args.list("details")}
    full = not details or bool(details & {"all", "volume", "servoff"})
    return ListResult("virtualmachine", vm_views(ctx.db, ids, details=full), count)


def _shown_state_is(state: str) -> ColumnElement[bool]:
    """Filter on the state the API shows (``vm.states.shown``): ``Unknown`` takes in the VMs on a
    host that is not Up, and their stored state no longer matches them."""
    on_lost_host = and_(VMInstance.state.in_(S.ON_HOST), VMInstance.host_id.is_not(None),
                        VMInstance.host_id.in_(select(Host.id).where(Host.status != HOST_UP)))
    if state.lower() == S.UNKNOWN.lower():
        return or_(VMInstance.state == S.UNKNOWN, on_lost_host)
    return and_(VMInstance.state.ilike(state), not_(on_lost_host))


@command("updateVirtualMachine", "Updates properties of a virtual machine.", admin=False, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("displayname", description="user generated name"),
    Param("name", description="new host name of the VM (stopped VMs only)"),
    Param("group", description="group of the virtual machine"),
    Param("haenable", "boolean", description="true if high-availability is enabled"),
    Param("displayvm", "boolean", description="whether the VM is shown to the end user"),
    *USERDATA_PARAMS,
], response=VM_FIELDS)
def update_vm(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args)
    _check("update", vm)
    if args.has("name"):
        if vm.state != S.STOPPED:
            raise errors.param_error("The host name of a VM can be changed only when it is Stopped")
        vm.name = _name(args, vm.name)
    if args.has("displayname"):
        vm.display_name = args.str("displayname")
    if args.has("group"):
        instance_groups.set_vm_group(ctx.db, vm, vm.account, args.opt_str("group"))
    if args.opt_bool("haenable") is not None:
        vm.ha_enabled = args.bool("haenable")
    if args.opt_bool("displayvm") is not None:
        vm.display_vm = args.bool("displayvm")
    userdata = user_data_of(ctx, args, vm.account)
    if userdata is not None:
        creds.set_user_data(vm, userdata.content, userdata.source, userdata.details)
        _job(ctx, creds.JOB_REFRESH_VM_DATA, vm)  # the routers get the new user data; the answer does not wait
    return ObjectResult("virtualmachine", vm_view(ctx.db, vm))


OFFERING_PARAMS = (
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    Param("serviceofferingid", "uuid", required=True, description="the ID of the service offering"),
    Param("details", "map", description="cpuNumber, cpuSpeed, memory for custom offerings"),
)


@command("scaleVirtualMachine", "Scales the virtual machine to a new service offering (when stopped).",
         admin=False, isasync=True, params=[
    *OFFERING_PARAMS,
    Param("cpunumber", "integer", description="vCPUs of a custom service offering"),
    Param("cpuspeed", "integer", description="CPU MHz of a custom service offering"),
    Param("memory", "integer", description="memory (MB) of a custom service offering"),
], response=VM_FIELDS)
def scale_vm(ctx: CallContext, args: Args) -> Result:
    vm = _change_offering(ctx, args, live=True)
    return run_inline(ctx, ObjectResult("virtualmachine", vm_view(ctx.db, vm)), instance_type="VirtualMachine",
                      instance_id=vm.id)


@command("changeServiceForVirtualMachine", "Changes the service offering for a virtual machine. The virtual "
         "machine must be in a \"Stopped\" state for this command to take effect.", admin=False,
         params=OFFERING_PARAMS, response=VM_FIELDS)
def change_service(ctx: CallContext, args: Args) -> Result:
    return ObjectResult("virtualmachine", vm_view(ctx.db, _change_offering(ctx, args, live=False)))


def _change_offering(ctx: CallContext, args: Args, *, live: bool) -> VMInstance:
    """The one implementation of scaleVirtualMachine and changeServiceForVirtualMachine.

    A Running VM (``live``: scaleVirtualMachine) gets CloudStack's answers in CloudStack's order: 431
    when the new offering is not larger in every respect, then 531 because dynamic scaling is off —
    no driver here can change a running VM's CPUs and memory, so VMs are never ``isdynamicallyscalable``."""
    vm = owned_vm(ctx, args)
    offering = ctx.require(args, ServiceOffering, "serviceofferingid")
    if offering.removed is not None or offering.is_system:
        raise errors.entity_not_found("serviceofferingid", offering.id)
    if vm.state != S.STOPPED and not (live and vm.state == S.RUNNING):
        raise allocation.not_stopped(vm)
    if vm.state == S.STOPPED and offering.id == vm.service_offering_id and not offering.customized:
        raise errors.param_error(f"Not upgrading vm {vm.instance_name} since it already has the requested service "
                                 f"offering ({offering.name})")
    cpus, speed, memory = _custom(args, offering)
    if vm.state == S.RUNNING:
        if (speed < vm.cpu_speed or memory < vm.memory or cpus < vm.cpu_number
                or (speed, memory, cpus) == (vm.cpu_speed, vm.memory, vm.cpu_number)):
            raise errors.param_error(
                f"Only scaling up the vm is supported, new service offering(speed={speed},cpu={cpus},memory=,{memory})"
                " should have at least one value(cpu/ram) greater than old value and no resource value less than "
                f"older(speed={vm.cpu_speed},cpu={vm.cpu_number},memory=,{vm.memory})")
        raise errors.permission_denied("Dynamically scaling virtual machines is disabled for this zone, please "
                                       "contact your admin")
    allocation.scale(ctx.db, ctx.state.config, ctx.user, vm, offering, cpus=cpus, speed=speed, memory=memory)
    return vm


def _iso_job(ctx: CallContext, vm: VMInstance, attach: bool) -> Result:
    return _job(ctx, vms.JOB_ISO, vm, {"attach": attach})


@command("attachIso", "Attaches an ISO to a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the ISO file"),
    Param("virtualmachineid", "uuid", required=True, description="the ID of the virtual machine"),
], response=VM_FIELDS)
def attach_iso(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args, "virtualmachineid")
    _check("attach", vm)
    iso = ctx.require(args, VMTemplate, "id")
    _visible_template(ctx, iso, "id")
    if not iso.is_iso:
        raise errors.param_error(f"{iso.name} is not an ISO")
    _ready_in_zone(ctx, iso, vm.zone)
    if vm.iso_id is not None:
        raise errors.param_error(f"VM {vm.instance_name} already has an ISO attached; detach it first")
    vm.iso_id = iso.id
    return _iso_job(ctx, vm, True)


@command("detachIso", "Detaches any ISO file (if any) currently attached to a virtual machine.", admin=False,
         isasync=True, params=[
    Param("virtualmachineid", "uuid", required=True, description="The ID of the virtual machine"),
], response=VM_FIELDS)
def detach_iso(ctx: CallContext, args: Args) -> Result:
    vm = owned_vm(ctx, args, "virtualmachineid")
    _check("attach", vm)
    if vm.iso_id is None:
        raise errors.param_error(f"VM {vm.instance_name} has no ISO attached")
    return _iso_job(ctx, vm, False)
