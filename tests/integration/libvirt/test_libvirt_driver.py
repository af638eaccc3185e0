"""The libvirt driver against the real libvirtd and QEMU (TCG): a real guest boots from a linked
clone of the test template, devices are hot-plugged, and a fresh driver sees everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DiskSpec,
    InsufficientCapacity,
    InvalidVmState,
    NicSpec,
    NotSupported,
    SnapshotNotFound,
    VmAlreadyExists,
    VmNotFound,
    VmSpec,
    VmState,
)
from hvcloud.hypervisor.libvirt.config import LibvirtConfig
from hvcloud.hypervisor.libvirt.domain_xml import InvalidSpec
from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
from hvcloud.storage import guest_image, qemu_img
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.local import LocalStorageBackend
from tests.support.wait import wait_for

pytestmark = [pytest.mark.libvirt, pytest.mark.usefixtures("libvirt_ok")]

BOOT_TIMEOUT = 180.0




def console(log_dir: Path, name: str) -> str:
    try:
        return (log_dir / f"{name}.log").read_text(errors="replace")
    except FileNotFoundError:
        return ""


def last_disks_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(guest_image.DISKS_MARKER)]
    return lines[-1] if lines else ""


def libvirt_xml(name: str) -> str:
    import libvirt

    conn = libvirt.open("qemu:///system")
    try:
        return str(conn.lookupByName(name).XMLDesc(0))
    finally:
        conn.close()


def make_driver(tmp_path: Path, bridge: str, **kw: object) -> LibvirtDriver:
    config = LibvirtConfig(domain_type="qemu", console_log_dir=str(tmp_path / "console"),
                           default_bridge=bridge, vnc_listen="127.0.0.1",
                           local_pool_dir=str(tmp_path / "primary"))
    return LibvirtDriver(config, **kw)  # type: ignore[arg-type]


def root_clone(tmp_path: Path, guest: guest_image.GuestImage, name: str) -> tuple[LocalStorageBackend, PoolRef, str]:
    """Copy the template into a pool (once) and make a linked-clone root disk from it."""
    backend = LocalStorageBackend(tmp_path / "data")
    pool = PoolRef(uuid="p1", pool_type="Filesystem", path=str(tmp_path / "primary"))
    store = StoreRef(kind="local", url=str(guest.qcow2.parent))
    tmpl = backend.template_to_pool(ImageOnStore(store, guest.qcow2.name, "qcow2"), pool, "guest-tmpl")
    vol = backend.volume_from_template(ImageInPool(pool, tmpl.path, tmpl.format), pool, f"ROOT-{name}")
    assert vol.backing_path == tmpl.path, "the root disk must be a linked clone"
    return backend, pool, backend.local_path(ImageInPool(pool, vol.path, "qcow2"))


def test_guest_boots_and_devices_hot_plug(tmp_path: Path, guest: guest_image.GuestImage, bridge: str,
                                          vm_prefix: str) -> None:
    name = vm_prefix + "boot"
    backend, pool, root = root_clone(tmp_path, guest, name)
    events: list[tuple[str, VmState]] = []
    drv = make_driver(tmp_path, bridge, on_event=lambda n, s: events.append((n, s)))
    log_dir = tmp_path / "console"
    spec = VmSpec(name=name, vcpus=1, memory_mib=128,
                  disks=(DiskSpec(slot=0, path=root, boot=True),),
                  nics=(NicSpec(device_id=0, mac="02:00:11:22:33:44"),),
                  vnc_password="pw123", metadata={"cloudstack.id": "42"})
    info = drv.define_vm(spec)
    assert info.state == VmState.STOPPED and info.spec == spec
    with pytest.raises(VmAlreadyExists):
        drv.define_vm(spec)

    drv.start_vm(name)
    wait_for("the guest's boot marker", lambda: guest_image.BOOT_MARKER in console(log_dir, name), BOOT_TIMEOUT,
             interval=0.25)
    wait_for("the guest to list its disks", lambda: "vda" in last_disks_line(console(log_dir, name)), 60, interval=0.25)
    assert f"{guest_image.NET_MARKER} eth0 up 02:00:11:22:33:44" in console(log_dir, name)
    drv.start_vm(name)  # idempotent
    assert drv.get_vm(name).state == VmState.RUNNING

    # console: VNC on the configured address, with the VM's password
    ep = drv.console(name)
    assert ep.protocol == "vnc" and ep.host == "127.0.0.1" and ep.port >= 5900 and ep.password == "pw123"
    with socket.create_connection((ep.host, ep.port), timeout=10) as s:
        assert s.recv(12).startswith(b"RFB ")

    stats = drv.vm_stats([name, vm_prefix + "missing"])
    assert set(stats) == {name}
    assert stats[name].num_cpus == 1 and stats[name].memory_kb > 0 and stats[name].disk_read_kb > 0

    # a data disk, hot-plugged: the guest sees vdb appear and disappear
    data = backend.create_volume(pool, f"DATA-{name}", 8 << 20)
    data_path = backend.local_path(ImageInPool(pool, data.path, "qcow2"))
    drv.attach_disk(name, DiskSpec(slot=1, path=data_path))
    drv.attach_disk(name, DiskSpec(slot=1, path=data_path))  # same disk again: no-op
    wait_for("the guest to see vdb", lambda: "vdb" in last_disks_line(console(log_dir, name)), 60, interval=0.25)
    # grown while running, through the hypervisor; never shrunk under the guest
    assert drv.resize_disk(name, data_path, 16 << 20) == 16 << 20
    assert drv.resize_disk(name, data_path, 16 << 20) == 16 << 20
    with pytest.raises(NotSupported, match="stop the VM first"):
        drv.resize_disk(name, data_path, 4 << 20)
    assert drv.resize_disk(name, str(tmp_path / "not-attached.qcow2"), 16 << 20) is None
    assert drv.resize_disk(vm_prefix + "missing", data_path, 16 << 20) is None
    # an ISO inserted into the (empty) optical drive while running
    iso = tmp_path / "tools.iso"
    iso.write_bytes(b"\x00" * (1 << 20))
    drv.attach_disk(name, DiskSpec(slot=3, device="cdrom", path=str(iso), format="iso", read_only=True))
    paths = {d.path for d in drv.get_vm(name).spec.disks}
    assert {root, data_path, str(iso)} <= paths
    drv.detach_disk(name, str(iso))
    drv.detach_disk(name, data_path)
    wait_for("the guest to lose vdb", lambda: "vdb" not in last_disks_line(console(log_dir, name)), 60, interval=0.25)
    assert {d.path for d in drv.get_vm(name).spec.disks} == {root, None}
    with pytest.raises(DeviceNotFound):
        drv.detach_disk(name, data_path)

    # a NIC's link is cut and restored live, and the change is remembered
    nic = drv.update_nic(name, "02:00:11:22:33:44", enabled=False)
    assert not nic.enabled and nic.network is None and nic.vlan is None
    assert [n.enabled for n in drv.list_nics(name)] == [False]
    assert "<link state='down'/>" in libvirt_xml(name)
    drv.update_nic(name, "02:00:11:22:33:44", enabled=True)
    assert "<link state='up'/>" in libvirt_xml(name)
    with pytest.raises(DeviceNotFound):
        drv.update_nic(name, "02:00:00:00:00:99", enabled=True)

    # a fresh driver (as after an agent restart) sees the VM unchanged
    fresh = make_driver(tmp_path, bridge)
    seen = fresh.get_vm(name)
    assert seen.state == VmState.RUNNING and seen.spec == drv.get_vm(name).spec
    assert seen.spec.vnc_password == "pw123" and seen.spec.metadata == {"cloudstack.id": "42"}
    assert name in {v.name for v in fresh.list_vms()}
    fresh.close()

    drv.pause_vm(name)
    assert drv.get_vm(name).state == VmState.PAUSED
    assert drv.get_vm(name).power_state == "PowerUnknown"
    drv.resume_vm(name)
    assert drv.get_vm(name).state == VmState.RUNNING
    drv.reboot_vm(name, hard=True)
    wait_for("the guest to boot again after the reset",
             lambda: console(log_dir, name).count(guest_image.BOOT_MARKER) >= 2, BOOT_TIMEOUT, interval=0.25)
    drv.save_vm(name)
    assert drv.get_vm(name).state == VmState.SAVED
    with pytest.raises(InvalidVmState):
        drv.pause_vm(name)
    drv.restore_vm(name)
    assert drv.get_vm(name).state == VmState.RUNNING

    drv.stop_vm(name, timeout=60)  # the guest powers off on the ACPI button
    assert guest_image.POWEROFF_MARKER in console(log_dir, name), "the stop was not graceful"
    assert drv.get_vm(name).state == VmState.STOPPED
    assert drv.get_vm(name).power_state == "PowerOff"
    drv.stop_vm(name, timeout=2)  # stopping a stopped VM is a no-op
    assert drv.resize_disk(name, root, 1 << 30) is None, "a stopped VM's disk is resized offline"
    with pytest.raises(InvalidVmState):
        drv.reboot_vm(name)
    wait_for("a lifecycle event for the stop", lambda: (name, VmState.STOPPED) in events, 10, interval=0.25)
    assert (name, VmState.RUNNING) in events

    drv.undefine_vm(name)
    drv.undefine_vm(name)
    with pytest.raises(VmNotFound):
        drv.get_vm(name)
    assert Path(root).exists() and Path(data_path).exists(), "undefine keeps the disks"
    drv.close()


KILLED_AGENT = textwrap.dedent("""
    import sys
    from hvcloud.hypervisor.driver import DiskSpec, NicSpec, VmSpec
    from hvcloud.hypervisor.libvirt.config import LibvirtConfig
    from hvcloud.hypervisor.libvirt.driver import LibvirtDriver
    name, root, bridge, logs = sys.argv[1:5]
    drv = LibvirtDriver(LibvirtConfig(domain_type="qemu", console_log_dir=logs, default_bridge=bridge),
                        on_event=lambda n, s: None)
    drv.define_vm(VmSpec(name=name, vcpus=1, memory_mib=64, disks=(DiskSpec(slot=0, path=root),),
                         nics=(NicSpec(device_id=0, mac="02:00:00:aa:bb:01", vlan=None),),
                         vnc_password="kill9"))
    drv.start_vm(name)
    print("ready", flush=True)
    sys.stdin.read()
""")


def test_vm_survives_sigkill_of_the_process_that_made_it(tmp_path: Path, guest: guest_image.GuestImage,
                                                        bridge: str, vm_prefix: str) -> None:
    name = vm_prefix + "kill9"
    _, _, root = root_clone(tmp_path, guest, name)
    args = [sys.executable, "-c", KILLED_AGENT, name, root, bridge, str(tmp_path / "console")]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert proc.stdout is not None
        lines = iter(proc.stdout.readline, "")
        assert any(line.strip() == "ready" for line in lines)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    drv = make_driver(tmp_path, bridge)
    vm = drv.get_vm(name)
    assert vm.state == VmState.RUNNING
    assert vm.spec.memory_mib == 64 and vm.spec.disks == (DiskSpec(slot=0, path=root),)
    assert vm.spec.vnc_password == "kill9"
    drv.stop_vm(name, timeout=0, force=True)
    drv.undefine_vm(name)
    drv.close()


def test_snapshots_and_refusals_on_a_stopped_vm(tmp_path: Path, bridge: str, vm_prefix: str) -> None:
    drv = make_driver(tmp_path, bridge)
    disk = tmp_path / "disk.qcow2"
    qemu_img.create(str(disk), "qcow2", 16 << 20)
    name = vm_prefix + "snap"
    drv.define_vm(VmSpec(name=name, vcpus=1, memory_mib=64, disks=(DiskSpec(slot=0, path=str(disk)),)))
    s1 = drv.create_snapshot(name, "s1", "first")
    assert s1.name == "s1" and s1.description == "first" and not s1.with_memory
    drv.create_snapshot(name, "s2")
    assert [s.name for s in drv.list_snapshots(name)] == ["s1", "s2"]
    drv.revert_snapshot(name, "s1")
    with pytest.raises(SnapshotNotFound):
        drv.revert_snapshot(name, "nope")
    drv.delete_snapshot(name, "s2")
    drv.delete_snapshot(name, "s2")
    assert [s.name for s in drv.list_snapshots(name)] == ["s1"]
    with pytest.raises(NotSupported):
        drv.migrate_vm(name, "10.0.0.9")
    with pytest.raises(InvalidVmState):
        drv.save_vm(name)
    with pytest.raises(InvalidVmState):
        drv.console(name)
    drv.undefine_vm(name)

    with pytest.raises(InsufficientCapacity):
        drv.define_vm(VmSpec(name=vm_prefix + "huge", vcpus=1, memory_mib=1 << 30))
    child = tmp_path / "child.vhd"
    qemu_img.create(str(tmp_path / "parent.vhd"), "vhd", 16 << 20)
    qemu_img.create(str(child), "qcow2", 16 << 20)
    with pytest.raises(InvalidSpec):
        drv.define_vm(VmSpec(name=vm_prefix + "vhd", vcpus=1, memory_mib=64,
                             disks=(DiskSpec(slot=0, path=str(child), format="vhd"),)))
    with pytest.raises(VmNotFound):
        drv.stop_vm(vm_prefix + "missing", timeout=1)
    drv.close()


def test_host_facts_are_real(tmp_path: Path, bridge: str) -> None:
    drv = make_driver(tmp_path, bridge)
    info = drv.host_info()
    assert info.cpus == os.cpu_count() and info.memory_bytes > 1 << 30 and info.cpu_mhz > 0
    assert info.hypervisor_type == "KVM" and info.hypervisor_version.count(".") == 2
    stats = drv.host_stats()
    assert 0.0 <= stats.cpu_utilization <= 100.0 and 0 < stats.free_memory_kb <= stats.total_memory_kb
    pool = drv.local_pool()
    assert pool is not None and pool.capacity_bytes > pool.available_bytes > 0
    drv.close()


def test_concurrent_defines_on_different_vms(tmp_path: Path, bridge: str, vm_prefix: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    drv = make_driver(tmp_path, bridge)
    names = [f"{vm_prefix}c{i}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        infos = list(pool.map(lambda n: drv.define_vm(VmSpec(name=n, vcpus=1, memory_mib=64)), names))
    assert [i.name for i in infos] == names
    assert set(names) <= {v.name for v in drv.list_vms()}
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(drv.undefine_vm, names))
    assert not set(names) & {v.name for v in drv.list_vms()}
    drv.close()
