"""Throughput of a TCP stream through a router's port forward into a real guest, against the same
stream to the guest's address from inside its network, in one run.

A QEMU/TCG test guest (``hvcloud guest build``) leases from a namespace router on a throw-away
bridge; an "outside" namespace on a public bridge fetches ``/cgi-bin/stream?mb=N`` from the
guest's busybox httpd through ``public:8080 -> guest:80`` (nftables DNAT + the firewall rule), and
a client namespace on the guest bridge fetches it from the guest's address directly. Runs
alternate (inside, forwarded, inside, …) so that load on the machine hits both alike. Needs root,
libvirt, nft (prints why not and exits 2). Software-emulated guests are slow: the guest's CPU
(TCG), not the router, bounds both figures.

    .venv/bin/python -m bench.pf_throughput [--mb 32] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import structlog
from tests.support.guest_vm import running_guest
from tests.support.public_lab import Outside, fetch, static_guest
from tests.support.router_lab import BUSYBOX, Lab, missing_tools
from tests.support.wait import wait_for

from hvcloud.router.api import DhcpEntry, FirewallRule, PortForward, PublicAddress, RouterSpec, RuleChange, Segment
from hvcloud.router.namespace import NamespaceRouterHost
from hvcloud.storage import guest_image

ROUTER_IP, GUEST_IP, CLIENT_IP, GW, PUB = "10.81.0.1", "10.81.0.10", "10.81.0.50", "198.51.100.1", "198.51.100.10"
GUEST_MAC = "02:81:00:00:00:0a"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def stream(ns: str, url: str, mb: int) -> float:
    """MiB/s of one GET of ``url`` from ``ns`` (the body is counted, then dropped)."""
    start = time.perf_counter()
    proc = subprocess.run(["ip", "netns", "exec", ns, BUSYBOX, "wget", "-q", "-O", "-", url],  # noqa: S603
                          capture_output=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or len(proc.stdout) != mb << 20:
        raise SystemExit(f"stream from {ns} failed: rc {proc.returncode}, {len(proc.stdout)} bytes")
    return mb / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=32, help="MiB per stream")
    parser.add_argument("--runs", type=int, default=3, help="streams of each kind")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reason = missing_tools() or (None if shutil.which("nft") else "nft is not installed")
    if reason:
        print(f"pf_throughput: cannot run here: {reason}", file=sys.stderr)
        sys.exit(2)
    logging.disable(logging.INFO)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    image = guest_image.build()
    inside: list[float] = []
    forwarded: list[float] = []
    with tempfile.TemporaryDirectory(prefix="pf-throughput-") as tmp:
        work = Path(tmp)
        lab = Lab(work / "lab")
        outside: Outside | None = None
        name = f"r-{lab.suffix}"
        host = NamespaceRouterHost(work / "state")
        try:
            outside = Outside(lab.suffix, GW, 24)
            host.start(RouterSpec(name=name, segment=Segment(lab.bridge), mac="02:81:00:00:00:01", address=ROUTER_IP,
                                  prefix=24, domain="bench.internal"))
            host.dhcp_entry(name, DhcpEntry(GUEST_MAC, GUEST_IP, "web1"))
            host.apply(name, RuleChange(
                addresses=(PublicAddress(PUB, 24, GW, "02:81:00:00:01:01", Segment(outside.bridge), True),),
                port_forwards=(PortForward("1", PUB, "tcp", (8080, 8080), GUEST_IP, (80, 80)),),
                firewall=(FirewallRule("2", "ingress", "tcp", (), PUB, (8080, 8080)),)))
            client = lab.client("02:81:00:00:00:32")
            static_guest(client.ns, CLIENT_IP, 24, ROUTER_IP)
            vm = f"hvbench-{uuid.uuid4().hex[:6]}-pf"
            with running_guest(work / "vm", image, lab.bridge, GUEST_MAC, vm) as console:
                progress("booting the guest")
                wait_for("the guest's HTTP server", lambda: console.exists() and guest_image.HTTPD_MARKER
                         in console.read_text(errors="replace"), 300, interval=0.5)
                wait_for("the port forward", lambda: fetch(outside.ns, f"http://{PUB}:8080/", wait=10), 60)
                for run in range(args.runs):
                    progress(f"run {run + 1}/{args.runs}: {args.mb} MiB inside, then through the port forward")
                    inside.append(stream(client.ns, f"http://{GUEST_IP}/cgi-bin/stream?mb={args.mb}", args.mb))
                    forwarded.append(stream(outside.ns, f"http://{PUB}:8080/cgi-bin/stream?mb={args.mb}", args.mb))
        finally:
            host.destroy(name)
            lab.close()
            if outside is not None:
                outside.close()
    result = {"mb": args.mb, "runs": args.runs,
              "inside_mib_s": round(statistics.median(inside), 2),
              "forwarded_mib_s": round(statistics.median(forwarded), 2),
              "ratio": round(statistics.median(forwarded) / statistics.median(inside), 3),
              "inside_all": [round(v, 2) for v in inside], "forwarded_all": [round(v, 2) for v in forwarded]}
    if args.json:
        print(json.dumps(result))
        return
    print(f"TCP stream from a QEMU/TCG guest's httpd, {args.mb} MiB, {args.runs} runs each (median MiB/s)")
    print(f"  inside its network (client -> guest):        {result['inside_mib_s']:8.2f}  {result['inside_all']}")
    print(f"  through the port forward (outside -> guest): {result['forwarded_mib_s']:8.2f}  {result['forwarded_all']}")
    print(f"  ratio forwarded / inside:                    {result['ratio']:8.3f}")


if __name__ == "__main__":
    main()
