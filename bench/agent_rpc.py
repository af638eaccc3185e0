"""Agent RPC throughput and latency over keep-alive HTTPS, against a bare Starlette endpoint.

Runs, in one go: a simulator agent process (password auth, signed requests) and a bare endpoint
process on the same TLS stack and certificate, then measures PingRoutingCommand with one client
(latency p50/p99 and throughput) and with several concurrent clients (throughput), and
Start+Stop pairs with one client. Prints a table and the agent/bare ratios.

    .venv/bin/python -m bench.agent_rpc [--requests 3000] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.ports import free_port
from tests.support.wire_samples import sample

from hvcloud.agent.tls import ensure_self_signed
from hvcloud.agent_client import AgentClient
from hvcloud.wire import commands as C
from hvcloud.wire.to import VirtualMachineTO

PING = C.PingRoutingCommand.model_validate(sample("PingRoutingCommand"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def sequential(client: AgentClient, n: int) -> tuple[float, list[float]]:
    lat = []
    start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        ans = await client.send(PING)
        lat.append((time.perf_counter() - t) * 1000)
        assert ans.result
    return n / (time.perf_counter() - start), lat


async def concurrent(url: str, n: int, clients: int, signed: bool) -> float:
    cs = [AgentClient(url, username=USER if signed else None, password=PASSWORD if signed else None)
          for _ in range(clients)]
    for c in cs:
        await c.send(PING)
    per = n // clients

    async def run(c: AgentClient) -> None:
        for _ in range(per):
            await c.send(PING)

    start = time.perf_counter()
    await asyncio.gather(*(run(c) for c in cs))
    elapsed = time.perf_counter() - start
    for c in cs:
        await c.aclose()
    return per * clients / elapsed


async def start_stop(client: AgentClient, n: int) -> list[float]:
    lat = []
    for i in range(n):
        mac = f"02:00:00:07:{i // 256:02x}:{i % 256:02x}"
        vm = VirtualMachineTO.model_validate({"name": f"i-7-{i}-VM", "cpus": 1, "maxRam": 128 * 2**20,
                                              "nics": [{"deviceId": 0, "mac": mac}]})
        t = time.perf_counter()
        a = await client.send(C.StartCommand(vm=vm))
        b = await client.send(C.StopCommand(vmName=vm.name or ""))
        lat.append((time.perf_counter() - t) * 1000)
        assert a.result and b.result, (a.details, b.details)
    return lat


async def measure(url: str, signed: bool, n: int, clients: int) -> dict[str, float]:
    async with AgentClient(url, username=USER if signed else None, password=PASSWORD if signed else None) as c:
        await sequential(c, 200)
        rps, lat = await sequential(c, n)
        out = {"rps_1": rps, "p50": statistics.median(lat), "p99": pct(lat, 99)}
    out["rps_n"] = await concurrent(url, n, clients, signed)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "agent"
        cert, key = ensure_self_signed(data)
        agent = AgentProcess(data, address="127.0.0.1", ).start()
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.bare_endpoint", "127.0.0.1", str(bare_port),  # noqa: S603
                                 str(cert), str(key)])
        try:
            time.sleep(1.5)
            base = asyncio.run(measure(f"https://127.0.0.1:{bare_port}", False, args.requests, args.clients))
            ours = asyncio.run(measure(agent.endpoint(), True, args.requests, args.clients))

            async def pairs() -> list[float]:
                async with AgentClient(agent.endpoint(), username=USER, password=PASSWORD) as c:
                    return await start_stop(c, args.pairs)

            ss = asyncio.run(pairs())
        finally:
            agent.kill()
            bare.kill()
            bare.wait()
    print(f"agent RPC over keep-alive HTTPS, {args.requests} requests, simulator driver, password auth")
    print(f"{'':34}{'agent':>12}{'bare endpoint':>16}{'ratio':>8}")
    print(f"{'Ping, 1 client, requests/s':34}{ours['rps_1']:>12.0f}{base['rps_1']:>16.0f}"
          f"{ours['rps_1'] / base['rps_1']:>8.2f}")
    print(f"{'Ping, 1 client, p50 ms':34}{ours['p50']:>12.2f}{base['p50']:>16.2f}")
    print(f"{'Ping, 1 client, p99 ms':34}{ours['p99']:>12.2f}{base['p99']:>16.2f}")
    print(f"{f'Ping, {args.clients} clients, requests/s':34}{ours['rps_n']:>12.0f}{base['rps_n']:>16.0f}"
          f"{ours['rps_n'] / base['rps_n']:>8.2f}")
    print(f"{'Start+Stop pair, 1 client, p50 ms':34}{statistics.median(ss):>12.2f}")
    print(f"{'Start+Stop pair, 1 client, p99 ms':34}{pct(ss, 99):>12.2f}")
    print(f"{'Start+Stop pairs/s':34}{len(ss) / (sum(ss) / 1000):>12.1f}")


if __name__ == "__main__":
    main()
