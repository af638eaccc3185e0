"""Virtual router runtime: the cost of one more VM on a router that already serves many.

Runs, in one go, on a throw-away bridge: a namespace router with N entries (static lease + vm data
each) and, as the baseline, one with 10; then times adding one more VM (``dhcp_entry`` +
``vm_data``: the files rewritten atomically, dnsmasq reloaded by SIGHUP) M times on each, p50/p99.
Also "NIC up → lease": busybox ``udhcpc`` in a client namespace, from its start to bound, p50 over a
few runs against the big router. Needs root, dnsmasq and busybox (prints why not and exits 2).

    .venv/bin/python -m bench.router_entries [--entries 1000] [--adds 50] [--lease-runs 5] [--json]
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from tests.support.router_lab import Lab, missing_tools

from hvcloud.router.api import DhcpEntry, RouterSpec, Segment
from hvcloud.router.namespace import NamespaceRouterHost

USER_DATA = base64.b64encode(b"#cloud-config\npackages: [nginx]\n" * 8).decode()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mac(router: int, i: int) -> str:
    return f"02:{router:02x}:{(i >> 16) & 0xFF:02x}:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}:01"


def vm_data(ip: str, i: int) -> list[tuple[str, str, str | None]]:
    return [("userdata", "user-data", USER_DATA), ("metadata", "local-ipv4", ip),
            ("metadata", "local-hostname", f"vm-{i}"), ("metadata", "instance-id", f"i-{i}"),
            ("metadata", "public-keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI bench@host")]


class Router:
    def __init__(self, host: NamespaceRouterHost, index: int, bridge: str, suffix: str) -> None:
        self.host = host
        self.index = index
        self.name = f"bench{index}-{suffix}"
        self.net = ipaddress.IPv4Network(f"10.{200 + index}.0.0/16")
        host.start(RouterSpec(name=self.name, segment=Segment(bridge), mac=mac(index, 0xFFFFFF),
                              address=str(self.net.network_address + 1), prefix=16, domain=f"bench{index}.internal"))
        self.count = 0

    def add(self) -> float:
        """One more VM: its lease and its vm data; returns the seconds it took."""
        self.count += 1
        i = self.count
        ip = str(self.net.network_address + 1 + i)
        start = time.perf_counter()
        self.host.dhcp_entry(self.name, DhcpEntry(mac(self.index, i), ip, f"vm-{i}"))
        self.host.vm_data(self.name, ip, vm_data(ip, i))
        return time.perf_counter() - start


def fill(router: Router, n: int) -> float:
    start = time.perf_counter()
    for k in range(n):
        router.add()
        if (k + 1) % 200 == 0:
            progress(f"  {router.name}: {k + 1}/{n} entries")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1000, help="entries on the big router")
    parser.add_argument("--baseline", type=int, default=10, help="entries on the baseline router")
    parser.add_argument("--adds", type=int, default=50, help="timed additions on each router")
    parser.add_argument("--lease-runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        print(f"router_entries: cannot run here: {reason}", file=sys.stderr)
        sys.exit(2)
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        lab = Lab(Path(tmp) / "lab")
        host = NamespaceRouterHost(Path(tmp) / "state")
        routers: list[Router] = []
        try:
            big = Router(host, 0, lab.bridge, lab.suffix)
            small = Router(host, 1, lab.bridge, lab.suffix)
            routers = [big, small]
            progress(f"filling {big.name} with {args.entries} entries, {small.name} with {args.baseline}")
            fill_s = fill(big, args.entries)
            fill(small, args.baseline)
            progress(f"timing {args.adds} additions on each")
            big_ms = [big.add() * 1000 for _ in range(args.adds)]
            small_ms = [small.add() * 1000 for _ in range(args.adds)]
            progress(f"NIC up -> lease, {args.lease_runs} runs")
            client = lab.client(mac(0, 1))
            lease_ms = []
            for _ in range(args.lease_runs):
                client.run("ip", "addr", "flush", "dev", "eth0")
                start = time.perf_counter()
                lease = client.dhcp(tries=3, pause=1)
                lease_ms.append((time.perf_counter() - start) * 1000)
                if lease is None or lease["ip"] != str(big.net.network_address + 2):
                    raise SystemExit(f"the client got no lease or the wrong one: {lease}")
        finally:
            for r in routers:
                host.destroy(r.name)
            lab.close()
    result = {
        "entries": args.entries, "baseline_entries": args.baseline, "adds": args.adds,
        "fill_s": round(fill_s, 2), "fill_per_entry_ms": round(fill_s * 1000 / args.entries, 2),
        "add_p50_ms": round(statistics.median(big_ms), 2), "add_p99_ms": round(pct(big_ms, 99), 2),
        "baseline_add_p50_ms": round(statistics.median(small_ms), 2),
        "baseline_add_p99_ms": round(pct(small_ms, 99), 2),
        "ratio_p50": round(statistics.median(big_ms) / statistics.median(small_ms), 2),
        "lease_p50_ms": round(statistics.median(lease_ms), 1), "lease_max_ms": round(max(lease_ms), 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"virtual router, one more VM (dhcp_entry + vm_data), {args.adds} additions")
    print(f"{'':36}{f'{args.entries} entries':>14}{f'{args.baseline} entries':>14}{'ratio':>8}")
    print(f"{'add one VM, p50 ms':36}{result['add_p50_ms']:>14.2f}{result['baseline_add_p50_ms']:>14.2f}"
          f"{result['ratio_p50']:>8.2f}")
    print(f"{'add one VM, p99 ms':36}{result['add_p99_ms']:>14.2f}{result['baseline_add_p99_ms']:>14.2f}")
    print(f"{'filling, per entry ms':36}{result['fill_per_entry_ms']:>14.2f}")
    print(f"{'NIC up -> lease (udhcpc), p50 ms':36}{result['lease_p50_ms']:>14.1f}   (max {result['lease_max_ms']})")


if __name__ == "__main__":
    main()
