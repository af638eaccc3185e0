"""``listCapacity``: memory, CPU and storage per zone (or pod/cluster), from what the agents report."""

from __future__ import annotations

from typing import Any

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.db.models import Cluster, Pod, Zone
from hvcloud.server.orchestration import capacity
from hvcloud.server.views.fields import compact

command = REGISTRY.command


def _view(ctx: CallContext, entry: capacity.CapacityEntry, names: dict[tuple[type[Any], str], str]) -> dict[str, Any]:
    def name_of(model: type[Any], row_id: str | None) -> str | None:
        if row_id is None:
            return None
        key = (model, row_id)
        if key not in names:
            row = ctx.db.get(model, row_id)
            names[key] = row.name if row is not None else ""
        return names[key] or None

    s = entry.scope
    return compact({"type": entry.capacity_type, "name": capacity.CAPACITY_NAMES[entry.capacity_type],
                    "zoneid": s.zone_id, "zonename": name_of(Zone, s.zone_id), "podid": s.pod_id,
                    "podname": name_of(Pod, s.pod_id), "clusterid": s.cluster_id,
                    "clustername": name_of(Cluster, s.cluster_id), "capacitytotal": entry.total,
                    "capacityused": entry.used, "percentused": entry.percent_used})


@command("listCapacity", "Lists all the system wide capacities.", params=[
    Param("zoneid", "uuid", description="lists capacity by the Zone ID"),
    Param("podid", "uuid", description="lists capacity by the Pod ID"),
    Param("clusterid", "uuid", description="lists capacity by the Cluster ID"),
    Param("type", "integer", description="lists capacity by type"),
    Param("fetchlatest", "boolean", description="recalculate capacities and fetch the latest"),
    Param("sortby", description="sort by usage (only 'usage' is supported)"),
])
def list_capacity(ctx: CallContext, args: Args) -> Result:
    for name, model in (("zoneid", Zone), ("podid", Pod), ("clusterid", Cluster)):
        ctx.optional(args, model, name)
    sortby = args.opt_str("sortby")
    if sortby is not None and sortby.lower() != "usage":
        raise errors.param_error("sortby must be usage")
    entries = capacity.compute(ctx.db, zone_id=args.opt_str("zoneid"), pod_id=args.opt_str("podid"),
                               cluster_id=args.opt_str("clusterid"))
    kind = args.opt_int("type")
    if kind is not None:
        entries = [e for e in entries if e.capacity_type == kind]
    if sortby is not None:
        entries.sort(key=lambda e: -(e.used / e.total if e.total else 0.0))
    names: dict[tuple[type[Any], str], str] = {}
    items = [_view(ctx, e, names) for e in entries]
    page, pagesize = args.opt_int("page"), args.opt_int("pagesize")
    if page is not None and pagesize is not None and pagesize > 0 and page > 0:
        items = items[(page - 1) * pagesize: page * pagesize]
    return ListResult("capacity", items, len(entries))
