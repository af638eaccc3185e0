"""Driver contract checks: what the :class:`~hvcloud.hypervisor.driver.Driver` interface promises,
as plain functions over a driver, shared by ``tests/contract`` (simulator, libvirt, the Hyper-V
WMI model) and ``deploy/windows/smoke_test.py`` (a real Hyper-V host).

Each check takes a :class:`ContractEnv`, creates only VMs named with ``env.prefix`` and removes
them before returning. A check raises :class:`CapabilityMissing` when the driver's capability table
says it cannot do what the check needs (the difference is explicit, never silent) and
``AssertionError`` (or a driver error) on failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DiskSpec,
    Driver,
    InvalidVmState,
    NicSpec,
    PowerState,
    VmAlreadyExists,
    VmNotFound,
    VmSpec,
    VmState,
    power_state_of,
)

STOP_TIMEOUT = 30.0


class CapabilityMissing(Exception):
    """The driver, by its capability table, cannot do what a check needs."""


@dataclass(frozen=True)
class DiskFile:
    path: str
    format: str


@dataclass
class ContractEnv:
    """What a check needs: the driver, a unique VM-name prefix, a NIC network that exists, a way to
    make a small disk file the driver accepts and to tell whether it still exists, and the
    driver's capability table (capability -> None if supported, else the reason it is not)."""

    driver: Driver
    prefix: str
    network: str | None
    make_disk: Callable[[str], DiskFile]
    disk_exists: Callable[[str], bool]
    console_protocol: str
    capabilities: Mapping[str, str | None] = field(default_factory=dict)
    _seq: Iterator[int] = field(default_factory=itertools.count)

    def require(self, capability: str) -> None:
        reason = self.capabilities.get(capability, f"capability {capability!r} not in the table")
        if reason is not None:
            raise CapabilityMissing(f"{self.driver.name}: {capability}: {reason}")

    def name(self) -> str:
        return f"{self.prefix}{next(self._seq)}"

    def spec(self, name: str | None = None, disks: tuple[DiskSpec, ...] = ()) -> VmSpec:
        n = name or self.name()
        mac = f"02:00:00:00:{next(self._seq) % 256:02x}:{len(n) % 256:02x}"
        return VmSpec(name=n, vcpus=1, memory_mib=64, disks=disks,
                      nics=(NicSpec(device_id=0, mac=mac, network=self.network),),
                      metadata={"contract": "yes"})


@contextmanager
def vm(env: ContractEnv, spec: VmSpec | None = None) -> Iterator[str]:
    """Define a VM, yield its name, and always undefine it."""
    s = spec or env.spec()
    env.driver.define_vm(s)
    try:
        yield s.name
    finally:
        env.driver.undefine_vm(s.name)


def _state(env: ContractEnv, name: str) -> VmState:
    return env.driver.get_vm(name).state


# ---------------------------------------------------------------- checks


def check_define_reads_back_spec(env: ContractEnv) -> None:
    s = env.spec()
    info = env.driver.define_vm(s)
    try:
        assert info.state == VmState.STOPPED, info.state
        got = env.driver.get_vm(s.name)
        assert got.state == VmState.STOPPED, got.state
        for spec in (info.spec, got.spec):
            assert (spec.name, spec.vcpus, spec.memory_mib) == (s.name, 1, 64), spec
            assert spec.nics == s.nics, (spec.nics, s.nics)
            assert spec.disks == s.disks, (spec.disks, s.disks)
            assert dict(spec.metadata) == dict(s.metadata), spec.metadata
    finally:
        env.driver.undefine_vm(s.name)


def check_define_twice_fails(env: ContractEnv) -> None:
    s = env.spec()
    with vm(env, s):
        try:
            env.driver.define_vm(s)
        except VmAlreadyExists:
            return
        raise AssertionError("a second define_vm did not raise VmAlreadyExists")


def check_missing_vm(env: ContractEnv) -> None:
    missing = env.name()
    for what, call in (("get_vm", lambda: env.driver.get_vm(missing)),
                       ("stop_vm", lambda: env.driver.stop_vm(missing, STOP_TIMEOUT, force=True))):
        try:
            call()
        except VmNotFound:
            continue
        raise AssertionError(f"{what} of a missing VM did not raise VmNotFound")
    env.driver.undefine_vm(missing)  # not an error
    assert missing not in {v.name for v in env.driver.list_vms()}


def check_start_stop(env: ContractEnv) -> None:
    with vm(env) as name:
        env.driver.start_vm(name)
        assert _state(env, name) == VmState.RUNNING
        assert env.driver.get_vm(name).power_state == PowerState.POWER_ON
        env.driver.start_vm(name)  # no-op
        assert _state(env, name) == VmState.RUNNING
        env.driver.stop_vm(name, STOP_TIMEOUT, force=True)
        assert _state(env, name) == VmState.STOPPED
        assert env.driver.get_vm(name).power_state == PowerState.POWER_OFF
        env.driver.stop_vm(name, STOP_TIMEOUT, force=True)  # no-op
        assert _state(env, name) == VmState.STOPPED


def check_power_state_mapping(env: ContractEnv) -> None:
    with vm(env) as name:
        for expect in (VmState.STOPPED, VmState.RUNNING, VmState.PAUSED):
            if expect == VmState.RUNNING:
                env.driver.start_vm(name)
            elif expect == VmState.PAUSED:
                env.driver.pause_vm(name)
            info = env.driver.get_vm(name)
            assert info.state == expect, (info.state, expect)
            assert info.power_state == power_state_of(expect), info.power_state


def check_pause_resume(env: ContractEnv) -> None:
    with vm(env) as name:
        env.driver.start_vm(name)
        env.driver.pause_vm(name)
        assert _state(env, name) == VmState.PAUSED
        env.driver.resume_vm(name)
        assert _state(env, name) == VmState.RUNNING


def check_list_vms(env: ContractEnv) -> None:
    with vm(env) as name:
        listed = {v.name: v for v in env.driver.list_vms()}
        assert name in listed, sorted(listed)
        assert listed[name].state == VmState.STOPPED


def check_attach_detach_disk(env: ContractEnv) -> None:
    disk = env.make_disk(env.name())
    with vm(env) as name:
        spec = DiskSpec(slot=1, path=disk.path, format=disk.format)  # type: ignore[arg-type]
        env.driver.attach_disk(name, spec)
        slots = {d.slot: d for d in env.driver.get_vm(name).spec.disks}
        assert 1 in slots and slots[1].path == disk.path, slots
        env.driver.detach_disk(name, disk.path)
        assert disk.path not in {d.path for d in env.driver.get_vm(name).spec.disks}
        try:
            env.driver.detach_disk(name, disk.path)
        except DeviceNotFound:
            return
        raise AssertionError("a second detach_disk did not raise DeviceNotFound")


def check_resize_disk_of_a_stopped_vm(env: ContractEnv) -> None:
    """Only a running VM's disk is resized through the hypervisor; a stopped VM's or a missing VM's
    is left to the storage backend (None)."""
    disk = env.make_disk(env.name())
    with vm(env) as name:
        env.driver.attach_disk(name, DiskSpec(slot=1, path=disk.path, format=disk.format))  # type: ignore[arg-type]
        assert env.driver.resize_disk(name, disk.path, 1 << 30) is None
    assert env.driver.resize_disk(env.name(), disk.path, 1 << 30) is None


def check_nic_vlan(env: ContractEnv) -> None:
    env.require("vlan")
    s = env.spec()
    with vm(env, s) as name:
        nics = env.driver.list_nics(name)
        assert [(n.mac, n.device_id, n.vlan) for n in nics] == [(s.nics[0].mac, 0, None)], nics
        mac = nics[0].mac
        out = env.driver.update_nic(name, mac, vlan=42)
        assert out.vlan == 42, out
        assert env.driver.list_nics(name)[0].vlan == 42
        # a change from one VLAN to another (Hyper-V refuses to modify a port's VLAN setting)
        assert env.driver.update_nic(name, mac, vlan=43).vlan == 43
        assert env.driver.list_nics(name)[0].vlan == 43
        env.driver.update_nic(name, mac, vlan=None)
        assert env.driver.list_nics(name)[0].vlan is None
        try:
            env.driver.update_nic(name, "02:ff:ff:ff:ff:ff", vlan=7)
        except DeviceNotFound:
            return
        raise AssertionError("update_nic of an unknown MAC did not raise DeviceNotFound")


def _macs(env: ContractEnv, name: str) -> list[str]:
    return [n.mac.lower() for n in env.driver.list_nics(name)]


def check_nic_plug_unplug(env: ContractEnv) -> None:
    """NICs plugged into and unplugged from a stopped VM; plugging the same NIC again is a no-op."""
    s = env.spec()
    extra = NicSpec(device_id=1, mac="02:00:00:01:00:01", network=env.network)
    with vm(env, s) as name:
        info = env.driver.plug_nic(name, extra)
        assert (info.mac.lower(), info.device_id) == (extra.mac, 1), info
        env.driver.plug_nic(name, extra)
        assert _macs(env, name) == [s.nics[0].mac, extra.mac], _macs(env, name)
        env.driver.unplug_nic(name, extra.mac)
        assert _macs(env, name) == [s.nics[0].mac], _macs(env, name)
        try:
            env.driver.unplug_nic(name, extra.mac)
        except DeviceNotFound:
            return
        raise AssertionError("unplug_nic of a NIC that is not there did not raise DeviceNotFound")


def check_nic_hotplug(env: ContractEnv) -> None:
    """A NIC plugged into a running VM is in its definition; it stays after a stop."""
    env.require("nic_hotplug")
    s = env.spec()
    extra = NicSpec(device_id=1, mac="02:00:00:01:00:02", network=env.network)
    with vm(env, s) as name:
        env.driver.start_vm(name)
        env.driver.plug_nic(name, extra)
        assert extra in env.driver.get_vm(name).spec.nics
        env.driver.stop_vm(name, timeout=STOP_TIMEOUT, force=True)
        assert _macs(env, name) == [s.nics[0].mac, extra.mac], _macs(env, name)
        env.driver.unplug_nic(name, extra.mac)
        assert _macs(env, name) == [s.nics[0].mac], _macs(env, name)


def check_vxlan_nic(env: ContractEnv) -> None:
    """A NIC on a VXLAN segment over the NIC network is defined and reported with its VNI."""
    env.require("vxlan")
    s = env.spec()
    vx = NicSpec(device_id=0, mac=s.nics[0].mac, network=env.network, vxlan=5001)
    s = VmSpec(name=s.name, vcpus=s.vcpus, memory_mib=s.memory_mib, nics=(vx,), metadata=s.metadata)
    with vm(env, s) as name:
        assert env.driver.get_vm(name).spec.nics == (vx,)
        nics = env.driver.list_nics(name)
        assert [(n.vxlan, n.vlan) for n in nics] == [(5001, None)], nics


def check_console(env: ContractEnv) -> None:
    with vm(env) as name:
        env.driver.start_vm(name)
        ep = env.driver.console(name)
        assert ep.protocol in ("vnc", "rdp"), ep
        assert ep.protocol == env.console_protocol, (ep.protocol, env.console_protocol)
        assert isinstance(ep.port, int) and 0 < ep.port < 65536, ep


def _png_size(data: bytes) -> tuple[int, int]:
    """The size in a PNG's header (signature, then IHDR first), checked without decoding."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    assert data[12:16] == b"IHDR", data[12:16]
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def check_screenshot(env: ContractEnv) -> None:
    """A running VM's screen is a PNG that fits the box asked for, touching it on one side; a
    stopped VM has none (InvalidVmState)."""
    env.require("thumbnail")
    with vm(env) as name:
        try:
            env.driver.screenshot(name, 160, 120)
        except InvalidVmState:
            pass
        else:
            raise AssertionError("screenshot of a stopped VM did not raise InvalidVmState")
        env.driver.start_vm(name)
        for width, height in ((160, 120), (300, 100), (64, 200)):
            thumb = env.driver.screenshot(name, width, height)
            assert _png_size(thumb.png) == (thumb.width, thumb.height), (thumb.width, thumb.height)
            assert 1 <= thumb.width <= width and 1 <= thumb.height <= height, (thumb.width, thumb.height)
            assert thumb.width == width or thumb.height == height, (thumb.width, thumb.height, width, height)
        env.driver.stop_vm(name, STOP_TIMEOUT, force=True)
        try:
            env.driver.screenshot(name, 160, 120)
        except InvalidVmState:
            return
        raise AssertionError("screenshot of a VM stopped again did not raise InvalidVmState")


def check_undefine_keeps_disks(env: ContractEnv) -> None:
    disk = env.make_disk(env.name())
    s = env.spec(disks=(DiskSpec(slot=0, path=disk.path, format=disk.format, boot=True),))  # type: ignore[arg-type]
    env.driver.define_vm(s)
    env.driver.undefine_vm(s.name)
    assert s.name not in {v.name for v in env.driver.list_vms()}
    try:
        env.driver.get_vm(s.name)
    except VmNotFound:
        pass
    else:
        raise AssertionError("get_vm after undefine_vm did not raise VmNotFound")
    assert env.disk_exists(disk.path), f"undefine_vm removed {disk.path}"


CHECKS: tuple[Callable[[ContractEnv], None], ...] = (
    check_define_reads_back_spec,
    check_define_twice_fails,
    check_missing_vm,
    check_start_stop,
    check_power_state_mapping,
    check_pause_resume,
    check_list_vms,
    check_attach_detach_disk,
    check_resize_disk_of_a_stopped_vm,
    check_nic_vlan,
    check_nic_plug_unplug,
    check_nic_hotplug,
    check_vxlan_nic,
    check_console,
    check_screenshot,
    check_undefine_keeps_disks,
)
