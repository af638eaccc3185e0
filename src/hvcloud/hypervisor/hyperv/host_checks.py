"""Hyper-V-only checks the smoke script runs after the shared contract checks (issue 20, items
6, 7 and 9): what only a real host can prove about facts the WMI model now enforces.

Each check takes a :class:`HostCheckEnv`, makes only VMs named with its prefix and removes them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hvcloud.hypervisor.driver import NicSpec, VmSpec, VmState
from hvcloud.hypervisor.hyperv.driver import HyperVDriver


@dataclass
class HostCheckEnv:
    driver: HyperVDriver
    prefix: str
    network: str | None
    #: a host directory the checks may export VMs into
    export_dir: str
    _seq: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    def spec(self, memory_mib: int = 64) -> VmSpec:
        n = next(self._seq)
        return VmSpec(name=f"{self.prefix}{n}", vcpus=1, memory_mib=memory_mib,
                      nics=(NicSpec(device_id=0, mac=f"02:00:00:01:{n % 256:02x}:01",
                                    network=self.network),))


@contextmanager
def _vm(env: HostCheckEnv, spec: VmSpec) -> Iterator[str]:
    env.driver.define_vm(spec)
    try:
        yield spec.name
    finally:
        env.driver.undefine_vm(spec.name)


def check_memory_in_2mb_units(env: HostCheckEnv) -> None:
    """An odd MiB count is given as the next 2 MB unit (the host accepts the VM) and reads back as
    asked (item 9)."""
    with _vm(env, env.spec(memory_mib=65)) as name:
        assert env.driver.get_vm(name).spec.memory_mib == 65


def check_snapshot_with_and_without_memory(env: HostCheckEnv) -> None:
    """A memory snapshot (standard checkpoint) reverts to a running VM; one of a stopped VM
    reverts to a stopped VM; the VM's own checkpoint type is kept (item 7)."""
    with _vm(env, env.spec()) as name:
        env.driver.create_snapshot(name, "off")
        env.driver.start_vm(name)
        snap = env.driver.create_snapshot(name, "mem", with_memory=True)
        assert snap.with_memory, snap
        env.driver.revert_snapshot(name, "off")
        assert env.driver.get_vm(name).state == VmState.STOPPED
        env.driver.revert_snapshot(name, "mem")
        assert env.driver.get_vm(name).state == VmState.RUNNING
        env.driver.stop_vm(name, timeout=30.0, force=True)


def check_export_import_with_snapshots(env: HostCheckEnv) -> None:
    """An export with snapshots imports with its Snapshots folder and keeps them (items 6, 8)."""
    spec = env.spec()
    with _vm(env, spec) as name:
        env.driver.create_snapshot(name, "s1")
        config = env.driver.export_vm(name, env.export_dir, copy_storage=False)
    info = env.driver.import_vm(config)
    try:
        assert info.name == spec.name
        assert [s.name for s in env.driver.list_snapshots(spec.name)] == ["s1"]
    finally:
        env.driver.undefine_vm(spec.name)


CHECKS: tuple[Callable[[HostCheckEnv], None], ...] = (
    check_memory_in_2mb_units,
    check_snapshot_with_and_without_memory,
    check_export_import_with_snapshots,
)
