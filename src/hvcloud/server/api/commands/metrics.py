"""CloudStack's metrics plugin: listVirtualMachinesMetrics, listVolumesMetrics (every role),
listHostsMetrics and listZonesMetrics (admins).

Each runs its base list command (the same parameters, filtering, visibility and paging) and adds the
metrics fields to the page it answered (``views.metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hvcloud.server.api.commands.hosts import HOST_FIELDS, list_hosts
from hvcloud.server.api.commands.vms import VM_FIELDS, list_vms
from hvcloud.server.api.commands.volumes import VOLUME_FIELDS, list_volumes
from hvcloud.server.api.commands.zones import ZONE_FIELDS, list_zones
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import LIST_PARAMS, LISTALL_PARAM, REGISTRY, Args, Handler
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.views import metrics

Enrich = Callable[[CallContext, list[dict[str, Any]]], None]


def _metrics_command(base_name: str, base: Handler, name: str, description: str, fields: tuple[str, ...],
                     enrich: Enrich, *, admin: bool) -> None:
    """Register ``name`` with ``base_name``'s parameters, answering what ``base`` answers plus
    what ``enrich`` adds to each object."""
    spec = REGISTRY.get(base_name)
    if spec is None:
        raise RuntimeError(f"{base_name} must be registered before {name}")
    own = tuple(p for p in spec.params if p not in LIST_PARAMS and p != LISTALL_PARAM)

    def handler(ctx: CallContext, args: Args) -> Result:
        result = base(ctx, args)
        if isinstance(result, ListResult):
            enrich(ctx, result.items)
        return result

    REGISTRY.command(name, description, params=own, admin=admin, listall=LISTALL_PARAM in spec.params,
                     response=fields)(handler)


_metrics_command(
    "listVirtualMachines", list_vms, "listVirtualMachinesMetrics", "Lists VM metrics",
    (*VM_FIELDS, "ipaddress", "cputotal", "cpuused", "memorytotal", "networkread", "networkwrite", "diskread",
     "diskwrite", "diskiopstotal"),
    lambda ctx, items: metrics.add_vm_metrics(ctx.db, items), admin=False)
_metrics_command(
    "listVolumes", list_volumes, "listVolumesMetrics", "Lists volume metrics",
    (*VOLUME_FIELDS, "sizegb", "diskiopstotal"),
    lambda ctx, items: metrics.add_volume_metrics(items, admin=ctx.is_admin), admin=False)
_metrics_command(
    "listHosts", list_hosts, "listHostsMetrics", "Lists hosts metrics",
    (*HOST_FIELDS, "powerstate", "instances", "cputotalghz", "cpuusedghz", "cpuallocatedghz", "memorytotalgb",
     "memoryusedgb", "memoryallocatedgb", "networkread", "networkwrite", "cputhreshold", "cpudisablethreshold",
     "cpuallocatedthreshold", "cpuallocateddisablethreshold", "memorythreshold", "memorydisablethreshold",
     "memoryallocatedthreshold", "memoryallocateddisablethreshold"),
    lambda ctx, items: metrics.add_host_metrics(ctx.db, ctx.state.config, items), admin=True)
_metrics_command(
    "listZones", list_zones, "listZonesMetrics", "Lists zone metrics",
    (*ZONE_FIELDS, "state", "clusters", "cputotal", "cpuused", "cpuallocated", "cpumaxdeviation", "memorytotal",
     "memoryused", "memoryallocated", "memorymaxdeviation", "cputhreshold", "cpudisablethreshold",
     "cpuallocatedthreshold", "cpuallocateddisablethreshold", "memorythreshold", "memorydisablethreshold",
     "memoryallocatedthreshold", "memoryallocateddisablethreshold"),
    lambda ctx, items: metrics.add_zone_metrics(ctx.db, ctx.state.config, items), admin=True)
