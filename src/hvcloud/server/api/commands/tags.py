"""Resource tags: createTags, deleteTags (async in CloudStack) and listTags.

Both changes are one database transaction, checked and written in the request (a refusal changes
nothing); they answer CloudStack's ``{jobid}`` with a job recorded as already finished. The rules
(types, owners, limits) are in :mod:`hvcloud.server.orchestration.resource_tags`.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from hvcloud.server.api import errors
from hvcloud.server.api.asyncjobs import run_inline
from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result, SuccessResult
from hvcloud.server.api.tag_filter import tag_pairs
from hvcloud.server.db.models import ResourceTag
from hvcloud.server.orchestration import resource_tags as T
from hvcloud.server.views.tags import tag_views

command = REGISTRY.command

TAG_FIELDS = ("key", "value", "resourcetype", "resourceid", "account", "domainid", "domain", "customer")
#: CloudStack's resourceids is a list of ids: bounded by the parameter's length (64 KiB)
RESOURCE_PARAMS = (
    Param("resourceids", "list", required=True, length=65536, description="list of resources to create the tags for"),
    Param("resourcetype", required=True, length=64, description="type of the resource"),
)


def _caller(ctx: CallContext) -> T.Caller:
    return T.Caller(ctx.user, ctx.is_admin)


@command("createTags", "Creates resource tag(s)", admin=False, isasync=True, params=[
    Param("tags", "map", required=True, description="Map of tags (key/value pairs)"),
    *RESOURCE_PARAMS,
    Param("customer", length=T.MAX_CUSTOMER, description="identifies client specific tag. When the value is not "
          "null, the tag can't be used by cloudStack code internally"),
])
def create_tags(ctx: CallContext, args: Args) -> Result:
    resource_type = T.taggable_type(args.str("resourcetype"))
    T.create_tags(ctx.db, _caller(ctx), resource_type, args.list("resourceids"), tag_pairs(args),
                  args.opt_str("customer"))
    return run_inline(ctx, SuccessResult())


@command("deleteTags", "Deleting resource tag(s)", admin=False, isasync=True, params=[
    Param("tags", "map", description="Delete tags matching key/value pairs"),
    *RESOURCE_PARAMS,
])
def delete_tags(ctx: CallContext, args: Args) -> Result:
    resource_type = T.taggable_type(args.str("resourcetype"))
    if not T.delete_tags(ctx.db, _caller(ctx), resource_type, args.list("resourceids"), tag_pairs(args)):
        raise errors.internal("Failed to delete tags")
    return run_inline(ctx, SuccessResult())


@command("listTags", "List resource tag(s)", admin=False, listall=True, params=[
    Param("resourcetype", length=64, description="list by resource type"),
    Param("resourceid", description="list by resource id"),
    Param("key", description="list by key"),
    Param("value", description="list by value"),
    Param("customer", description="list by customer name"),
    Param("account", description="list resources by account. Must be used with the domainId parameter."),
    Param("domainid", "uuid", description="list only resources belonging to the domain specified"),
    Param("isrecursive", "boolean", description="with domainid: the domain's sub-domains too"),
    Param("projectid", "uuid", description="list objects by project; -1: of all the caller's projects"),
], response=TAG_FIELDS)
def list_tags(ctx: CallContext, args: Args) -> Result:
    stmt = select(ResourceTag.id)
    owner = ctx.owner_and_domain_filter(ResourceTag.account_id, ResourceTag.domain_id, args)
    if owner is not None:
        stmt = stmt.where(owner)
    resource_type = args.opt_str("resourcetype")
    if resource_type is not None:
        stmt = stmt.where(ResourceTag.resource_type == T.known_type(resource_type))
    resource_id = args.opt_str("resourceid")
    if resource_id is not None:
        stmt = stmt.where(ResourceTag.resource_id == resource_id.strip().lower())
    for param, column in (("key", ResourceTag.key), ("value", ResourceTag.value),
                          ("customer", ResourceTag.customer)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern is not None:
        stmt = stmt.where(or_(ResourceTag.key.ilike(pattern, escape="\\"),
                              ResourceTag.value.ilike(pattern, escape="\\")))
    ids, count = ctx.page(stmt.order_by(ResourceTag.created, ResourceTag.id), args)
    return ListResult("tag", tag_views(ctx.db, ids), count)

