"""Volumes: create, attach, detach, resize, delete, list (CloudStack's ``volume`` object)."""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline, submit_job
from hvcloud.server.api.commands.vms import GiB, owned_vm
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import OWNER_PARAMS, REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import DiskOffering, VMInstance, Volume, Zone, utcnow
from hvcloud.server.orchestration import domain_scope, volumes
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.views.tags import tag_map
from hvcloud.server.views.volumes import VOLUME_VIEW_LOADS, volume_view

command = REGISTRY.command

VOLUME_FIELDS = ("id", "name", "type", "state", "size", "zoneid", "virtualmachineid", "deviceid", "attached",
                 "diskofferingid", "storageid", "tags")
MAX_GB = 64 * 1024


def owned_volume(ctx: CallContext, args: Args, name: str = "id") -> Volume:
    volume = ctx.require(args, Volume, name)
    if volume.removed is not None or not ctx.may_act_for(volume.account_id):
        raise errors.entity_not_found(name, volume.id)
    return volume


def _size(args: Args, offering: DiskOffering | None) -> int:
    size = args.opt_int("size")
    if offering is not None and not offering.customized and offering.disk_size_gb:
        if size is not None and size != offering.disk_size_gb:
            raise errors.param_error(f"Disk offering {offering.name} has a fixed size of {offering.disk_size_gb} GB")
        return offering.disk_size_gb * GiB
    if size is None:
        raise errors.param_error("Give size (GB) with a customized disk offering")
    if not 1 <= size <= MAX_GB:
        raise errors.param_error(f"size must be between 1 and {MAX_GB} GB")
    return size * GiB


def _job(ctx: CallContext, handler: str, volume: Volume, params: dict[str, object]) -> Result:
    return submit_job(ctx, handler, {"volume_id": volume.id, **params}, instance_type="Volume",
                      instance_id=volume.id)


@command("createVolume", "Creates a disk volume from a disk offering.", admin=False, isasync=True, params=[
    Param("name", description="the name of the disk volume"),
    Param("diskofferingid", "uuid", description="the ID of the disk offering"),
    Param("size", "long", description="size of the volume in GB (customized offerings)"),
    Param("zoneid", "uuid", description="the ID of the availability zone"),
    Param("virtualmachineid", "uuid", description="attach the volume to this VM once created"),
    *OWNER_PARAMS,
], response=VOLUME_FIELDS)
def create_volume(ctx: CallContext, args: Args) -> Result:
    offering = ctx.optional(args, DiskOffering, "diskofferingid")
    if offering is None:
        raise errors.missing_parameter(ctx.command, "diskofferingid")
    if offering.removed is not None:
        raise errors.entity_not_found("diskofferingid", offering.id)
    vm = owned_vm(ctx, args, "virtualmachineid") if args.has("virtualmachineid") else None
    zone = ctx.optional(args, Zone, "zoneid") or (vm.zone if vm is not None else None)
    if zone is None:
        raise errors.missing_parameter(ctx.command, "zoneid")
    name = args.opt_str("name") or f"DATA-{utcnow().strftime('%Y%m%d%H%M%S')}"
    owner = ctx.owner_for(args)
    if vm is not None and owner.id != ctx.account.id and vm.account_id != owner.id:
        raise errors.param_error("The volume and the virtual machine must belong to the same account")
    volume = volumes.create_volume(ctx.db, ctx.state.config, ctx.user, owner, zone_id=zone.id, name=name,
                                   size=_size(args, offering), offering_id=offering.id)
    if vm is not None:
        _check_attachable(vm)
        result = submit_job(ctx, volumes.JOB_ATTACH, {"volume_id": volume.id, "vm_id": vm.id},
                            instance_type="Volume", instance_id=volume.id, object_key=f"VirtualMachine:{vm.id}",
                            create=True)
        return result
    return run_inline(ctx, ObjectResult("volume", volume_view(volume)), instance_type="Volume",
                      instance_id=volume.id, create=True)


def _check_not_busy(volume: Volume) -> None:
    if volume.state == S.VOL_RESIZING:
        raise errors.param_error(f"Volume {volume.name} is {volume.state}; try again when it is {S.VOL_READY}")


def _check_attachable(vm: VMInstance) -> None:
    if vm.state not in (S.RUNNING, S.STOPPED):
        raise errors.param_error(f"Unable to attach a volume to VM {vm.instance_name}: it is {vm.state}")


@command("attachVolume", "Attaches a disk volume to a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the disk volume"),
    Param("virtualmachineid", "uuid", required=True, description="the ID of the virtual machine"),
    Param("deviceid", "long", description="the device id (ignored; the next free one is used)"),
], response=VOLUME_FIELDS)
def attach_volume(ctx: CallContext, args: Args) -> Result:
    volume = owned_volume(ctx, args)
    vm = owned_vm(ctx, args, "virtualmachineid")
    if volume.volume_type != "DATADISK":
        raise errors.param_error("Only DATADISK volumes can be attached")
    if volume.vm_id is not None:
        raise errors.param_error(f"Volume {volume.name} is already attached to a VM")
    if volume.zone_id != vm.zone_id:
        raise errors.param_error("The volume and the VM are in different zones")
    if volume.account_id != vm.account_id:
        raise errors.param_error("The volume and the VM belong to different accounts")
    if volume.state not in (S.VOL_ALLOCATED, S.VOL_READY):
        raise errors.param_error(f"Volume {volume.name} is {volume.state}")
    _check_attachable(vm)
    return submit_job(ctx, volumes.JOB_ATTACH, {"volume_id": volume.id, "vm_id": vm.id}, instance_type="Volume",
                      instance_id=volume.id, object_key=f"VirtualMachine:{vm.id}")


@command("detachVolume", "Detaches a disk volume from a virtual machine.", admin=False, isasync=True, params=[
    Param("id", "uuid", description="the ID of the disk volume"),
    Param("virtualmachineid", "uuid", description="the ID of the virtual machine (with deviceid)"),
    Param("deviceid", "long", description="the device id of the volume (with virtualmachineid)"),
], response=VOLUME_FIELDS)
def detach_volume(ctx: CallContext, args: Args) -> Result:
    if args.has("id"):
        volume = owned_volume(ctx, args)
    else:
        vm = owned_vm(ctx, args, "virtualmachineid")
        device = args.opt_int("deviceid")
        if device is None:
            raise errors.param_error("Give id, or virtualmachineid and deviceid")
        found = ctx.db.scalars(select(Volume).where(Volume.vm_id == vm.id, Volume.device_id == device,
                                                    Volume.removed.is_(None))).first()
        if found is None:
            raise errors.param_error(f"VM {vm.instance_name} has no volume at device {device}")
        volume = found
    if volume.vm_id is None:
        raise errors.param_error(f"Volume {volume.name} is not attached to a VM")
    if volume.volume_type == "ROOT":
        raise errors.param_error("The ROOT volume cannot be detached")
    _check_not_busy(volume)
    vm_row = ctx.db.get(VMInstance, volume.vm_id)
    if vm_row is not None:
        _check_attachable(vm_row)
    return submit_job(ctx, volumes.JOB_DETACH, {"volume_id": volume.id}, instance_type="Volume",
                      instance_id=volume.id, object_key=f"VirtualMachine:{volume.vm_id}")


@command("resizeVolume", "Resizes a volume.", admin=False, isasync=True, params=[
    Param("id", "uuid", required=True, description="the ID of the disk volume"),
    Param("size", "long", description="new size in GB"),
    Param("diskofferingid", "uuid", description="new disk offering"),
    Param("shrinkok", "boolean", description="allow shrinking"),
], response=VOLUME_FIELDS)
def resize_volume(ctx: CallContext, args: Args) -> Result:
    """CloudStack's rules: a new disk offering sets the size (or takes ``size`` if customized);
    without one, ``size`` is allowed for ROOT volumes and volumes of customized offerings; shrinking
    needs ``shrinkok=true`` and never applies to a running VM's disk."""
    volume = owned_volume(ctx, args)
    if volume.state not in (S.VOL_ALLOCATED, S.VOL_READY):
        raise errors.param_error(f"Unable to resize volume {volume.name}: it is {volume.state}; resizing needs "
                                 f"the volume to be {S.VOL_ALLOCATED} or {S.VOL_READY}")
    offering = ctx.optional(args, DiskOffering, "diskofferingid")
    if offering is not None:
        if offering.removed is not None or offering.state != "Active":
            raise errors.entity_not_found("diskofferingid", offering.id)
        if volume.volume_type != "DATADISK":
            raise errors.param_error("Only DATADISK volumes take a new disk offering; give size to resize a ROOT "
                                     "volume")
    elif not args.has("size"):
        raise errors.param_error("Give size (GB) or a new diskofferingid to resize a volume")
    elif volume.volume_type == "DATADISK" and volume.disk_offering is not None \
            and not volume.disk_offering.customized:
        raise errors.param_error(f"The disk offering {volume.disk_offering.name} of volume {volume.name} has a "
                                 "fixed size: give a new disk offering, or a customized one with size")
    new_size = _size(args, offering) if offering is not None else _size(args, None)
    shrink = new_size < volume.size
    if shrink and not args.bool("shrinkok"):
        raise errors.param_error(f"Going from the current size of {volume.size} bytes to {new_size} bytes would "
                                 f"shrink volume {volume.name}; give shrinkok=true to allow it")
    vm = ctx.db.get(VMInstance, volume.vm_id) if volume.vm_id else None
    if vm is not None and vm.state not in (S.RUNNING, S.STOPPED):
        raise errors.param_error(f"Unable to resize volume {volume.name}: its VM {vm.instance_name} is {vm.state}")
    if vm is not None and shrink and vm.state == S.RUNNING and volume.state == S.VOL_READY:
        raise errors.param_error(f"Unable to shrink volume {volume.name}: its VM {vm.instance_name} is running; "
                                 "stop it first")
    offering_id = offering.id if offering is not None else None
    params = volumes.resize(ctx.db, ctx.state.config, ctx.user, volume, new_size, offering_id)
    if params is None:
        return run_inline(ctx, ObjectResult("volume", volume_view(volume)), instance_type="Volume",
                          instance_id=volume.id)
    return submit_job(ctx, volumes.JOB_RESIZE, params, instance_type="Volume", instance_id=volume.id,
                      object_key=f"VirtualMachine:{vm.id}" if vm is not None else None)


@command("deleteVolume", "Deletes a detached disk volume.", admin=False, params=[
    Param("id", "uuid", required=True, description="The ID of the disk volume")])
def delete_volume(ctx: CallContext, args: Args) -> Result:
    volume = owned_volume(ctx, args)
    if volume.vm_id is not None:
        raise errors.in_use(f"Volume {volume.name} is attached to a VM; detach it first")
    if volume.volume_type == "ROOT":
        raise errors.param_error("A ROOT volume is deleted with its VM")
    _check_not_busy(volume)
    volumes.delete_volume(ctx.db, ctx.user, volume, agents=ctx.state.agents, sessions=ctx.state.sessions,
                          box=ctx.state.box)
    return SuccessResult()


@command("listVolumes", "Lists all volumes.", admin=False, listall=True, params=[
    Param("id", "uuid", description="the ID of the disk volume"),
    Param("name", description="the name of the disk volume"),
    Param("type", description="the type of disk volume (ROOT, DATADISK)"),
    Param("virtualmachineid", "uuid", description="the ID of the virtual machine"),
    Param("zoneid", "uuid", description="the ID of the availability zone"),
    Param("storageid", "uuid", description="the ID of the storage pool"),
    Param("state", description="state of the volume"),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
    Param("account", description="list resources by account; must be used with the domainId parameter"),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: also the sub-domains' resources"),
    Param("projectid", "uuid", description="list objects by project; -1: of all the caller's projects"),
], response=VOLUME_FIELDS)
def list_volumes(ctx: CallContext, args: Args) -> Result:
    stmt = select(Volume).where(Volume.removed.is_(None))
    owner = ctx.owner_and_domain_filter(Volume.account_id, domain_scope.domain_of_account(Volume.account_id), args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", Volume.id), ("name", Volume.name), ("virtualmachineid", Volume.vm_id),
                          ("zoneid", Volume.zone_id), ("storageid", Volume.pool_id), ("state", Volume.state)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    kind = args.opt_str("type")
    if kind is not None:
        stmt = stmt.where(Volume.volume_type == kind.upper())
    for cond in tag_conditions(args, T.VOLUME, Volume.id):
        stmt = stmt.where(cond)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(Volume.name.ilike(pattern, escape="\\")))
    rows, count = ctx.page(stmt.order_by(Volume.created, Volume.name).options(*VOLUME_VIEW_LOADS), args)
    tags = tag_map(ctx.db, T.VOLUME, [v.id for v in rows])
    return ListResult("volume", [volume_view(v, tags.get(v.id, [])) for v in rows], count)
