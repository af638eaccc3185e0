"""listHypervisors, listOsTypes, listOsCategories."""

from __future__ import annotations

from sqlalchemy import select

from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.api.views import ostype_view
from hvcloud.server.db.models import Cluster, OsCategory, OsType
from hvcloud.server.orchestration.catalog import HYPERVISORS

command = REGISTRY.command


@command("listHypervisors", "List hypervisors", admin=False, params=[
    Param("zoneid", "uuid", description="the zone id for listing hypervisors")], response=("name",))
def list_hypervisors(ctx: CallContext, args: Args) -> Result:
    zone_id = args.opt_str("zoneid")
    names: list[str] = list(HYPERVISORS)
    if zone_id is not None:
        in_zone = set(ctx.db.scalars(select(Cluster.hypervisor).where(Cluster.zone_id == zone_id)))
        names = [n for n in names if n in in_zone]
    return ListResult("hypervisor", [{"name": n} for n in names], len(names))


@command("listOsTypes", "Lists all supported OS types for this cloud", admin=False, params=[
    Param("id", "uuid", description="list by Os type Id"),
    Param("oscategoryid", "uuid", description="list by Os Category id"),
    Param("description", description="list os by description"),
], response=("id", "description", "oscategoryid"))
def list_os_types(ctx: CallContext, args: Args) -> Result:
    stmt = select(OsType).order_by(OsType.description)
    for param, column in (("id", OsType.id), ("oscategoryid", OsType.category_id),
                          ("description", OsType.description)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(OsType.description.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("ostype", [ostype_view(o) for o in rows], count)


@command("listOsCategories", "Lists all supported OS categories for this cloud", admin=False, params=[
    Param("id", "uuid", description="list Os category by id"),
    Param("name", description="list os category by name"),
], response=("id", "name"))
def list_os_categories(ctx: CallContext, args: Args) -> Result:
    stmt = select(OsCategory).order_by(OsCategory.name)
    for param, column in (("id", OsCategory.id), ("name", OsCategory.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(OsCategory.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    return ListResult("oscategory", [{"id": c.id, "name": c.name} for c in rows], count)
