"""Ping loop cost: N hosts served by one simulator agent process, pinged by an in-process AgentManager.

Prints the time to add the hosts (addHost through the API, SQLite), then, over a fixed window with
``ping.interval`` = 1 s, the pings completed per second against the ideal N per second, the
manager's CPU time per ping, and, as the baseline measured in the same run, one client pinging one
host back to back (HostVmStateReport + PingRoutingCommand). Usage:
``python -m bench.agent_manager [HOSTS] [SECONDS]`` (defaults 200 and 10).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.support.agent_process import AgentProcess
from tests.support.server_in_process import in_process_server

from hvcloud.server.config import ServerConfig
from hvcloud.wire import commands as C


async def baseline(agent: AgentProcess, seconds: float) -> float:
    async with agent.client(0) as client:
        count, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            await client.vm_state_report()
            await client.send(C.PingRoutingCommand(hostType="Routing", hostVmStateReport={}, contextMap={}))
            count += 1
    return count / seconds


def main() -> None:
    hosts = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "agent").mkdir()
        agent = AgentProcess(base / "agent" / "data", hosts=hosts).start()
        try:
            single = asyncio.run(baseline(agent, min(seconds, 5.0)))
            config = replace(ServerConfig.build(base / "server"), ping_interval_seconds=1.0,
                             host_stats_interval_seconds=60.0)
            with in_process_server(config) as (state, admin):
                zone = admin.ok("createZone", name="bench", networktype="Advanced", dns1="8.8.8.8",
                                internaldns1="10.0.0.1")["zone"]["id"]
                pod = admin.ok("createPod", name="p", zoneid=zone, gateway="10.1.0.1",
                               netmask="255.255.255.0")["pod"]["id"]
                cluster = admin.ok("addCluster", clustername="c", clustertype="CloudManaged",
                                   hypervisor="Simulator", podid=pod, zoneid=zone)["cluster"][0]["id"]
                t0 = time.monotonic()
                for i in range(hosts):
                    admin.ok("addHost", hypervisor="Simulator", url=agent.url(i), username=agent.username,
                             password=agent.password, zoneid=zone, podid=pod, clusterid=cluster)
                added = time.monotonic() - t0
                manager = state.agents
                assert manager is not None
                time.sleep(2.0)
                pings0, cpu0, w0 = manager.stats.pings, time.process_time(), time.monotonic()
                time.sleep(seconds)
                pings, cpu, wall = manager.stats.pings - pings0, time.process_time() - cpu0, time.monotonic() - w0
                failures = manager.stats.failures
        finally:
            agent.stop()
    rate = pings / wall
    print(f"hosts: {hosts}; addHost: {added:.2f} s total, {1000 * added / hosts:.1f} ms per host")
    print(f"ping loop: {rate:.1f} pings/s (ideal {hosts / 1.0:.0f}/s at ping.interval=1 s), "
          f"{100 * rate / hosts:.0f}% of ideal, failures {failures}")
    print(f"server process CPU per ping (includes the test client and DB writes): "
          f"{1000 * cpu / max(pings, 1):.2f} ms")
    print(f"baseline: one client pinging one host back to back: {single:.1f} pings/s; "
          f"manager throughput = {rate / single:.2f}x baseline")


if __name__ == "__main__":
    main()
