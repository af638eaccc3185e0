"""How long the test guest waits for its DHCP lease: boot it K times (QEMU/TCG, a fresh domain from a
linked clone each time) on a bridge with the stand-in virtual router (``tests/support/guest_net.py``:
dnsmasq and the metadata server in a namespace this bench creates) and read, from the guest's own
serial-console markers, the seconds from eth0 up to the lease (``HVCLOUD-NICUP`` -> ``HVCLOUD-LEASE``,
both on the guest's uptime clock), the uptime at the lease, and whether the metadata fetch and the
user data script completed. No packet leaves the machine.

Usage: ``python -m bench.guest_lease [--boots 3] [--json]`` (root, libvirtd, ``hvcloud guest build``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support import guest_console
from tests.support.guest_net import GuestEntry, fake_router
from tests.support.guest_vm import running_guest

from hvcloud.storage import guest_image

USER_DATA = "#!/bin/sh\nnslookup peer.cs1cloud.internal 10.1.1.1 >/dev/null && echo resolved\n"
TIMEOUT = 180.0


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(boots: int) -> dict[str, Any]:
    image = guest_image.build()
    entry = GuestEntry(mac="02:00:0a:01:01:" + uuid.uuid4().hex[:2], ip="10.1.1.10", hostname="bench-vm",
                       instance_id="i-2-10-VM", user_data=USER_DATA, public_keys="ssh-ed25519 AAAA bench\n",
                       password="bench-password")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-guest-lease-") as tmp:
        base = Path(tmp)
        with fake_router(base / "router", [entry], {"peer": "10.1.1.77"}) as router:
            for i in range(boots):
                name = f"hvbench-{uuid.uuid4().hex[:8]}-lease{i}"
                started = time.monotonic()
                with running_guest(base / f"vm{i}", image, router.bridge, entry.mac, name) as console:
                    guest_console.wait_for_marker(console, guest_image.LEASE_MARKER, TIMEOUT)
                    guest_console.wait_for_marker(console, guest_image.SCRIPT_DONE_MARKER, TIMEOUT)
                    wall = time.monotonic() - started
                    text = guest_console.last_boot(console)
                lease = guest_console.lease(text)
                row = {"boot": i, "nicup_to_lease_s": guest_console.nicup_to_lease_seconds(text),
                       "uptime_at_lease_s": float(lease["t"]) if lease else None,
                       "leased_ip": lease["ip"] if lease else None,
                       "metadata_keys": sorted(guest_console.meta(text)),
                       "metadata_errors": sorted(guest_console.meta_errors(text)),
                       "script": guest_console.script_lines(text), "script_rc": guest_console.script_rc(text),
                       "start_to_script_done_wall_s": round(wall, 2)}
                rows.append(row)
                _progress(f"boot {i + 1}/{boots}: NIC up -> lease {row['nicup_to_lease_s']} s, "
                          f"lease at uptime {row['uptime_at_lease_s']} s, script rc {row['script_rc']}")
    times = [r["nicup_to_lease_s"] for r in rows if r["nicup_to_lease_s"] is not None]
    return {"boots": boots, "leased": len(times),
            "nicup_to_lease_p50_s": round(statistics.median(times), 2) if times else None,
            "nicup_to_lease_max_s": round(max(times), 2) if times else None,
            "uptime_at_lease_p50_s": round(statistics.median(
                [r["uptime_at_lease_s"] for r in rows if r["uptime_at_lease_s"] is not None] or [0.0]), 2),
            "all_complete": all(r["leased_ip"] == entry.ip and not r["metadata_errors"] and r["script_rc"] == 0
                                and r["script"] == ["resolved"] for r in rows),
            "runs": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.boots < 1:
        parser.error("--boots must be at least 1")
    result = run(args.boots)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['boots']} boots, {result['leased']} leased; NIC up -> lease (guest clock): "
              f"p50 {result['nicup_to_lease_p50_s']} s, max {result['nicup_to_lease_max_s']} s; "
              f"lease at uptime p50 {result['uptime_at_lease_p50_s']} s; metadata + script complete on every "
              f"boot: {result['all_complete']}")
    return 0 if result["all_complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
