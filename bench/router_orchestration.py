"""The server side of routers, without agents: what implementing a network (segment id, router row,
StartCommand, the VM's entries) and publishing a VM on an implemented network cost the management
server, and one network-GC round over many idle networks. Hosts are ``tests.support.router_world``'s
in-memory router hosts, so the figures are the server's database work and command building only.

    .venv/bin/python -m bench.router_orchestration --networks 200 [--db-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from tests.support.router_world import build_world

from hvcloud.server.config import ServerConfig
from hvcloud.server.orchestration.networks import network_gc, routing
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--db-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig.build(Path(tmp) / "data", db_url=args.db_url)
        state = ServerState.open(replace(config, manage_agents=False))
        try:
            world = build_world(state, vnet_range=f"1000-{1000 + args.networks + 10}")
            nets = [world.network(f"n{i}", f"10.{i // 250}.{i % 250}.0/24") for i in range(args.networks)]
            firsts = [world.vm(n) for n in nets]
            seconds = [world.vm(n) for n in nets]
            implement: list[float] = []
            publish: list[float] = []
            for vm in firsts:
                t0 = time.perf_counter()
                asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
                implement.append(time.perf_counter() - t0)
            for vm in seconds:
                t0 = time.perf_counter()
                asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[1]))
                publish.append(time.perf_counter() - t0)
            for vm in firsts + seconds:
                world.set_vm_state(vm, S.STOPPED)
            asyncio.run(network_gc.collect(world.steps(), 0))  # starts the idle clocks
            t0 = time.perf_counter()
            done = 0
            while True:
                shut = asyncio.run(network_gc.collect(world.steps(), 0))
                done += len(shut)
                if not shut:
                    break
            gc_seconds = time.perf_counter() - t0
        finally:
            state.close()
    print(f"networks: {args.networks} ({'PostgreSQL' if args.db_url else 'SQLite'})")
    print(f"implement (segment id + router + StartCommand + entries): p50 {_pct(implement, 0.5):.1f} ms, "
          f"p99 {_pct(implement, 0.99):.1f} ms, mean {statistics.mean(implement) * 1000:.1f} ms")
    print(f"publish on an implemented network: p50 {_pct(publish, 0.5):.1f} ms, p99 {_pct(publish, 0.99):.1f} ms")
    print(f"network GC: {done} idle networks shut down in {gc_seconds:.2f} s "
          f"({gc_seconds / max(done, 1) * 1000:.1f} ms each)")


if __name__ == "__main__":
    main()
