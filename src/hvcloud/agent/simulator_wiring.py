"""The simulator's wiring into the agent: simulated hosts, their fault injection, its endpoint.

Only :mod:`hvcloud.agent.drivers` imports this module, when the simulator driver is asked for; the
agent core (app, dispatch, context, service) knows neither the simulator nor fault injection.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import signal
from pathlib import Path
from typing import Any

from starlette.responses import PlainTextResponse, Response

from hvcloud import logs
from hvcloud.agent.app import ControlEndpoint
from hvcloud.agent.config import AgentConfig, ConfigError
from hvcloud.agent.context import HostContext
from hvcloud.agent.dispatch import Handler, HookVerdict
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatedCluster, SimulatorDriver
from hvcloud.hypervisor.simulator.faults import FaultPlan, FaultPlanError
from hvcloud.router.api import RouterHost
from hvcloud.storage.simulated import SharedPools, SimulatedStorage
from hvcloud.wire import codec

log = logs.get("hvcloud.agent.dispatch")
GiB = 1024**3


class FaultHook:
    """Applies the host's fault plan to each command: delay or hang it, fail it without running
    it, or run it and kill the agent before its answer leaves (``exit``)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    async def before(self, ctx: HostContext, handler: Handler) -> HookVerdict | None:
        fault = self.plan.take(handler.short)
        if fault is None:
            return None
        if fault.mode in ("delay", "hang"):
            await asyncio.sleep(fault.seconds)
        if fault.mode == "fail":
            return HookVerdict(answer=handler.answer(result=False, details=f"{handler.short} failed: {fault.message}"))
        if fault.mode == "exit":
            return HookVerdict(then=lambda answer: _die_before_answering(handler))
        return None


def _die_before_answering(handler: Handler) -> None:
    log.warning("injected fault: the agent dies before answering", command=handler.short)
    os.kill(os.getpid(), signal.SIGKILL)


def sim_addresses(config: AgentConfig) -> list[str]:
    first = config.sim_first_address or config.host_address
    try:
        start = ipaddress.ip_address(first)
    except ValueError:
        raise ConfigError(f"simulator address {first!r} is not an IP address") from None
    return [str(start + i) for i in range(config.sim_hosts)]


def simulated_hosts(config: AgentConfig) -> list[HostContext]:
    """One simulated host per address, sharing one cluster and one set of shared pools; each
    reads its fault plan from ``faults.json`` in its data directory."""
    cluster = SimulatedCluster()
    shared = SharedPools()
    hosts = []
    addresses = sim_addresses(config)
    for addr in addresses:
        hdir = config.data_dir if len(addresses) == 1 else config.data_dir / "hosts" / addr
        profile = HostProfile(address=addr, cpus=config.sim_cpus, memory_bytes=config.sim_memory_gib * GiB)
        driver = SimulatorDriver(hdir, profile, cluster)
        storage = SimulatedStorage(hdir, driver.local_pool(), shared=shared)
        hosts.append(HostContext(addr, driver, storage, hdir, hooks=[FaultHook(FaultPlan(hdir / "faults.json"))],
                                 stop_timeout=config.stop_timeout, routers=simulated_routers(hdir / "routers")))
    return hosts


def simulated_routers(state_dir: Path) -> RouterHost | None:
    """A simulated host's virtual routers, in memory and in ``state_dir`` (so an agent restart
    finds them); None when the simulated router runtime is not installed."""
    cls = _simulated_router_class()
    if cls is None:
        return None
    routers: RouterHost = cls(state_dir)
    return routers


@functools.cache
def _simulated_router_class() -> Any:
    try:
        from hvcloud.router.simulated import SimulatedRouterHost  # type: ignore[import-not-found]
    except ImportError as exc:
        log.warning("no simulated router runtime", reason=str(exc))
        return None
    return SimulatedRouterHost


def set_faults(ctx: HostContext, body: bytes) -> Response:
    """``POST /simulator/faults``: replace the host's fault plan."""
    plan = next((h.plan for h in ctx.hooks if isinstance(h, FaultHook)), None)
    if plan is None:
        return PlainTextResponse("this host has no fault injection", status_code=404)
    try:
        plan.set(codec.decode_json(body))
    except (codec.WireError, FaultPlanError) as exc:
        return PlainTextResponse(str(exc), status_code=400)
    return PlainTextResponse("ok")


CONTROL = (ControlEndpoint("/simulator/faults", set_faults),)
