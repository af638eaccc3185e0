"""Security groups on a Linux host: the cost of applying one VM NIC's policy with nftables.

In a throw-away "host" network namespace holding one bridge: (1) one port, a policy of N CIDRs
(one tcp rule and one udp rule over the same CIDRs, N = 10 / 100 / 1,000) applied ``--repeats``
times with growing ``seq``, p50/p99; (2) ``--ports`` VM ports (veth pairs on the bridge), each
with a policy of ``--rules`` rules of ``--cidrs`` CIDRs, then one rule of one port changed
``--repeats`` times, p50/p99 — against the same change on a host holding a single port. Every
apply is one ``nft -f`` transaction (the enforcer's ``loads`` counter is checked). Needs root and
nft (prints why not and exits 2).

    .venv/bin/python -m bench.sg_rules [--ports 200] [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time

import structlog
from tests.support.sg_lab import SgLab, missing_tools

from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_nft import NftSecurityGroups


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cidrs(n: int, salt: int = 0) -> tuple[str, ...]:
    """n CIDRs no two of which merge (every other /24 of 10.0.0.0/8)."""
    return tuple(f"10.{(i + salt) // 128 % 256}.{(i + salt) % 128 * 2}.0/24" for i in range(n))


def mac(i: int) -> str:
    return f"02:5b:00:00:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"


def policy(i: int, rules: int, n: int, seq: int, salt: int = 0) -> NicPolicy:
    ingress = tuple(SgRule("tcp", cidrs(n, salt + k), (1000 + k, 1000 + k)) for k in range(rules))
    return NicPolicy(mac=mac(i), ips=(f"10.250.{i // 250}.{i % 250 + 1}",), ingress=ingress, egress=(), seq=seq)


def add_ports(lab: SgLab, count: int) -> list[str]:
    """``count`` veth pairs, both ends in the host namespace, one end a bridge port (a "tap")."""
    script = []
    taps = []
    for i in range(count):
        tap = f"sgb{i}"
        taps.append(tap)
        script += [f"link add {tap} type veth peer name sgp{i}", f"link set {tap} master {lab.bridge} up"]
    subprocess.run(["ip", "netns", "exec", lab.host, "ip", "-batch", "-"], input="\n".join(script) + "\n",  # noqa: S603
                   text=True, check=True, capture_output=True)
    return taps


def time_applies(sg: NftSecurityGroups, tap: str, policies: list[NicPolicy]) -> list[float]:
    out = []
    for p in policies:
        loads = sg.loads
        t0 = time.perf_counter()
        assert sg.apply_policy(tap, p)
        out.append((time.perf_counter() - t0) * 1000)
        assert sg.loads == loads + 1
    return out


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 50), 2), "p99_ms": round(pct(values, 99), 2),
            "mean_ms": round(statistics.mean(values), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ports", type=int, default=200)
    ap.add_argument("--rules", type=int, default=5)
    ap.add_argument("--cidrs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    reason = missing_tools()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result: dict[str, object] = {}
    lab = SgLab()
    try:
        taps = add_ports(lab, args.ports)
        sg = NftSecurityGroups(lab.host)
        # (1) one policy of N CIDRs on one port
        for n in (10, 100, 1000):
            sg.apply_defaults(taps[0], mac(0), [])
            times = time_applies(sg, taps[0], [policy(0, 2, n, seq, salt=seq % 2) for seq in range(args.repeats)])
            result[f"policy_{n}_cidrs"] = summary(times)
            progress(f"one policy of {n} CIDRs (x2 rules): {result[f'policy_{n}_cidrs']}")
        sg.remove(taps[0])
        # (2) baseline: one rule changed on a host holding one port
        sg.apply_defaults(taps[0], mac(0), [])
        base = time_applies(sg, taps[0], [policy(0, args.rules, args.cidrs, 100 + k, salt=k % 2)
                                          for k in range(args.repeats)])
        result["change_one_port_host"] = summary(base)
        progress(f"change one rule, host with 1 port: {result['change_one_port_host']}")
        # fill: every port with its policy
        t0 = time.perf_counter()
        for i, tap in enumerate(taps):
            sg.apply_defaults(tap, mac(i), [])
            sg.apply_policy(tap, policy(i, args.rules, args.cidrs, 1))
        fill = time.perf_counter() - t0
        result["fill_seconds"] = round(fill, 2)
        progress(f"{len(taps)} ports with {args.rules} rules x {args.cidrs} CIDRs each in {fill:.1f} s")
        mid = taps[len(taps) // 2]
        i = len(taps) // 2
        many = time_applies(sg, mid, [policy(i, args.rules, args.cidrs, 200 + k, salt=k % 2)
                                      for k in range(args.repeats)])
        result[f"change_{len(taps)}_port_host"] = summary(many)
        progress(f"change one rule, host with {len(taps)} ports: {result[f'change_{len(taps)}_port_host']}")
        result["ratio_p50"] = round(pct(many, 50) / pct(base, 50), 2)
        ruleset = lab.hrun("nft", "list", "ruleset").stdout
        result["ruleset_lines"] = ruleset.count("\n")
    finally:
        lab.close()
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
