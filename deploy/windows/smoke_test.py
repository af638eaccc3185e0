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
from typing import Any

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


# ------------------------------------------------------------------ Hyper-V checks, issue #20 items 1-4
# What the WMI model enforces for these items and a real host must confirm (docs/hyperv.md).
# Each takes the contract env, the driver and the disk directory; hvcloud is imported lazily.


def hv_check_snapshot_times(env: Any, driver: Any, disk_dir: str) -> None:
    """Item 1: PyMI hands CreationTime back as a datetime; listing and taking snapshots read it."""
    from hvcloud.hypervisor import contract

    with contract.vm(env) as name:
        taken = driver.create_snapshot(name, "hvsmoke-snap", "smoke")
        listed = driver.list_snapshots(name)
        assert taken.created_at > 1_300_000_000, taken
        assert [s.created_at for s in listed] == [taken.created_at], listed


def hv_check_user_data_while_off(env: Any, driver: Any, disk_dir: str) -> None:
    """Item 2: host KVP items are written through the VM's settings while it is off."""
    from dataclasses import replace

    from hvcloud.hypervisor import contract

    spec = replace(env.spec(), user_data="aHZzbW9rZQ==", boot_args="hvsmoke=1")
    with contract.vm(env, spec) as name:
        kvp = driver.host_kvp(name)
        assert kvp.get("hvcloud-user-data") == "aHZzbW9rZQ==", kvp
        assert kvp.get("cloudstack-vm-userdata") == "hvsmoke=1", kvp
        assert driver.guest_kvp(name) == {}


def hv_check_storage_job_cancel(env: Any, driver: Any, disk_dir: str) -> None:
    """Item 3: a cancelled image management job (a Msvm_StorageJob) is terminated, not a KeyError."""
    import contextlib
    import threading

    from hvcloud.hypervisor.hyperv.errors import HyperVJobCancelled

    cancel = threading.Event()
    cancel.set()
    images = driver.image_management(cancel)
    # HyperVJobCancelled: the job was still running and was asked to terminate; no error: it
    # finished before the first poll. Anything else (KeyError …) fails the check.
    with contextlib.suppress(HyperVJobCancelled):
        images.create_dynamic(ntpath.join(disk_dir, f"{env.name()}-cancel.vhdx"), DISK_BYTES)


def hv_check_resize_rules(env: Any, driver: Any, disk_dir: str) -> None:
    """Item 4: online resize only for a VHDX on SCSI of a running VM; never a differencing disk."""
    from hvcloud.hypervisor import contract
    from hvcloud.hypervisor.driver import DiskSpec, InvalidVmState, NotSupported
    from hvcloud.hypervisor.hyperv.errors import HyperVError

    images = driver.image_management()
    root, data = env.make_disk(env.name()), env.make_disk(env.name())
    spec = env.spec(disks=(DiskSpec(slot=0, path=root.path, format="vhdx", boot=True),
                           DiskSpec(slot=1, path=data.path, format="vhdx")))
    with contract.vm(env, spec) as name:
        driver.start_vm(name)
        try:
            driver.resize_disk(name, root.path, 2 * DISK_BYTES)
        except InvalidVmState:
            pass
        else:
            raise AssertionError("resize_disk of the IDE root disk of a running VM did not refuse")
        assert driver.resize_disk(name, data.path, 2 * DISK_BYTES) == 2 * DISK_BYTES
        driver.stop_vm(name, 60, force=True)
    child = ntpath.join(disk_dir, f"{env.name()}-child.vhdx")
    images.create_differencing(child, root.path, "vhdx")
    try:
        images.resize(child, 4 * DISK_BYTES)
    except NotSupported:
        pass
    else:
        raise AssertionError("ImageManagement.resize of a differencing disk did not refuse")
    try:
        images.resize(child, 4 * DISK_BYTES, refuse_differencing=False)
    except HyperVError:
        pass
    else:
        raise AssertionError("the host resized a differencing disk")


HYPERV_CHECKS = (hv_check_snapshot_times, hv_check_user_data_while_off,
                 hv_check_storage_job_cancel, hv_check_resize_rules)


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
    runs += [(functools.partial(c, env, driver, args.disk_dir), c.__name__.removeprefix("hv_"))
             for c in HYPERV_CHECKS]

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
