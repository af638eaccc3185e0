"""Run the driver contract checks against a real Hyper-V host.

For whoever has a Hyper-V host (Windows Server / Hyper-V Server 2016+, elevated, with hvcloud and
PyMI installed): it builds ``HyperVDriver.connect()`` and runs exactly the checks the Linux contract
suite (``tests/contract``) runs against the WMI model, from :mod:`hvcloud.hypervisor.contract`,
then the Hyper-V-only checks of :mod:`hvcloud.hypervisor.hyperv.host_checks`, printing
PASS/FAIL/SKIP per check. It makes tiny VMs (64 MiB, 1 vCPU) named ``hvsmoke-<id>-N``, small
dynamic VHDX files in ``--disk-dir`` and exports in ``--disk-dir\\exports``; every VM is removed,
the VHDX files and exports are left for you to delete (a check proves undefine keeps disks).

    python deploy/windows/smoke_test.py --switch <existing vSwitch> --disk-dir C:\\hvsmoke
"""

from __future__ import annotations

import argparse
import functools
import ntpath
import os.path
import sys
import traceback
import uuid
from collections.abc import Callable

DISK_BYTES = 16 * 1024 * 1024
file_exists = os.path.exists  # the VHDX files are on this host (the tests swap in the WMI model)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=".", help="Hyper-V host for WMI (default: this machine)")
    p.add_argument("--switch", required=True, help="an existing virtual switch for the test NIC")
    p.add_argument("--disk-dir", required=True, help="a host directory for the small test VHDX files")
    p.add_argument("--no-vlan", action="store_true",
                   help="skip the VLAN check (state why in your report)")
    p.add_argument("--only", action="append", default=[], metavar="CHECK",
                   help="run only this check (name without check_; repeatable)")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failures")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.platform != "win32":
        print("smoke_test.py drives a real Hyper-V host through WMI and runs only on Windows; "
              "on Linux run the same checks against the model with: pytest tests/contract",
              file=sys.stderr)
        return 2

    # Imported only here, so --help and the refusal work anywhere, even without hvcloud installed.
    from hvcloud.hypervisor import contract
    from hvcloud.hypervisor.hyperv import HyperVDriver, host_checks

    driver = HyperVDriver.connect(args.host)
    images = driver.image_management()

    def make_disk(label: str) -> contract.DiskFile:
        path = ntpath.join(args.disk_dir, f"{label}.vhdx")
        images.create_dynamic(path, DISK_BYTES, "vhdx")
        return contract.DiskFile(path, "vhdx")

    env = contract.ContractEnv(
        driver=driver, prefix=f"hvsmoke-{uuid.uuid4().hex[:6]}-", network=args.switch,
        make_disk=make_disk, disk_exists=file_exists, console_protocol=driver.console_protocol,
        capabilities={**driver.host_capabilities(), **({"vlan": "--no-vlan given"} if args.no_vlan else {})})

    host_env = host_checks.HostCheckEnv(driver=driver, prefix=env.prefix, network=args.switch,
                                        export_dir=ntpath.join(args.disk_dir, "exports"))
    runs: list[tuple[Callable[[], None], str]] = [
        (functools.partial(c, env), c.__name__) for c in contract.CHECKS]
    runs += [(functools.partial(c, host_env), c.__name__) for c in host_checks.CHECKS]

    failed = 0
    try:
        for run, check_name in runs:
            name = check_name.removeprefix("check_")
            if args.only and name not in args.only:
                continue
            try:
                run()
            except contract.CapabilityMissing as exc:
                print(f"SKIP {name}: {exc}")
            except Exception as exc:  # report every failure and go on
                failed += 1
                print(f"FAIL {name}: {type(exc).__name__}: {exc}")
                if args.verbose:
                    traceback.print_exc()
            else:
                print(f"PASS {name}")
    finally:
        for vm in driver.list_vms():
            if vm.name.startswith(env.prefix):
                driver.undefine_vm(vm.name)
        driver.close()
    print(f"{'FAILED' if failed else 'OK'}: {failed} check(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
