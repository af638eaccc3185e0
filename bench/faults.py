"""Fault recovery with real processes (issue 7, "Faults"): one PostgreSQL database, a server, a
simulator agent serving three hosts, a template; per scenario a fresh cloud.

    .venv/bin/python -m bench.faults [--agent-deploys 20] [--server-deploys 100] [--skip hosts]
        [--libvirt [--libvirt-deploys 20]]

* agent SIGKILL mid-deploy: detect = kill → no host listed Up; recover = agent restart → every host
  Up and every deploy job finished;
* server SIGKILL mid-deploy: detect = kill → the restarted server answers (restart cost);
  recover = from then until every deploy job has finished;
* hung agent + dropped host: seconds until each host is Down (baseline: ``ping.timeout`` x
  ``ping.interval``, the configured Down time), deploys and API calls served meanwhile, the VMs'
  states while Down (Unknown) and once both hosts are back;
* one command hung on a host that stays Up: seconds until the deploy fails (baseline: the ``wait``
  setting), traffic served meanwhile, and how soon the cleanup stops the VM the agent started late;
* with ``--libvirt``: the agent SIGKILL scenario on a real libvirt agent (QEMU/TCG, 128 MiB guests,
  one host), killed once QEMU runs a quarter of the deploys. 20 guests fit this 2-core machine
  because they only run for the seconds the scenario needs (their boots are cut short at the end).

Every scenario also prints jobs succeeded vs rolled back and the four invariants (VMs known, no job
in progress, no orphaned disk, capacity equals a recount); the exit status is 1 if any is violated.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from tests.integration.server import fault_scenarios
from tests.support.postgres import fresh_pg_database

#: the Down time the scenario's settings configure (ping.interval 0.5 s x ping.timeout 20)
CONFIGURED_DOWN_SECONDS = 0.5 * 20
#: the ``wait`` setting of the hung-command scenario
HUNG_WAIT_SECONDS = 4.0


def _print(title: str, figures: list[tuple[str, str]]) -> None:
    print(f"{title}:", flush=True)
    for name, value in figures:
        print(f"  {name:30} {value}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent-deploys", type=int, default=20)
    ap.add_argument("--server-deploys", type=int, default=100)
    ap.add_argument("--skip", action="append", default=[], choices=["agent", "server", "hosts", "hung-command"])
    ap.add_argument("--libvirt", action="store_true", help="also run the agent SIGKILL scenario on libvirt")
    ap.add_argument("--libvirt-deploys", type=int, default=20)
    args = ap.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        base = Path(tmp)
        if "agent" not in args.skip:
            with fresh_pg_database() as url, \
                    fault_scenarios.cloud_stack(base / "agent", url) as cloud:
                r = fault_scenarios.agent_killed_mid_deploy(cloud, args.agent_deploys)
            _print(r.scenario, r.figures())
            for v in r.violations:
                print(f"  VIOLATION: {v}")
            failed |= bool(r.violations)
        if "server" not in args.skip:
            with fresh_pg_database() as url, \
                    fault_scenarios.cloud_stack(base / "server", url) as cloud:
                r = fault_scenarios.server_killed_mid_deploy(cloud, args.server_deploys)
            _print(r.scenario, r.figures())
            for v in r.violations:
                print(f"  VIOLATION: {v}")
            failed |= bool(r.violations)
        if "hosts" not in args.skip:
            with fresh_pg_database() as url, \
                    fault_scenarios.cloud_stack(base / "hosts", url) as cloud:
                h = fault_scenarios.hung_and_dropped_hosts(cloud, base / "hosts" / "lone" / "data")
            _print("hung agent + dropped host", h.figures())
            ratios = ", ".join(f"{s / CONFIGURED_DOWN_SECONDS:.2f}" for s in h.down_seconds.values())
            print(f"  {'Down / configured Down time':30} {ratios} (baseline {CONFIGURED_DOWN_SECONDS:g} s)")
            print(f"  {'stop of a VM on the Down host':30} {h.stop_on_down_host}")
            failed |= bool(h.api_errors or h.deploy_errors)
        if "hung-command" not in args.skip:
            with fault_scenarios.cloud_stack(base / "hung", None, settings=(f"wait={HUNG_WAIT_SECONDS:g}",)) as cloud:
                c = fault_scenarios.hung_command_on_up_host(cloud, HUNG_WAIT_SECONDS, HUNG_WAIT_SECONDS + 8)
            _print("command hung on an Up host", c.figures())
            print(f"  {'failed after / wait':30} {c.failed_after / HUNG_WAIT_SECONDS:.2f} "
                  f"(baseline {HUNG_WAIT_SECONDS:g} s)")
            failed |= bool(c.api_errors or c.deploy_errors or c.recount_error or not c.error)
        if args.libvirt:
            failed |= _libvirt(base / "libvirt", args.libvirt_deploys)
    return 1 if failed else 0


def _libvirt(base: Path, deploys: int) -> bool:
    from tests.integration.libvirt.conftest import remove_domains

    from hvcloud.network.bridges import Bridges
    from hvcloud.storage import guest_image

    run = uuid.uuid4().hex
    bridge, suffix = f"hvt{run[:6]}", f"hvt{run[6:16]}"
    Bridges().ensure_bridge(bridge)
    try:
        host = fault_scenarios.LibvirtHost(bridge=bridge, image=guest_image.build().qcow2, suffix=suffix)
        with fresh_pg_database() as url, fault_scenarios.cloud_stack(base, url, libvirt=host) as cloud:
            r = fault_scenarios.libvirt_agent_killed_mid_deploy(cloud, suffix, deploys)
    finally:
        remove_domains(lambda name: name.endswith(f"-{suffix}"))
        Bridges().delete(bridge)
    _print(r.scenario, r.figures())
    print(f"  {'VMs Starting at the kill':30} {r.notes['VMs Starting at the kill']}")
    for v in r.violations:
        print(f"  VIOLATION: {v}")
    return bool(r.violations)


if __name__ == "__main__":
    raise SystemExit(main())
