"""Consoles through one console proxy against the same clients straight to the VNC servers.

N paused QEMU guests (``-m 16``, one VNC server each, VNC authentication) and one
``hvcloud console-proxy run`` process on a SQLite server database. Each of the N clients opens its
console (WebSocket, the proxy's handshake, its claim, the proxy's VNC handshake) and then loops
non-incremental FramebufferUpdateRequests (Raw encoding: 1.2 MB a 640x480 screen) for the given
seconds. Reported: connect time p50/p99, MB relayed, MB/s, and the proxy's CPU seconds per MB
relayed (from /proc/<pid>/stat). The baseline, in the same run and with the same client code: the
same clients straight to the VNC servers over TCP. The clients run in this process on one event
loop, so on a small machine they share the cores with the proxy and QEMU.

    .venv/bin/python -m bench.console_proxy [--consoles 50] [--seconds 10] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from tests.support import rfb_client
from tests.support.console_proxy import ProxyProcess
from tests.support.console_world import ConsoleWorld
from tests.support.vnc_servers import VncServer, qemu_missing, vnc_servers

PASSWORD = "benchpw1"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def one_client(open_client: Any, seconds: float) -> tuple[float, int, int]:
    """(connect seconds, bytes received, updates) of one console."""
    start = time.perf_counter()
    client: rfb_client.RfbClient = await open_client()
    connected = time.perf_counter() - start
    updates = 0
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await client.request_update(incremental=False)
            await client.read_update()
            updates += 1
        return connected, client.bytes_received, updates
    finally:
        await client.close()


async def phase(openers: list[Any], seconds: float) -> dict[str, Any]:
    start = time.perf_counter()
    results = await asyncio.gather(*(one_client(o, seconds) for o in openers))
    wall = time.perf_counter() - start
    connects = [r[0] * 1000 for r in results]
    total = sum(r[1] for r in results)
    return {"consoles": len(results), "connect_ms_p50": round(percentile(connects, 50), 1),
            "connect_ms_p99": round(percentile(connects, 99), 1), "mb": round(total / 1e6, 1),
            "mb_per_s": round(total / 1e6 / wall, 1), "updates": sum(r[2] for r in results),
            "wall_s": round(wall, 2)}


def run(consoles: int, servers_wanted: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        work = Path(tmp)
        world = ConsoleWorld(work / "server")
        progress(f"starting {servers_wanted} paused QEMU VNC servers")
        with vnc_servers(servers_wanted, PASSWORD, workdir=work / "vnc") as servers:
            proxy = ProxyProcess(work / "proxy", data_dir=world.data_dir, log_level="warning",
                                 extra_args=["--max-sessions", str(consoles + 10)])
            try:
                vms = [world.add_vm() for _ in range(consoles)]
                targets: list[VncServer] = [servers[i % len(servers)] for i in range(consoles)]
                urls = [proxy.urls(world.grant(vm, t.host, t.port, t.password)[0])["websockify"]
                        for vm, t in zip(vms, targets, strict=True)]
                progress(f"{consoles} consoles through the proxy for {seconds:g} s")
                cpu0 = proxy.cpu_seconds()
                proxied = asyncio.run(phase([lambda u=u: rfb_client.open_ws(u) for u in urls], seconds))
                cpu = proxy.cpu_seconds() - cpu0
            finally:
                proxy.stop()
            proxied["proxy_cpu_s"] = round(cpu, 2)
            proxied["proxy_cpu_s_per_mb"] = round(cpu / proxied["mb"], 5) if proxied["mb"] else None
            progress(f"{consoles} clients straight to the VNC servers for {seconds:g} s")
            direct = asyncio.run(phase([lambda t=t: rfb_client.open_tcp(t.host, t.port, t.password)
                                        for t in targets], seconds))
        world.close()
    return {"consoles": consoles, "vnc_servers": servers_wanted, "seconds": seconds, "proxied": proxied,
            "direct": direct,
            "ratio_mb_per_s": round(proxied["mb_per_s"] / direct["mb_per_s"], 3) if direct["mb_per_s"] else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--consoles", type=int, default=50)
    parser.add_argument("--vnc-servers", type=int, default=0, help="QEMU VNC servers (default: one per console)")
    parser.add_argument("--seconds", type=float, default=10.0, help="update loop per client")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = qemu_missing()
    if reason:
        print(f"console_proxy: cannot run here: {reason}", file=sys.stderr)
        sys.exit(2)
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = run(args.consoles, args.vnc_servers or args.consoles, args.seconds)
    if args.json:
        print(json.dumps(result))
        return
    p, d = result["proxied"], result["direct"]
    print(f"{result['consoles']} consoles on {result['vnc_servers']} paused QEMU VNC servers, "
          f"{result['seconds']:g} s of full-screen updates each")
    print(f"  through the proxy: connect p50 {p['connect_ms_p50']} ms p99 {p['connect_ms_p99']} ms, "
          f"{p['mb']} MB, {p['mb_per_s']} MB/s, proxy CPU {p['proxy_cpu_s']} s = {p['proxy_cpu_s_per_mb']} s/MB")
    print(f"  straight to VNC:   connect p50 {d['connect_ms_p50']} ms p99 {d['connect_ms_p99']} ms, "
          f"{d['mb']} MB, {d['mb_per_s']} MB/s")
    print(f"  ratio proxied / direct MB/s: {result['ratio_mb_per_s']}")


if __name__ == "__main__":
    main()
