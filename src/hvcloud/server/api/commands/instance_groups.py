"""Instance groups: create, update (rename), delete and list an account's VM groups.

A VM joins a group through the ``group`` name of deployVirtualMachine/updateVirtualMachine (the group
is made when the account has none of that name); its answer shows ``group`` and ``groupid``, and
listVirtualMachines filters on ``groupid``. Rules: :mod:`hvcloud.server.orchestration.instance_groups`.
"""

from __future__ import annotations

from sqlalchemy import select

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import LIST_OWNER_PARAMS, REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, ObjectResult, Result, SuccessResult
from hvcloud.server.db.models import InstanceGroup
from hvcloud.server.orchestration import instance_groups as IG
from hvcloud.server.views.instance_groups import group_view, group_views

command = REGISTRY.command

GROUP_FIELDS = ("id", "name", "created", "account", "domainid", "domain")



def _visible_group(ctx: CallContext, args: Args) -> InstanceGroup:
    """The group ``id`` if the caller may change it (its own, or any for admins); else 431 as if it
    did not exist."""
    group_id = args.str("id")
    group = ctx.db.get(InstanceGroup, group_id)
    if group is None or not ctx.may_act_for(group.account_id):
        raise errors.entity_not_found("id", group_id)
    return group


@command("createInstanceGroup", "Creates a vm group", admin=False, params=[
    Param("name", required=True, description="the name of the instance group"),
    Param("account", description="the account of the instance group. The account parameter must be used with "
          "the domainId parameter."),
    Param("domainid", "uuid", description="the domain ID of account owning the instance group"),
    Param("projectid", "uuid", description="The project of the instance group"),
], response=GROUP_FIELDS)
def create_instance_group(ctx: CallContext, args: Args) -> Result:
    owner = ctx.owner_for(args)
    group = IG.create_group(ctx.db, ctx.user, owner, args.str("name"))
    return ObjectResult("instancegroup", group_view(ctx.db, group))


@command("updateInstanceGroup", "Updates a vm group", admin=False, params=[
    Param("id", "uuid", required=True, description="Instance group ID"),
    Param("name", description="new instance group name"),
], response=GROUP_FIELDS)
def update_instance_group(ctx: CallContext, args: Args) -> Result:
    group = _visible_group(ctx, args)
    name = args.opt_str("name")
    if name is not None:
        IG.rename_group(ctx.db, group, name)
    return ObjectResult("instancegroup", group_view(ctx.db, group))


@command("deleteInstanceGroup", "Deletes a vm group", admin=False, params=[
    Param("id", "uuid", required=True, description="the ID of the instance group"),
])
def delete_instance_group(ctx: CallContext, args: Args) -> Result:
    group = _visible_group(ctx, args)
    IG.delete_group(ctx.db, ctx.user, group)
    return SuccessResult()


@command("listInstanceGroups", "Lists vm groups", admin=False, listall=True, params=[
    Param("id", "uuid", description="list instance groups by ID"),
    Param("name", description="list instance groups by name"),
    *LIST_OWNER_PARAMS,
], response=GROUP_FIELDS)
def list_instance_groups(ctx: CallContext, args: Args) -> Result:
    stmt = select(InstanceGroup.id)
    owner = ctx.owner_and_domain_filter(InstanceGroup.account_id, InstanceGroup.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    for param, column in (("id", InstanceGroup.id), ("name", InstanceGroup.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(InstanceGroup.name.ilike(pattern, escape="\\"))
    ids, count = ctx.page(stmt.order_by(InstanceGroup.created, InstanceGroup.id), args)
    return ListResult("instancegroup", group_views(ctx.db, ids), count)
