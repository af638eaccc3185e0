"""The simulator driver keeps the driver contract and its state across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hvcloud.hosttypes import PoolStats
from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DiskSpec,
    DriverError,
    InsufficientCapacity,
    InvalidVmState,
    NicSpec,
    SnapshotNotFound,
    VmAlreadyExists,
    VmNotFound,
    VmSpec,
    VmState,
)
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatedCluster, SimulatorDriver
from hvcloud.hypervisor.simulator.faults import FaultPlan, FaultPlanError
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.errors import StorageError
from hvcloud.storage.simulated import SharedPools, SimulatedStorage

GiB = 1024**3


def spec(name: str = "i-1-1-VM", mem: int = 512) -> VmSpec:
    return VmSpec(name=name, vcpus=2, memory_mib=mem, uuid="u-" + name,
                  disks=(DiskSpec(slot=0, path="/pool/root.qcow2", boot=True),),
                  nics=(NicSpec(device_id=0, mac="02:00:00:00:00:01", vlan=100),))


@pytest.fixture
def sim(tmp_path: Path) -> SimulatorDriver:
    return SimulatorDriver(tmp_path, HostProfile(address="127.0.0.1", memory_bytes=8 * GiB,
                                                 dom0_min_memory_bytes=1 * GiB), fsync=False)


def test_lifecycle(sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    assert sim.get_vm("i-1-1-VM").state == VmState.STOPPED
    with pytest.raises(VmAlreadyExists):
        sim.define_vm(spec())
    sim.start_vm("i-1-1-VM")
    sim.start_vm("i-1-1-VM")
    sim.pause_vm("i-1-1-VM")
    assert sim.get_vm("i-1-1-VM").power_state.value == "PowerUnknown"
    with pytest.raises(InvalidVmState):
        sim.start_vm("i-1-1-VM")
    sim.resume_vm("i-1-1-VM")
    sim.save_vm("i-1-1-VM")
    assert sim.get_vm("i-1-1-VM").state == VmState.SAVED
    with pytest.raises(InvalidVmState):
        sim.reboot_vm("i-1-1-VM")
    sim.restore_vm("i-1-1-VM")
    sim.reboot_vm("i-1-1-VM")
    sim.stop_vm("i-1-1-VM", timeout=1)
    sim.stop_vm("i-1-1-VM", timeout=1)
    sim.undefine_vm("i-1-1-VM")
    sim.undefine_vm("i-1-1-VM")
    with pytest.raises(VmNotFound):
        sim.get_vm("i-1-1-VM")


def test_state_survives_a_new_driver(tmp_path: Path, sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    sim.start_vm("i-1-1-VM")
    sim.attach_disk("i-1-1-VM", DiskSpec(slot=3, device="cdrom", path="/isos/a.iso", format="iso"))
    again = SimulatorDriver(tmp_path, sim.profile, fsync=False)
    vm = again.get_vm("i-1-1-VM")
    assert vm.state == VmState.RUNNING and vm.spec == sim.get_vm("i-1-1-VM").spec


def test_capacity(sim: SimulatorDriver) -> None:
    with pytest.raises(InsufficientCapacity):
        sim.define_vm(spec("big", mem=8 * 1024))
    sim.define_vm(spec("a", mem=4 * 1024))
    sim.define_vm(spec("b", mem=4 * 1024))
    sim.start_vm("a")
    with pytest.raises(InsufficientCapacity):
        sim.start_vm("b")
    sim.stop_vm("a", timeout=1)
    sim.start_vm("b")


def test_devices(sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    sim.attach_disk("i-1-1-VM", DiskSpec(slot=1, path="/pool/data.qcow2"))
    sim.attach_disk("i-1-1-VM", DiskSpec(slot=1, path="/pool/data.qcow2"))
    with pytest.raises(DriverError):
        sim.attach_disk("i-1-1-VM", DiskSpec(slot=1, path="/pool/other.qcow2"))
    sim.detach_disk("i-1-1-VM", "/pool/data.qcow2")
    with pytest.raises(DeviceNotFound):
        sim.detach_disk("i-1-1-VM", "/pool/data.qcow2")
    nic = sim.update_nic("i-1-1-VM", "02:00:00:00:00:01", vlan=None, enabled=False)
    assert nic.vlan is None and not nic.enabled and nic.network is None
    with pytest.raises(DeviceNotFound):
        sim.update_nic("i-1-1-VM", "02:00:00:00:00:99", vlan=5)


def test_snapshots(sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    sim.start_vm("i-1-1-VM")
    sim.create_snapshot("i-1-1-VM", "s1", with_memory=True)
    sim.attach_disk("i-1-1-VM", DiskSpec(slot=1, path="/pool/data.qcow2"))
    s2 = sim.create_snapshot("i-1-1-VM", "s2")
    assert s2.parent == "s1" and s2.current
    sim.revert_snapshot("i-1-1-VM", "s1")
    vm = sim.get_vm("i-1-1-VM")
    assert vm.state == VmState.RUNNING and len(vm.spec.disks) == 1
    sim.revert_snapshot("i-1-1-VM", "s2")
    assert sim.get_vm("i-1-1-VM").state == VmState.STOPPED
    sim.delete_snapshot("i-1-1-VM", "s1")
    assert [s.name for s in sim.list_snapshots("i-1-1-VM")] == ["s2"]
    assert sim.list_snapshots("i-1-1-VM")[0].parent is None
    with pytest.raises(SnapshotNotFound):
        sim.revert_snapshot("i-1-1-VM", "s1")


def test_migration_within_a_cluster(tmp_path: Path) -> None:
    cluster = SimulatedCluster()
    a = SimulatorDriver(tmp_path / "a", HostProfile("127.0.0.1"), cluster, fsync=False)
    b = SimulatorDriver(tmp_path / "b", HostProfile("127.0.0.2"), cluster, fsync=False)
    a.define_vm(spec())
    with pytest.raises(InvalidVmState):
        a.migrate_vm("i-1-1-VM", "127.0.0.2")
    a.start_vm("i-1-1-VM")
    a.migrate_vm("i-1-1-VM", "127.0.0.2")
    assert a.list_vms() == [] and b.get_vm("i-1-1-VM").state == VmState.RUNNING
    with pytest.raises(DriverError, match="not reachable"):
        b.migrate_vm("i-1-1-VM", "10.1.1.1")


def test_fault_plan(tmp_path: Path) -> None:
    plan = FaultPlan(tmp_path / "faults.json")
    assert plan.take("StartCommand") is None
    (tmp_path / "faults.json").write_text('{"StartCommand": {"mode": "delay", "seconds": 2, "count": 1}}')
    fault = plan.take("StartCommand")
    assert fault is not None and fault.mode == "delay" and fault.seconds == 2
    assert plan.take("StartCommand") is None
    plan.set({"CopyCommand": {"mode": "exit", "count": 1}})
    exit_fault = plan.take("CopyCommand")
    assert exit_fault is not None and exit_fault.mode == "exit" and plan.take("CopyCommand") is None
    for bad in ([], {"x": {"mode": "nope"}}, {"x": {"mode": "hang", "seconds": -1}},
                {"x": {"mode": "fail", "probability": 2}}, {"x": {"mode": "fail", "count": "many"}}):
        with pytest.raises(FaultPlanError):
            plan.set(bad)


def test_shared_pools_reach_files_another_simulated_host_made(tmp_path: Path) -> None:
    """Host B resizes a volume host A created on the shared pool; the record stays with A (it
    survives A's restart); a file no host made is still refused."""
    from hvcloud.storage.backend import ImageInPool, PoolRef
    from hvcloud.storage.errors import StorageError
    from hvcloud.storage.simulated import SimulatedStorage

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shared = SharedPools()
    a, b = SimulatedStorage(tmp_path / "a", shared=shared), SimulatedStorage(tmp_path / "b", shared=shared)
    pool = PoolRef(uuid="shared-1", pool_type="NetworkFilesystem", path="/export/primary", host="10.0.0.9")
    b.attach_pool(pool)
    made = a.create_volume(pool, "vol-1", 1 << 30)
    grown = b.resize_volume(ImageInPool(pool, made.path, "qcow2"), 2 << 30)
    assert grown.virtual_size == 2 << 30
    assert SimulatedStorage(tmp_path / "a")._own_file(pool.uuid, "vol-1") is not None
    again = SimulatedStorage(tmp_path / "a").resize_volume(ImageInPool(pool, "vol-1", "qcow2"), 2 << 30)
    assert again.virtual_size == 2 << 30, "A's state file has the new size"
    with pytest.raises(StorageError, match="not found"):
        b.resize_volume(ImageInPool(pool, "vol-2", "qcow2"), 2 << 30)


def test_shared_pools_are_one_storage_for_the_hosts_of_a_process(tmp_path: Path) -> None:
    shared = SharedPools()
    a_local = PoolStats(path="/sim/a/local", capacity_bytes=100 * GiB, available_bytes=100 * GiB)
    a = SimulatedStorage(tmp_path / "a", a_local, fsync=False, shared=shared)
    b = SimulatedStorage(tmp_path / "b", None, fsync=False, shared=shared)
    nfs = PoolRef(uuid="nfs-1", pool_type="NetworkFilesystem", path="/export", host="10.0.0.9")
    local = PoolRef(uuid="local-a", pool_type="Filesystem", path="/sim/a/local")
    image = ImageOnStore(store=StoreRef(kind="http", url="http://images"), path="http://images/t.qcow2",
                         format="qcow2", size=GiB)
    for s in (a, b):
        s.attach_pool(nfs)
    a.template_to_pool(image, nfs, "tmpl")
    assert b.template_to_pool(image, nfs, "tmpl").path == "tmpl"
    assert "tmpl" not in _files(tmp_path / "b"), "the template copy is made once per shared pool"
    other_agent = SimulatedStorage(tmp_path / "c", fsync=False)
    other_agent.attach_pool(nfs)
    with pytest.raises(StorageError, match="not in pool"):
        other_agent.volume_from_template(ImageInPool(nfs, "tmpl", "qcow2"), nfs, "vol-x")
    b.volume_from_template(ImageInPool(nfs, "tmpl", "qcow2"), nfs, "vol-1")
    assert a.create_volume(nfs, "vol-2", GiB).path == "vol-2"
    assert b.create_volume(nfs, "vol-2", GiB).path == "vol-2" and "vol-2" not in _files(tmp_path / "b")
    with pytest.raises(StorageError, match="another size"):
        b.create_volume(nfs, "vol-2", 2 * GiB)
    a.delete_volume(ImageInPool(nfs, "vol-1", "qcow2"))
    b.delete_volume(ImageInPool(nfs, "vol-2", "qcow2"))
    b.delete_volume(ImageInPool(nfs, "vol-2", "qcow2"))  # missing: still fine
    assert _files(tmp_path / "a") == {"tmpl"} and _files(tmp_path / "b") == set()
    a.create_volume(local, "private", GiB)
    b.delete_volume(ImageInPool(local, "private", "qcow2"))
    assert "private" in _files(tmp_path / "a"), "a host's local pool is not shared"


def _files(state_dir: Path) -> set[str]:
    data = json.loads((state_dir / "storage.json").read_text())
    return {name for pool in data["pools"].values() for name in pool["files"]}


def test_nic_plug_unplug_and_vxlan(tmp_path: Path, sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    vx = NicSpec(device_id=1, mac="02:00:00:00:00:02", network="cloudbr1", vxlan=5001)
    info = sim.plug_nic("i-1-1-VM", vx)
    assert (info.device_id, info.vxlan, info.vlan, info.network) == (1, 5001, None, "cloudbr1")
    assert sim.plug_nic("i-1-1-VM", vx) == info  # the same NIC again: no-op
    with pytest.raises(InvalidVmState, match="MAC"):
        sim.plug_nic("i-1-1-VM", NicSpec(device_id=2, mac="02:00:00:00:00:02"))
    with pytest.raises(InvalidVmState, match="device 1"):
        sim.plug_nic("i-1-1-VM", NicSpec(device_id=1, mac="02:00:00:00:00:03"))
    sim.start_vm("i-1-1-VM")
    sim.plug_nic("i-1-1-VM", NicSpec(device_id=2, mac="02:00:00:00:00:03"))
    # a VLAN change puts the NIC on that VLAN and off its VXLAN
    assert sim.update_nic("i-1-1-VM", "02:00:00:00:00:02", vlan=7).vxlan is None
    sim.update_nic("i-1-1-VM", "02:00:00:00:00:02", vlan="keep", enabled=False)
    again = SimulatorDriver(tmp_path, sim.profile, fsync=False)
    assert [(n.mac, n.vlan, n.vxlan) for n in again.list_nics("i-1-1-VM")] == [
        ("02:00:00:00:00:01", 100, None), ("02:00:00:00:00:02", 7, None), ("02:00:00:00:00:03", None, None)]
    sim.unplug_nic("i-1-1-VM", "02:00:00:00:00:02")
    with pytest.raises(DeviceNotFound):
        sim.unplug_nic("i-1-1-VM", "02:00:00:00:00:02")
    with pytest.raises(VmNotFound):
        sim.unplug_nic("i-9-9-VM", "02:00:00:00:00:01")
    assert [n.mac for n in sim.list_nics("i-1-1-VM")] == ["02:00:00:00:00:01", "02:00:00:00:00:03"]


def test_state_written_before_vxlan_still_loads(tmp_path: Path, sim: SimulatorDriver) -> None:
    sim.define_vm(spec())
    state = json.loads((tmp_path / "vms.json").read_text())
    for rec in state["vms"].values():
        for n in rec["spec"]["nics"]:
            del n["vxlan"]
    (tmp_path / "vms.json").write_text(json.dumps(state))
    again = SimulatorDriver(tmp_path, sim.profile, fsync=False)
    assert again.get_vm("i-1-1-VM").spec.nics == spec().nics
