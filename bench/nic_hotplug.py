"""NIC hot-plug on the libvirt driver: how long ``plug_nic`` and ``unplug_nic`` take on a running test
guest (QEMU/TCG), for a NIC on a VXLAN segment (``vxlan://N`` over a trunk bridge this bench makes,
with no uplink: no packet leaves the machine). The first plug also makes the segment (the VXLAN
device and ``brvx-N``); the unplug includes the guest releasing the device (ACPI hot-unplug).

Usage: ``python -m bench.nic_hotplug [--rounds 10] [--json]`` (root, libvirtd, ``hvcloud guest build``).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.guest_vm import running_guest

from hvcloud.hypervisor.driver import NicSpec
from hvcloud.hypervisor.libvirt.config import LibvirtConfig
from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
from hvcloud.network.bridges import Bridges, vxlan_bridge_name
from hvcloud.storage import guest_image

BOOT_TIMEOUT = 180.0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _wait_boot(console: Path) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        if console.exists() and guest_image.BOOT_MARKER in console.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit(f"the guest did not boot within {BOOT_TIMEOUT:.0f} s")


def run(rounds: int) -> dict[str, Any]:
    image = guest_image.build()
    bridges = Bridges()
    trunk = f"hvb{uuid.uuid4().hex[:8]}"
    vni = random.randrange(1_000_000, 16_000_000)
    bridges.ensure_bridge(trunk)
    plug_ms: list[float] = []
    unplug_ms: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-nic-hotplug-") as tmp:
            name = f"hvbench-{uuid.uuid4().hex[:8]}-hotplug"
            with running_guest(Path(tmp), image, trunk, "02:00:5e:20:00:01", name) as console:
                _wait_boot(console)
                drv = LibvirtDriver(LibvirtConfig(domain_type="qemu", default_bridge=trunk, detach_timeout=120.0))
                try:
                    for i in range(rounds):
                        nic = NicSpec(device_id=1, mac=f"02:00:5e:20:01:{i % 256:02x}", network=trunk, vxlan=vni)
                        t0 = time.perf_counter()
                        drv.plug_nic(name, nic)
                        t1 = time.perf_counter()
                        drv.unplug_nic(name, nic.mac)
                        t2 = time.perf_counter()
                        plug_ms.append((t1 - t0) * 1000)
                        unplug_ms.append((t2 - t1) * 1000)
                        _progress(f"round {i}: plug {plug_ms[-1]:.0f} ms, unplug {unplug_ms[-1]:.0f} ms")
                finally:
                    drv.close()
    finally:
        bridges.remove_vxlan_bridge(vni)
        bridges.delete(trunk)

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1),
                "min_ms": round(min(values), 1)}

    return {"rounds": rounds, "segment": f"vxlan://{vni} ({vxlan_bridge_name(vni)})",
            "first_plug_ms": round(plug_ms[0], 1), "plug": summary(plug_ms[1:] or plug_ms),
            "unplug": summary(unplug_ms)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    result = run(max(1, args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"NIC hot-plug on a running TCG guest, {result['segment']}, {result['rounds']} rounds")
        print(f"  first plug (makes the segment): {result['first_plug_ms']} ms")
        print(f"  plug:   p50 {result['plug']['p50_ms']} ms, max {result['plug']['max_ms']} ms")
        print(f"  unplug: p50 {result['unplug']['p50_ms']} ms, max {result['unplug']['max_ms']} ms "
              "(until the guest released the device)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
