"""Service offerings (CPU, memory, placement tags) and disk offerings (size, storage tags)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import DiskOffering, ServiceOffering, utcnow
from hvcloud.server.orchestration import offerings
from hvcloud.server.views.fields import compact

command = REGISTRY.command

STORAGE_TYPES = ("shared", "local")
PROVISIONING_TYPES = ("thin", "sparse", "fat")
SERVICE_FIELDS = ("id", "name", "displaytext", "cpunumber", "cpuspeed", "memory", "storagetype", "iscustomized")
DISK_FIELDS = ("id", "name", "displaytext", "disksize", "iscustomized", "storagetype", "tags")
MAX_CPUS = 1024
MAX_MEMORY_MB = 16 * 1024 * 1024


def service_offering_view(o: ServiceOffering) -> dict[str, Any]:
    return compact({
        "id": o.id, "name": o.name, "displaytext": o.display_text, "cpunumber": o.cpu_number,
        "cpuspeed": o.cpu_speed, "memory": o.memory, "storagetype": o.storage_type,
        "provisioningtype": o.provisioning_type, "offerha": o.offer_ha, "limitcpuuse": o.limit_cpu_use,
        "issystem": o.is_system, "iscustomized": o.customized, "isvolatile": o.is_volatile,
        "hosttags": o.host_tags, "storagetags": o.storage_tags,
        "rootdisksize": o.root_disk_size, "defaultuse": False, "dynamicscalingenabled": True,
        "created": o.created, "state": o.state,
    })


def disk_offering_view(o: DiskOffering) -> dict[str, Any]:
    return compact({
        "id": o.id, "name": o.name, "displaytext": o.display_text, "disksize": o.disk_size_gb,
        "iscustomized": o.customized, "storagetype": o.storage_type, "provisioningtype": o.provisioning_type,
        "tags": o.tags, "displayoffering": o.display_offering, "created": o.created, "state": o.state,
    })


def _choice(args: Args, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (args.opt_str(name) or default).lower()
    if value not in allowed:
        raise errors.param_error(f"Invalid {name} {value[:32]}; expected one of {', '.join(allowed)}")
    return value


def _bounded(args: Args, name: str, low: int, high: int) -> int | None:
    value = args.opt_int(name)
    if value is not None and not low <= value <= high:
        raise errors.param_error(f"{name} must be between {low} and {high}")
    return value


def _tags(args: Args, name: str) -> str | None:
    return ",".join(args.list(name)) or None


@command("createServiceOffering", "Creates a service offering", params=[
    Param("name", required=True, description="the name of the service offering"),
    Param("displaytext", length=4096, description="the display text of the service offering"),
    Param("cpunumber", "integer", description="the CPU number of the service offering"),
    Param("cpuspeed", "integer", description="the CPU speed of the service offering in MHz"),
    Param("memory", "integer", description="the total memory of the service offering in MB"),
    Param("customized", "boolean", description="whether the offering is customized (cpu/memory given at deploy)"),
    Param("storagetype", description="the storage type: local or shared"),
    Param("provisioningtype", description="provisioning type used to create volumes: thin, sparse or fat"),
    Param("offerha", "boolean", description="the HA for the service offering"),
    Param("limitcpuuse", "boolean", description="restrict the CPU usage to committed service offering"),
    Param("isvolatile", "boolean", description="true if the virtual machine needs to be volatile"),
    Param("hosttags", "list", description="the host tags for this service offering"),
    Param("tags", "list", description="the storage tags for this service offering"),
    Param("rootdisksize", "long", description="the root disk size in GB"),
], response=SERVICE_FIELDS)
def create_service_offering(ctx: CallContext, args: Args) -> Result:
    cpus = _bounded(args, "cpunumber", 1, MAX_CPUS)
    speed = _bounded(args, "cpuspeed", 1, 1_000_000)
    memory = _bounded(args, "memory", 32, MAX_MEMORY_MB)
    customized = args.bool("customized") or (cpus is None and memory is None)
    if not customized and (cpus is None or memory is None):
        raise errors.param_error("A fixed service offering needs both cpunumber and memory")
    if customized:
        cpus = memory = None
    root = _bounded(args, "rootdisksize", 1, 1024 * 1024)
    offering = ServiceOffering(
        name=args.str("name"), display_text=args.opt_str("displaytext") or args.str("name"), cpu_number=cpus,
        cpu_speed=speed, memory=memory, storage_type=_choice(args, "storagetype", STORAGE_TYPES, "shared"),
        provisioning_type=_choice(args, "provisioningtype", PROVISIONING_TYPES, "thin"),
        offer_ha=args.bool("offerha"), limit_cpu_use=args.bool("limitcpuuse"), is_volatile=args.bool("isvolatile"),
        host_tags=_tags(args, "hosttags"), storage_tags=_tags(args, "tags"),
        root_disk_size=root * 1024**3 if root else None)
    offerings.add_service_offering(ctx.db, ctx.user, offering)
    return ObjectResult("serviceoffering", service_offering_view(offering))


@command("listServiceOfferings", "Lists all available service offerings", admin=False, params=[
    Param("id", "uuid", description="ID of the service offering"),
    Param("name", description="name of the service offering"),
    Param("issystem", "boolean", description="is this a system vm offering"),
    Param("zoneid", "uuid", description="the zone of the offerings (all offerings serve every zone)"),
    Param("virtualmachineid", "uuid", description="offerings a VM can change to"),
], response=SERVICE_FIELDS)
def list_service_offerings(ctx: CallContext, args: Args) -> Result:
    stmt = select(ServiceOffering).where(ServiceOffering.removed.is_(None)).order_by(ServiceOffering.created,
                                                                                     ServiceOffering.name)
    for param, column in (("id", ServiceOffering.id), ("name", ServiceOffering.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    system = args.opt_bool("issystem")
    stmt = stmt.where(ServiceOffering.is_system.is_(bool(system)))
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(ServiceOffering.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("serviceoffering", [service_offering_view(o) for o in rows], count)


def _live(ctx: CallContext, args: Args, model: type[ServiceOffering] | type[DiskOffering]) -> Any:
    row = ctx.require(args, model, "id")
    if row.removed is not None:
        raise errors.entity_not_found("id", row.id)
    return row


def _rename(row: Any, args: Args) -> None:
    for param, attr in (("name", "name"), ("displaytext", "display_text")):
        value = args.opt_str(param)
        if value is not None:
            if not value.strip():
                raise errors.param_error(f"{param} cannot be empty")
            setattr(row, attr, value)


UPDATE_PARAMS = [Param("id", "uuid", required=True, description="the ID of the offering"),
                 Param("name", description="the name of the offering"),
                 Param("displaytext", length=4096, description="the display text of the offering")]


@command("updateServiceOffering", "Updates a service offering", params=[
    *UPDATE_PARAMS, Param("hosttags", "list", description="the host tags for this service offering"),
    Param("storagetags", "list", description="the storage tags for this service offering")],
    response=SERVICE_FIELDS)
def update_service_offering(ctx: CallContext, args: Args) -> Result:
    offering: ServiceOffering = _live(ctx, args, ServiceOffering)
    _rename(offering, args)
    if args.has("hosttags"):
        offering.host_tags = _tags(args, "hosttags")
    if args.has("storagetags"):
        offering.storage_tags = _tags(args, "storagetags")
    return ObjectResult("serviceoffering", service_offering_view(offering))


@command("deleteServiceOffering", "Deletes a service offering", params=[
    Param("id", "uuid", required=True, description="the ID of the service offering")])
def delete_service_offering(ctx: CallContext, args: Args) -> Result:
    offering: ServiceOffering = _live(ctx, args, ServiceOffering)
    offering.removed, offering.state = utcnow(), "Inactive"
    ctx.event("SERVICE.OFFERING.DELETE", f"Deleting service offering {offering.name}",
              resource_type="ServiceOffering", resource_id=offering.id)
    return SuccessResult()


@command("createDiskOffering", "Creates a disk offering", params=[
    Param("name", required=True, description="the name of the disk offering"),
    Param("displaytext", length=4096, description="an alternate display text of the disk offering"),
    Param("disksize", "long", description="size of the disk offering in GB (1 GB = 1,073,741,824 bytes)"),
    Param("customized", "boolean", description="whether the disk offering is custom size"),
    Param("storagetype", description="the storage type: local or shared"),
    Param("provisioningtype", description="provisioning type used to create volumes: thin, sparse or fat"),
    Param("tags", "list", description="tags for the disk offering"),
    Param("displayoffering", "boolean", description="whether to display the offering to the end user"),
], response=DISK_FIELDS)
def create_disk_offering(ctx: CallContext, args: Args) -> Result:
    size = _bounded(args, "disksize", 1, 1024 * 1024)
    customized = args.bool("customized")
    if size is None and not customized:
        raise errors.param_error("Disksize is required for a non-customized disk offering")
    offering = DiskOffering(
        name=args.str("name"), display_text=args.opt_str("displaytext") or args.str("name"),
        disk_size_gb=0 if customized else size or 0, customized=customized,
        storage_type=_choice(args, "storagetype", STORAGE_TYPES, "shared"),
        provisioning_type=_choice(args, "provisioningtype", PROVISIONING_TYPES, "thin"), tags=_tags(args, "tags"),
        display_offering=args.bool("displayoffering", True))
    offerings.add_disk_offering(ctx.db, ctx.user, offering)
    return ObjectResult("diskoffering", disk_offering_view(offering))


@command("listDiskOfferings", "Lists all available disk offerings", admin=False, params=[
    Param("id", "uuid", description="ID of the disk offering"),
    Param("name", description="name of the disk offering"),
    Param("zoneid", "uuid", description="the zone of the offerings (all offerings serve every zone)"),
], response=DISK_FIELDS)
def list_disk_offerings(ctx: CallContext, args: Args) -> Result:
    stmt = select(DiskOffering).where(DiskOffering.removed.is_(None)).order_by(DiskOffering.created,
                                                                               DiskOffering.name)
    if not ctx.is_admin:
        stmt = stmt.where(DiskOffering.display_offering.is_(True))
    for param, column in (("id", DiskOffering.id), ("name", DiskOffering.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(DiskOffering.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("diskoffering", [disk_offering_view(o) for o in rows], count)


@command("updateDiskOffering", "Updates a disk offering", params=[
    *UPDATE_PARAMS, Param("displayoffering", "boolean", description="whether to display it to end users"),
    Param("tags", "list", description="tags of the disk offering")], response=DISK_FIELDS)
def update_disk_offering(ctx: CallContext, args: Args) -> Result:
    offering: DiskOffering = _live(ctx, args, DiskOffering)
    _rename(offering, args)
    shown = args.opt_bool("displayoffering")
    if shown is not None:
        offering.display_offering = shown
    if args.has("tags"):
        offering.tags = _tags(args, "tags")
    return ObjectResult("diskoffering", disk_offering_view(offering))


@command("deleteDiskOffering", "Deletes a disk offering", params=[
    Param("id", "uuid", required=True, description="ID of the disk offering")])
def delete_disk_offering(ctx: CallContext, args: Args) -> Result:
    offering: DiskOffering = _live(ctx, args, DiskOffering)
    offering.removed, offering.state = utcnow(), "Inactive"
    ctx.event("DISK.OFFERING.DELETE", f"Deleting disk offering {offering.name}", resource_type="DiskOffering",
              resource_id=offering.id)
    return SuccessResult()
