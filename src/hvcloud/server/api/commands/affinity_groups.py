"""Affinity groups: create, delete, list, their types, and a Stopped VM's groups (updateVMAffinityGroup).

The async commands do their work in the request's transaction (a refusal changes nothing) and answer
CloudStack's ``{jobid}`` with a job recorded as already finished. The rules are in
:mod:`hvcloud.server.orchestration.affinity_groups`; the planner honours the groups on every start.
Affinity groups are not taggable (CloudStack has no ``AffinityGroup`` resource tag type).
"""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import LIST_OWNER_PARAMS, OWNER_PARAMS, REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import AffinityGroup, AffinityGroupVmMap, VMInstance
from hvcloud.server.orchestration import affinity_groups as AG
from hvcloud.server.orchestration.vm.access import visible_vm
from hvcloud.server.views.affinity_groups import group_views, type_views
from hvcloud.server.views.vms import vm_view

command = REGISTRY.command

GROUP_FIELDS = ("id", "name", "description", "type", "account", "domainid", "domain", "virtualmachineIds")
VM_GROUP_PARAMS = (
    Param("affinitygroupids", "list", length=8192, description="comma separated list of affinity groups id that "
          "are going to be applied to the virtual machine. Mutually exclusive with affinitygroupnames parameter"),
    Param("affinitygroupnames", "list", length=8192, description="comma separated list of affinity groups names "
          "that are going to be applied to the virtual machine. Mutually exclusive with affinitygroupids parameter"),
)



def _group(ctx: CallContext, args: Args) -> AffinityGroup:
    """The group deleteAffinityGroup names by ``id`` or (in the owner's account) by ``name``."""
    group_id, name = args.opt_str("id"), args.opt_str("name")
    if group_id is not None and name is not None:
        raise errors.param_error("Invalid name: id and name are mutually exclusive")
    if group_id is not None:
        if args.has("account") or args.has("domainid") or args.has("projectid"):
            ctx.owner_for(args)  # the caller may act for that account
        group = ctx.db.get(AffinityGroup, group_id)
        if group is None or not ctx.may_act_for(group.account_id):
            raise errors.param_error(f"Unable to find affinity group {group_id[:64]}")
        return group
    if name is None:
        raise errors.param_error("Either the affinity group Id or group name must be specified to delete the group")
    owner = ctx.owner_for(args)
    found = AG.find_group(ctx.db, owner.id, name)
    if found is None:
        raise errors.param_error(f"Unable to find affinity group {name[:64]}")
    return found


@command("createAffinityGroup", "Creates an affinity/anti-affinity group", admin=False, isasync=True, params=[
    Param("name", required=True, description="name of the affinity group"),
    Param("type", required=True, length=64, description="Type of the affinity group from the available "
          "affinity/anti-affinity group types"),
    Param("description", length=4096, description="optional description of the affinity group"),
    *OWNER_PARAMS,
], response=GROUP_FIELDS)
def create_affinity_group(ctx: CallContext, args: Args) -> Result:
    owner = ctx.owner_for(args)
    group = AG.create_group(ctx.db, ctx.user, owner, args.str("name"), args.str("type"), args.opt_str("description"))
    return run_inline(ctx, ObjectResult("affinitygroup", group_views(ctx.db, [group.id])[0]),
                      instance_type="AffinityGroup", instance_id=group.id, create=True)


@command("deleteAffinityGroup", "Deletes affinity group", admin=False, isasync=True, params=[
    Param("id", "uuid", description="The ID of the affinity group. Mutually exclusive with name parameter"),
    Param("name", description="The name of the affinity group. Mutually exclusive with ID parameter"),
    *OWNER_PARAMS,
])
def delete_affinity_group(ctx: CallContext, args: Args) -> Result:
    group = _group(ctx, args)
    AG.delete_group(ctx.db, ctx.user, group)
    return run_inline(ctx, SuccessResult(), instance_type="AffinityGroup", instance_id=group.id)


@command("listAffinityGroups", "Lists affinity groups", admin=False, listall=True, params=[
    Param("id", "uuid", description="list the affinity group by the ID provided"),
    Param("name", description="lists affinity groups by name"),
    Param("type", length=64, description="lists affinity groups by type"),
    Param("virtualmachineid", "uuid", description="lists affinity groups by virtual machine ID"),
    *LIST_OWNER_PARAMS,
], response=GROUP_FIELDS)
def list_affinity_groups(ctx: CallContext, args: Args) -> Result:
    stmt = select(AffinityGroup.id)
    owner = ctx.owner_and_domain_filter(AffinityGroup.account_id, AffinityGroup.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", AffinityGroup.id), ("name", AffinityGroup.name),
                          ("type", AffinityGroup.group_type)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    vm_id = args.opt_str("virtualmachineid")
    if vm_id is not None:
        vm = visible_vm(ctx.db, ctx.user, vm_id, "virtualmachineid")
        stmt = stmt.where(AffinityGroup.id.in_(select(AffinityGroupVmMap.affinity_group_id)
                                               .where(AffinityGroupVmMap.vm_id == vm.id)))
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(AffinityGroup.name.ilike(pattern, escape="\\"),
                              AffinityGroup.description.ilike(pattern, escape="\\")))
    ids, count = ctx.page(stmt.order_by(AffinityGroup.created, AffinityGroup.id), args)
    return ListResult("affinitygroup", group_views(ctx.db, ids), count)


@command("listAffinityGroupTypes", "Lists affinity group types available", admin=False, params=[],
         response=("type",))
def list_affinity_group_types(ctx: CallContext, args: Args) -> Result:
    types, count = ctx.page_list(list(AG.TYPES), args)
    return ListResult("affinityGroupType", type_views(types), count)


@command("updateVMAffinityGroup", "Updates the affinity/anti-affinity group associations of a virtual machine. "
         "The VM has to be stopped and restarted for the new properties to take effect.", admin=False,
         isasync=True, params=[
    Param("id", "uuid", required=True, description="The ID of the virtual machine"),
    *VM_GROUP_PARAMS,
], response=("id", "name", "state", "affinitygroup"))
def update_vm_affinity_group(ctx: CallContext, args: Args) -> Result:
    vm: VMInstance = visible_vm(ctx.db, ctx.user, args.str("id"), "id")
    groups = AG.resolve(ctx.db, vm.account, args.list("affinitygroupids"), args.list("affinitygroupnames"))
    AG.update_vm_groups(ctx.db, ctx.user, vm, groups)
    return run_inline(ctx, ObjectResult("virtualmachine", vm_view(ctx.db, vm)), instance_type="VirtualMachine",
                      instance_id=vm.id)
