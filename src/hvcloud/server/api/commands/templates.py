"""Templates and ISOs: register by URL or upload, list with CloudStack's filters, update, copy, delete.

Downloads, copies and deletions run as jobs (``template.download``, ``template.copy``,
``template.delete``, ``template.upload``); all are resumable, since each step checks what an earlier
attempt already did. ``registerTemplate`` itself is synchronous, as in CloudStack: it answers with
the template (``isready: false``) while its download job runs; list items carry that job's id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import submit_job
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.params import map_as_key_values
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, RawResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_conditions
from hvcloud.server.db.models import AsyncJob, OsType, TemplateStoreRef, VMTemplate, Zone
from hvcloud.server.jobs import store as job_store
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.orchestration import template_jobs
from hvcloud.server.orchestration import templates as tpl
from hvcloud.server.orchestration.catalog import HYPERVISORS
from hvcloud.server.views.fields import format_date
from hvcloud.server.views.tags import tag_map
from hvcloud.server.views.templates import template_view
from hvcloud.storage.errors import StoreError, UnsafeUrl
from hvcloud.storage.transfer import parse_checksum
from hvcloud.storage.url_rules import check_address, parse_url

command = REGISTRY.command

TEMPLATE_FORMATS = ("QCOW2", "RAW", "VHD", "VHDX")
FILTERS = ("featured", "self", "selfexecutable", "sharedexecutable", "executable", "community", "all")
TEMPLATE_FIELDS = ("id", "name", "displaytext", "zoneid", "zonename", "isready", "status", "format",
                   "hypervisor", "ostypeid", "size", "ispublic", "isfeatured", "templatetype", "checksum", "tags")
UPLOAD_PURPOSE = "template-upload"


# -- registration ---------------------------------------------------------------------------------

def _check_url(ctx: CallContext, url: str) -> None:
    try:
        _scheme, host, _port, _path = parse_url(url)
    except UnsafeUrl as exc:
        raise errors.param_error(f"Invalid URL: {exc}") from None
    import ipaddress

    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return
    config = ctx.state.config
    try:
        check_address(literal, config.download_policy)
    except UnsafeUrl as exc:
        raise errors.param_error(f"Invalid URL: {exc}") from None


def _zones(ctx: CallContext, args: Args) -> tuple[list[Zone], bool]:
    ids = args.list("zoneids") if args.has("zoneids") else []
    single = args.opt_str("zoneid")
    if single is not None:
        ids = [single, *ids]
    if not ids:
        raise errors.missing_parameter(ctx.command, "zoneid")
    if "-1" in ids:
        return list(ctx.db.scalars(select(Zone).order_by(Zone.created, Zone.name))), True
    return [ctx.get(Zone, "zoneid", z) for z in dict.fromkeys(ids)], False


def _new_template(ctx: CallContext, args: Args, *, fmt: str, is_iso: bool, url: str | None,
                  cross_zones: bool) -> VMTemplate:
    checksum = args.opt_str("checksum") or None
    if checksum:
        try:
            parse_checksum(checksum)
        except StoreError as exc:
            raise errors.param_error(f"Invalid checksum: {exc}") from None
    os_type = ctx.optional(args, OsType, "ostypeid")
    hypervisor = None
    if not is_iso:
        hv = args.str("hypervisor")
        matches = [h for h in HYPERVISORS if h.lower() == hv.lower()]
        if not matches:
            raise errors.param_error(f"Hypervisor type {hv[:32]} is not supported")
        hypervisor = matches[0]
    details = map_as_key_values(args.map("details"))
    featured = args.bool("isfeatured")
    public = args.bool("ispublic") or (featured and ctx.is_admin)
    template = VMTemplate(
        name=args.str("name"), display_text=args.opt_str("displaytext") or args.str("name"), is_iso=is_iso,
        format=fmt, hypervisor=hypervisor, os_type_id=os_type.id if os_type else None,
        account_id=ctx.account.id, url=url, checksum=checksum, is_public=public,
        is_featured=featured and ctx.is_admin, is_extractable=args.bool("isextractable"),
        password_enabled=args.bool("passwordenabled"), sshkey_enabled=args.bool("sshkeyenabled"),
        bootable=args.bool("bootable", True) if is_iso else True,
        requires_hvm=args.bool("requireshvm", True), bits=args.opt_int("bits") or 64,
        template_tag=args.opt_str("templatetag"), cross_zones=cross_zones,
        details_json=json.dumps(details, sort_keys=True) if details else None)
    return tpl.add_template(ctx.db, ctx.state.config, ctx.account, template)


def _add_ref(ctx: CallContext, template: VMTemplate, zone: Zone, state: str) -> TemplateStoreRef:
    return tpl.add_store_ref(ctx.db, template, zone, state)


def _object_key(template_id: str) -> str:
    return f"Template:{template_id}"


def _register(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    fmt = "ISO" if is_iso else args.str("format").upper()
    if fmt not in TEMPLATE_FORMATS and not is_iso:
        raise errors.param_error(f"Format {fmt[:16]} is not supported; use one of {', '.join(TEMPLATE_FORMATS)}")
    url = args.str("url").strip()
    _check_url(ctx, url)
    zones, cross = _zones(ctx, args)
    template = _new_template(ctx, args, fmt=fmt, is_iso=is_iso, url=url, cross_zones=cross)
    refs = [_add_ref(ctx, template, zone, tpl.NOT_DOWNLOADED) for zone in zones]
    if not refs:
        raise errors.param_error("There is no zone to register the template in")
    views = []
    for ref in refs:
        job = submit_job(ctx, template_jobs.JOB_DOWNLOAD, {"ref_id": ref.id, "iso": is_iso}, instance_type="Template",
                         instance_id=template.id, object_key=_object_key(template.id))
        views.append(template_view(ref, ctx.db.get(AsyncJob, job.jobid)))
    ctx.event("ISO.CREATE" if is_iso else "TEMPLATE.CREATE", f"Registering {fmt} {template.name}",
              resource_type="Iso" if is_iso else "Template", resource_id=template.id)
    return ListResult("iso" if is_iso else "template", views, len(views))


REGISTER_COMMON = [
    Param("name", required=True, description="the name of the template"),
    Param("displaytext", length=4096, description="the display text of the template"),
    Param("url", required=True, length=2048, description="the URL of where the template is hosted"),
    Param("zoneid", "uuid", description="the ID of the zone the template is to be hosted on; -1 for all"),
    Param("zoneids", "list", description="a list of zone ids where the template will be hosted"),
    Param("ostypeid", "uuid", description="the ID of the OS type"),
    Param("ispublic", "boolean", description="true if the template is available to all accounts"),
    Param("isfeatured", "boolean", description="true if the template is featured"),
    Param("isextractable", "boolean", description="true if the template may be downloaded"),
    Param("checksum", description="the checksum: {ALGORITHM}hex or a plain MD5 hex digest"),
    Param("account", description="an optional account name"),
    Param("domainid", "uuid", description="an optional domain id"),
]


@command("registerTemplate", "Registers an existing template into the CloudStack cloud", admin=False, params=[
    *REGISTER_COMMON,
    Param("format", required=True, description="the format: QCOW2, RAW, VHD or VHDX"),
    Param("hypervisor", required=True, description="the target hypervisor for the template"),
    Param("passwordenabled", "boolean", description="true if the template supports password reset"),
    Param("sshkeyenabled", "boolean", description="true if the template supports SSH key reset"),
    Param("requireshvm", "boolean", description="true if this template requires HVM"),
    Param("bits", "integer", description="32 or 64 bits support, 64 by default"),
    Param("templatetag", description="the tag for this template"),
    Param("details", "map", description="template details in key/value pairs"),
], response=TEMPLATE_FIELDS)
def register_template(ctx: CallContext, args: Args) -> Result:
    return _register(ctx, args, is_iso=False)


@command("registerIso", "Registers an existing ISO into the CloudStack cloud", admin=False, params=[
    *REGISTER_COMMON,
    Param("bootable", "boolean", description="true if this ISO is bootable, true by default"),
], response=TEMPLATE_FIELDS)
def register_iso(ctx: CallContext, args: Args) -> Result:
    return _register(ctx, args, is_iso=True)


# -- listing --------------------------------------------------------------------------------------

def _filtered(ctx: CallContext, args: Args, filter_name: str, *, is_iso: bool) -> Any:
    if filter_name not in FILTERS:
        raise errors.param_error(f"Invalid filter {filter_name[:32]}; expected one of {', '.join(FILTERS)}")
    own = VMTemplate.account_id == ctx.account.id
    ready = TemplateStoreRef.download_state == tpl.DOWNLOADED
    stmt = (select(TemplateStoreRef).join(VMTemplate, TemplateStoreRef.template_id == VMTemplate.id)
            .where(VMTemplate.removed.is_(None), VMTemplate.is_iso.is_(is_iso))
            .order_by(VMTemplate.created, VMTemplate.name, TemplateStoreRef.zone_id))
    conditions = {
        "featured": and_(VMTemplate.is_featured.is_(True), VMTemplate.is_public.is_(True)),
        "self": own,
        "selfexecutable": and_(own, ready),
        "sharedexecutable": and_(own.is_(False), own),
        "executable": and_(or_(own, VMTemplate.is_public.is_(True)), ready),
        "community": and_(VMTemplate.is_public.is_(True), VMTemplate.is_featured.is_(False), own.is_(False)),
        "all": None if ctx.is_admin else or_(own, VMTemplate.is_public.is_(True)),
    }
    cond = conditions[filter_name]
    if filter_name == "sharedexecutable":
        cond = VMTemplate.id.is_(None)
    if cond is not None:
        stmt = stmt.where(cond)
    for param, column in (("id", VMTemplate.id), ("name", VMTemplate.name), ("zoneid", TemplateStoreRef.zone_id)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    hypervisor = args.opt_str("hypervisor")
    if hypervisor is not None and not is_iso:
        stmt = stmt.where(VMTemplate.hypervisor == hypervisor)
    for param, flag_column in (("bootable", VMTemplate.bootable), ("ispublic", VMTemplate.is_public)):
        flag = args.opt_bool(param)
        if flag is not None:
            stmt = stmt.where(flag_column.is_(flag))
    isready = args.opt_bool("isready")
    if isready is not None:
        stmt = stmt.where(ready if isready else TemplateStoreRef.download_state != tpl.DOWNLOADED)
    for cond in tag_conditions(args, T.ISO if is_iso else T.TEMPLATE, VMTemplate.id):
        stmt = stmt.where(cond)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(VMTemplate.name.ilike(pattern, escape="\\"))
    return stmt


def _pending_jobs(db: Session, template_ids: list[str]) -> dict[str, AsyncJob]:
    if not template_ids:
        return {}
    jobs = db.scalars(select(AsyncJob).where(AsyncJob.instance_type == "Template",
                                             AsyncJob.instance_id.in_(template_ids),
                                             AsyncJob.status == job_store.IN_PROGRESS)
                      .order_by(AsyncJob.queued_us))
    out: dict[str, AsyncJob] = {}
    for job in jobs:
        out.setdefault(job.instance_id or "", job)
    return out


def _list(ctx: CallContext, args: Args, filter_name: str, *, is_iso: bool) -> Result:
    rows, count = ctx.page(_filtered(ctx, args, filter_name, is_iso=is_iso), args)
    pending = _pending_jobs(ctx.db, [r.template_id for r in rows])
    tags = tag_map(ctx.db, T.ISO if is_iso else T.TEMPLATE, [r.template_id for r in rows])
    views = [template_view(r, pending.get(r.template_id), full=ctx.is_admin or r.template.account_id == ctx.account.id,
                           tags=tags.get(r.template_id, [])) for r in rows]
    return ListResult("iso" if is_iso else "template", views, count)


LIST_COMMON = [
    Param("id", "uuid", description="the template ID"),
    Param("name", description="the template name"),
    Param("zoneid", "uuid", description="list templates by zoneId"),
    Param("isready", "boolean", description="list only ready (or only not ready) templates"),
    Param("showunique", "boolean", description="one row per template instead of per zone"),
    Param("tags", "map", description="List resources by tags (key/value pairs)"),
]


@command("listTemplates", "List all public, private, and privileged templates", admin=False, listall=True,
         params=[Param("templatefilter", required=True, description="featured, self, selfexecutable, "
                       "sharedexecutable, executable, community or all"),
                 Param("hypervisor", description="the hypervisor for which to restrict the search"),
                 *LIST_COMMON], response=TEMPLATE_FIELDS)
def list_templates(ctx: CallContext, args: Args) -> Result:
    return _list(ctx, args, args.str("templatefilter").lower(), is_iso=False)


@command("listIsos", "Lists all available ISO files", admin=False, listall=True, params=[
    Param("isofilter", description="featured, self, selfexecutable, sharedexecutable, executable, community, all"),
    Param("bootable", "boolean", description="true if the ISO is bootable"),
    Param("ispublic", "boolean", description="true if the ISO is publicly available to all users"),
    *LIST_COMMON], response=TEMPLATE_FIELDS)
def list_isos(ctx: CallContext, args: Args) -> Result:
    return _list(ctx, args, (args.opt_str("isofilter") or "selfexecutable").lower(), is_iso=True)


# -- update, permissions, delete, copy ------------------------------------------------------------

def _owned(ctx: CallContext, args: Args, *, is_iso: bool, name: str = "id") -> VMTemplate:
    """The caller's own template (any, for admins). Another account's template, even a public one,
    gets the same answer as an id that does not exist, so the answer does not tell them apart."""
    template = ctx.require(args, VMTemplate, name)
    if (template.removed is not None or template.is_iso != is_iso
            or not ctx.may_act_for(template.account_id)):
        raise errors.entity_not_found(name, template.id)
    return template


def _first_ref(ctx: CallContext, template: VMTemplate) -> TemplateStoreRef:
    ref = ctx.db.scalars(select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)
                         .order_by(TemplateStoreRef.created)).first()
    if ref is None:
        raise errors.entity_not_found("id", template.id)
    return ref


def _update(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    template = _owned(ctx, args, is_iso=is_iso)
    for param, attr in (("name", "name"), ("displaytext", "display_text"), ("templatetag", "template_tag")):
        value = args.opt_str(param)
        if value is not None:
            if not value.strip():
                raise errors.param_error(f"{param} cannot be empty")
            setattr(template, attr, value)
    for param, flag_attr in (("bootable", "bootable"), ("passwordenabled", "password_enabled"),
                             ("sshkeyenabled", "sshkey_enabled"), ("requireshvm", "requires_hvm")):
        flag = args.opt_bool(param)
        if flag is not None:
            setattr(template, flag_attr, flag)
    if args.has("ostypeid"):
        template.os_type_id = ctx.require(args, OsType, "ostypeid").id
    fmt = args.opt_str("format")
    if fmt is not None and fmt.upper() != template.format:
        raise errors.param_error("The format of a registered template cannot be changed")
    details = map_as_key_values(args.map("details"))
    if details:
        template.details_json = json.dumps(details, sort_keys=True)
    ctx.db.flush()
    ctx.db.refresh(template)
    ctx.event("ISO.UPDATE" if is_iso else "TEMPLATE.UPDATE", f"Updating {template.name}",
              resource_type="Iso" if is_iso else "Template", resource_id=template.id)
    return ObjectResult("iso" if is_iso else "template", template_view(_first_ref(ctx, template)))


UPDATE_PARAMS = [
    Param("id", "uuid", required=True, description="the ID of the image file"),
    Param("name", description="the name of the image file"),
    Param("displaytext", length=4096, description="the display text of the image"),
    Param("ostypeid", "uuid", description="the ID of the OS type"),
    Param("bootable", "boolean", description="true if image is bootable"),
    Param("passwordenabled", "boolean", description="true if the image supports password reset"),
    Param("sshkeyenabled", "boolean", description="true if the template supports SSH key reset"),
    Param("requireshvm", "boolean", description="true if the template requires HVM"),
    Param("isdynamicallyscalable", "boolean", description="true if the template supports dynamic scaling"),
    Param("format", description="the format of the image (cannot be changed)"),
    Param("templatetag", description="the tag for this template"),
    Param("details", "map", description="details in key/value pairs"),
]


@command("updateTemplate", "Updates attributes of a template", admin=False, params=UPDATE_PARAMS,
         response=TEMPLATE_FIELDS)
def update_template(ctx: CallContext, args: Args) -> Result:
    return _update(ctx, args, is_iso=False)


@command("updateIso", "Updates an ISO file", admin=False, params=UPDATE_PARAMS, response=TEMPLATE_FIELDS)
def update_iso(ctx: CallContext, args: Args) -> Result:
    return _update(ctx, args, is_iso=True)


def _permissions(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    template = _owned(ctx, args, is_iso=is_iso)
    public, featured = args.opt_bool("ispublic"), args.opt_bool("isfeatured")
    if public is not None:
        template.is_public = public
    if featured is not None:
        if not ctx.is_admin:
            raise errors.permission_denied("Only administrators can feature templates")
        template.is_featured = featured
    extractable = args.opt_bool("isextractable")
    if extractable is not None:
        template.is_extractable = extractable
    return SuccessResult()


PERMISSION_PARAMS = [Param("id", "uuid", required=True, description="the template ID"),
                     Param("ispublic", "boolean", description="true for a public template"),
                     Param("isfeatured", "boolean", description="true for a featured template"),
                     Param("isextractable", "boolean", description="true if the template is extractable")]


@command("updateTemplatePermissions", "Updates a template's visibility", admin=False, params=PERMISSION_PARAMS)
def update_template_permissions(ctx: CallContext, args: Args) -> Result:
    return _permissions(ctx, args, is_iso=False)


@command("updateIsoPermissions", "Updates an ISO's visibility", admin=False, params=PERMISSION_PARAMS)
def update_iso_permissions(ctx: CallContext, args: Args) -> Result:
    return _permissions(ctx, args, is_iso=True)


def _delete(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    template = _owned(ctx, args, is_iso=is_iso)
    zone_id = args.opt_str("zoneid")
    if zone_id is not None:
        ctx.get(Zone, "zoneid", zone_id)
    ctx.event("ISO.DELETE" if is_iso else "TEMPLATE.DELETE", f"Deleting {template.name}",
              resource_type="Iso" if is_iso else "Template", resource_id=template.id)
    return submit_job(ctx, template_jobs.JOB_DELETE, {"template_id": template.id, "zone_id": zone_id},
                      instance_type="Template", instance_id=template.id, object_key=_object_key(template.id))


DELETE_PARAMS = [Param("id", "uuid", required=True, description="the ID of the template"),
                 Param("zoneid", "uuid", description="the zone to delete it from (default: all zones)"),
                 Param("forced", "boolean", description="delete even if VMs use it")]


@command("deleteTemplate", "Deletes a template from the system", admin=False, isasync=True,
         params=DELETE_PARAMS)
def delete_template(ctx: CallContext, args: Args) -> Result:
    return _delete(ctx, args, is_iso=False)


@command("deleteIso", "Deletes an ISO file", admin=False, isasync=True, params=DELETE_PARAMS)
def delete_iso(ctx: CallContext, args: Args) -> Result:
    return _delete(ctx, args, is_iso=True)


def _copy(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    template = _owned(ctx, args, is_iso=is_iso)
    source_id = args.opt_str("sourcezoneid")
    refs = list(ctx.db.scalars(select(TemplateStoreRef).where(TemplateStoreRef.template_id == template.id)))
    sources = [r for r in refs if r.download_state == tpl.DOWNLOADED and source_id in (None, r.zone_id)]
    if not sources:
        raise errors.param_error("The template is not ready in the source zone")
    dest_ids = args.list("destzoneids") or ([args.str("destzoneid")] if args.has("destzoneid") else [])
    if not dest_ids:
        raise errors.missing_parameter(ctx.command, "destzoneid")
    if len(dest_ids) > 1:
        raise errors.param_error("copy to one destination zone at a time")
    dest = ctx.get(Zone, "destzoneid", dest_ids[0])
    if any(r.zone_id == dest.id for r in refs):
        raise errors.param_error(f"The template is already in zone {dest.name}")
    dst_ref = _add_ref(ctx, template, dest, tpl.NOT_DOWNLOADED)
    ctx.event("ISO.COPY" if is_iso else "TEMPLATE.COPY", f"Copying {template.name} to zone {dest.name}",
              resource_type="Iso" if is_iso else "Template", resource_id=template.id)
    return submit_job(ctx, template_jobs.JOB_COPY,
                      {"src_ref_id": sources[0].id, "dst_ref_id": dst_ref.id, "iso": is_iso},
                      instance_type="Template", instance_id=template.id, object_key=_object_key(template.id))


COPY_PARAMS = [Param("id", "uuid", required=True, description="the template ID"),
               Param("sourcezoneid", "uuid", description="the ID of the zone the template is currently in"),
               Param("destzoneid", "uuid", description="the ID of the zone the template is being copied to"),
               Param("destzoneids", "list", description="the destination zones (one supported)")]


@command("copyTemplate", "Copies a template from one zone to another", admin=False, isasync=True,
         params=COPY_PARAMS, response=TEMPLATE_FIELDS)
def copy_template(ctx: CallContext, args: Args) -> Result:
    return _copy(ctx, args, is_iso=False)


@command("copyIso", "Copies an ISO from one zone to another", admin=False, isasync=True, params=COPY_PARAMS,
         response=TEMPLATE_FIELDS)
def copy_iso(ctx: CallContext, args: Args) -> Result:
    return _copy(ctx, args, is_iso=True)


# -- upload ---------------------------------------------------------------------------------------

def upload_signature(key: bytes, ref_id: str, metadata: str, expires: str) -> str:
    mac = hmac.new(key, f"{ref_id}\n{metadata}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _upload_params(ctx: CallContext, args: Args, *, is_iso: bool) -> Result:
    fmt = "ISO" if is_iso else args.str("format").upper()
    if fmt not in TEMPLATE_FORMATS and not is_iso:
        raise errors.param_error(f"Format {fmt[:16]} is not supported; use one of {', '.join(TEMPLATE_FORMATS)}")
    zone = ctx.require(args, Zone, "zoneid")
    template = _new_template(ctx, args, fmt=fmt, is_iso=is_iso, url=None, cross_zones=False)
    ref = _add_ref(ctx, template, zone, tpl.NOT_UPLOADED)
    expires_at = datetime.now(UTC) + timedelta(seconds=ctx.state.config.upload_url_ttl_seconds)
    expires = format_date(expires_at)
    metadata = base64.b64encode(json.dumps({"ref": ref.id, "template": template.id,
                                            "expires": int(expires_at.timestamp())}).encode()).decode()
    signature = upload_signature(ctx.state.box.derive_key(UPLOAD_PURPOSE), ref.id, metadata, expires)
    ctx.event("ISO.UPLOAD" if is_iso else "TEMPLATE.UPLOAD", f"Upload of {template.name} requested",
              resource_type="Iso" if is_iso else "Template", resource_id=template.id)
    return RawResult({"getuploadparams": {
        "id": template.id, "postURL": f"{ctx.state.config.base_url}/upload/template/{ref.id}",
        "metadata": metadata, "expires": expires, "signature": signature}})


UPLOAD_PARAMS = [
    Param("name", required=True, description="the name of the template"),
    Param("displaytext", length=4096, description="the display text of the template"),
    Param("zoneid", "uuid", required=True, description="the ID of the zone the template is to be hosted on"),
    Param("ostypeid", "uuid", description="the ID of the OS type"),
    Param("ispublic", "boolean", description="true if the template is available to all accounts"),
    Param("isfeatured", "boolean", description="true if the template is featured"),
    Param("isextractable", "boolean", description="true if the template may be downloaded"),
    Param("checksum", description="the checksum: {ALGORITHM}hex or a plain MD5 hex digest"),
]


@command("getUploadParamsForTemplate", "Upload an existing template into the CloudStack cloud", admin=False,
         params=[*UPLOAD_PARAMS, Param("format", required=True, description="QCOW2, RAW, VHD or VHDX"),
                 Param("hypervisor", required=True, description="the target hypervisor for the template"),
                 Param("passwordenabled", "boolean", description="true if the template supports passwords"),
                 Param("sshkeyenabled", "boolean", description="true if the template supports SSH keys"),
                 Param("requireshvm", "boolean", description="true if this template requires HVM"),
                 Param("bits", "integer", description="32 or 64 bits support"),
                 Param("details", "map", description="template details in key/value pairs")],
         response=("id", "postURL", "metadata", "expires", "signature"))
def get_upload_params_for_template(ctx: CallContext, args: Args) -> Result:
    return _upload_params(ctx, args, is_iso=False)


@command("getUploadParamsForIso", "Upload an existing ISO into the CloudStack cloud", admin=False,
         params=[*UPLOAD_PARAMS, Param("bootable", "boolean", description="true if this ISO is bootable")],
         response=("id", "postURL", "metadata", "expires", "signature"))
def get_upload_params_for_iso(ctx: CallContext, args: Args) -> Result:
    return _upload_params(ctx, args, is_iso=True)
