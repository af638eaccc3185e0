"""listManagementServers: the servers sharing this database, with the hosts and jobs each holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hvcloud.server.api.context import CallContext, keyword_pattern
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ListResult, Result
from hvcloud.server.db.models import ManagementServer
from hvcloud.server.jobs import leases, store
from hvcloud.server.orchestration.resources import management_servers
from hvcloud.server.views.fields import compact

command = REGISTRY.command


def management_server_view(row: ManagementServer, *, alive: bool, hosts: int, jobs: int) -> dict[str, Any]:
    """CloudStack's ManagementServerResponse; ``state`` follows the lease (a server past its lease
    is ``Down`` even before a peer has marked it so)."""
    return compact({"id": row.id, "name": row.name, "state": leases.STATE_UP if alive else leases.STATE_DOWN,
                    "version": row.version, "lastserverstart": row.started, "lastserverstop": row.stopped,
                    "agentscount": hosts, "pendingjobscount": jobs})


@command("listManagementServers", "Lists management servers.", params=[
    Param("id", "uuid", description="the id of the management server"),
    Param("name", description="the name of the management server"),
], response=("id", "name", "state", "version", "lastserverstart", "lastserverstop", "agentscount"))
def list_management_servers(ctx: CallContext, args: Args) -> Result:
    stmt = select(ManagementServer).order_by(ManagementServer.started, ManagementServer.id)
    for param, column in (("id", ManagementServer.id), ("name", ManagementServer.name)):
        value = args.opt_str(param)
        if value is not None:
            stmt = stmt.where(column == value)
    pattern = keyword_pattern(args)
    if pattern:
        stmt = stmt.where(ManagementServer.name.ilike(pattern, escape="\\"))
    rows, count = ctx.page(stmt, args)
    load = management_servers.loads(ctx.db, [r.id for r in rows])
    now, lease = store.precise_now(), ctx.state.config.lease_seconds
    return ListResult("managementserver", [
        management_server_view(r, alive=leases.is_alive(r.state, r.heartbeat, now, lease),
                               hosts=load.hosts.get(r.id, 0), jobs=load.running_jobs.get(r.id, 0))
        for r in rows], count)
