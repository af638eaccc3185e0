"""A server plugin (``--plugin host_test_plugin``) that sends one wire command through the server's
AgentManager, whoever owns the host: the failover tests use it to show that a server can command a
host another live server pings."""

from __future__ import annotations

from hvcloud.server.api import errors
from hvcloud.server.api.context import CallContext
from hvcloud.server.api.registry import REGISTRY, Args, Param
from hvcloud.server.api.results import ObjectResult, Result
from hvcloud.server.orchestration.agents import AgentError
from hvcloud.wire import commands as C


@REGISTRY.command("testHostHealth", "Test only: CheckHealthCommand to a host through this server", params=[
    Param("hostid", "uuid", required=True)])
def test_host_health(ctx: CallContext, args: Args) -> Result:
    manager = ctx.state.agents
    if manager is None:
        raise errors.unavailable("no agent manager")
    host_id = args.str("hostid")
    ctx.db.commit()
    try:
        answer = manager.send_sync(host_id, C.CheckHealthCommand(), wait=10)
    except AgentError as exc:
        raise errors.internal(f"{type(exc).__name__}: {exc}") from None
    return ObjectResult("health", {"result": answer.result, "owned": host_id in manager.owned_host_ids(),
                                   "remotesends": manager.stats.remote_sends})
