"""Virtual router public side: the cost of one rule change on a router that already holds many.

One namespace router on a throw-away bridge, with a public interface on a second one. It is grown
in steps (by default to 10, 100 and 1,000 port forwards plus as many firewall rules, each step one
bulk change); at each size, ``--changes`` times: add one port forward, remove it, add one firewall
rule, remove it — each a full ``RouterHost.apply`` (validation, one ``nft -f`` transaction with
the element or rule, the saved state). p50/p99 per size show whether a change grows with the
rules held. Needs root, nft and ``ip netns`` (prints why not and exits 2).

    .venv/bin/python -m bench.router_rules [--sizes 10,100,1000] [--changes 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog
from tests.support.router_lab import Lab, missing_tools

from hvcloud.network.bridges import Bridges
from hvcloud.router.api import FirewallRule, PortForward, PublicAddress, RouterSpec, RuleChange, Segment
from hvcloud.router.namespace import NamespaceRouterHost

PUB, GW = "198.51.100.10", "198.51.100.1"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def forward(i: int) -> PortForward:
    port = 1000 + i
    return PortForward(f"pf{i}", PUB, "tcp", (port, port), f"10.90.{(i >> 7) & 0xFF}.{(i & 0x7F) + 2}", (80, 80))


def rule(i: int) -> FirewallRule:
    port = 1000 + i
    return FirewallRule(f"fw{i}", "ingress", "tcp", (f"203.0.{(i >> 8) & 0x3F}.{i & 0xFF}/32",), PUB, (port, port))


def timed(host: NamespaceRouterHost, name: str, change: RuleChange) -> float:
    start = time.perf_counter()
    host.apply(name, change)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10,100,1000", help="rules of each kind held, in growing order")
    parser.add_argument("--changes", type=int, default=50, help="timed changes of each kind at each size")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    reason = missing_tools() or (None if shutil.which("nft") else "nft is not installed")
    if reason:
        print(f"router_rules: cannot run here: {reason}", file=sys.stderr)
        sys.exit(2)
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    results = []
    with tempfile.TemporaryDirectory(prefix="router-rules-") as tmp:
        lab = Lab(Path(tmp) / "lab")
        public = f"hvq{lab.suffix}"
        Bridges().ensure_bridge(public)
        host = NamespaceRouterHost(Path(tmp) / "state")
        name = f"rules-{lab.suffix}"
        try:
            host.start(RouterSpec(name=name, segment=Segment(lab.bridge), mac="02:90:00:00:00:01",
                                  address="10.90.0.1", prefix=16, domain="bench.internal"))
            host.apply(name, RuleChange(addresses=(PublicAddress(PUB, 24, GW, "02:90:00:00:01:01", Segment(public),
                                                                 source_nat=True),)))
            held = 0
            extra = max(sizes) + 10
            for size in sizes:
                progress(f"growing to {size} port forwards + {size} firewall rules")
                fill_ms = timed(host, name, RuleChange(port_forwards=tuple(forward(i) for i in range(held, size)),
                                                       firewall=tuple(rule(i) for i in range(held, size))))
                held = size
                pf_add, pf_del, fw_add, fw_del = [], [], [], []
                for _ in range(args.changes):
                    pf_add.append(timed(host, name, RuleChange(port_forwards=(forward(extra),))))
                    pf_del.append(timed(host, name, RuleChange(remove_port_forwards=(f"pf{extra}",))))
                    fw_add.append(timed(host, name, RuleChange(firewall=(rule(extra),))))
                    fw_del.append(timed(host, name, RuleChange(remove_firewall=(f"fw{extra}",))))
                state = host.public_state(name)
                assert len(state.port_forwards) == size and len(state.firewall) == size
                row = {"rules": size, "bulk_fill_ms": round(fill_ms, 1)}
                for label, values in (("pf_add", pf_add), ("pf_remove", pf_del), ("fw_add", fw_add),
                                      ("fw_remove", fw_del)):
                    row[f"{label}_p50_ms"] = round(statistics.median(values), 2)
                    row[f"{label}_p99_ms"] = round(pct(values, 99), 2)
                results.append(row)
        finally:
            host.destroy(name)
            lab.close()
            Bridges().delete(public)
    if args.json:
        print(json.dumps({"changes": args.changes, "sizes": results}))
        return
    print(f"router public side: one rule change, {args.changes} of each kind per size (ms)")
    print(f"{'rules held (pf + fw)':22}{'pf add p50/p99':>18}{'pf rm p50/p99':>18}{'fw add p50/p99':>18}"
          f"{'fw rm p50/p99':>18}{'bulk fill':>12}")
    for r in results:
        kinds = ("pf_add", "pf_remove", "fw_add", "fw_remove")
        cells = [f"{r[f'{k}_p50_ms']:.1f}/{r[f'{k}_p99_ms']:.1f}" for k in kinds]
        print(f"{str(r['rules']) + ' + ' + str(r['rules']):22}" + "".join(f"{c:>18}" for c in cells)
              + f"{r['bulk_fill_ms']:>12.1f}")


if __name__ == "__main__":
    main()
