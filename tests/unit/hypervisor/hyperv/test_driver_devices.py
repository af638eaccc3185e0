from __future__ import annotations

import io

import pytest
from PIL import Image

from hvcloud.host_errors import InvalidRequest
from hvcloud.hypervisor.driver import (
    DeviceNotFound,
    DiskSpec,
    InvalidVmState,
    NicSpec,
    NotSupported,
    SnapshotNotFound,
    VmState,
)
from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from hvcloud.hypervisor.hyperv.errors import HyperVJobFailed
from tests.support.hyperv_fake import HyperVModel

from .conftest import DATA, ISO, ROOT, spec


def test_data_disk_hot_attach_and_detach(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    disk = DiskSpec(slot=1, path=DATA, format="vhd")
    driver.attach_disk("i-2-17-VM", disk)
    driver.attach_disk("i-2-17-VM", disk)  # same path, same slot: no-op
    disks = {d.slot: d for d in driver.get_vm("i-2-17-VM").spec.disks}
    assert disks[1].path == DATA and disks[1].device == "disk"
    driver.detach_disk("i-2-17-VM", DATA)
    assert 1 not in {d.slot for d in driver.get_vm("i-2-17-VM").spec.disks}
    with pytest.raises(DeviceNotFound):
        driver.detach_disk("i-2-17-VM", DATA)


def test_ide_drives_cannot_be_hot_added(driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=()))
    driver.start_vm("i-2-17-VM")
    with pytest.raises(InvalidVmState):
        driver.attach_disk("i-2-17-VM", DiskSpec(slot=0, path=ROOT, format="vhdx"))


def test_iso_insert_swap_and_eject(driver: HyperVDriver, model: HyperVModel) -> None:
    other = "\\\\store\\share\\iso\\other.iso"
    model.add_file(other)
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    driver.attach_disk("i-2-17-VM", DiskSpec(slot=3, device="cdrom", path=other, format="iso"))
    cd = next(d for d in driver.get_vm("i-2-17-VM").spec.disks if d.device == "cdrom")
    assert cd.path == other
    driver.detach_disk("i-2-17-VM", other)
    cd = next(d for d in driver.get_vm("i-2-17-VM").spec.disks if d.device == "cdrom")
    assert cd.path is None  # the drive stays, empty
    driver.attach_disk("i-2-17-VM", DiskSpec(slot=3, device="cdrom", path=ISO, format="iso"))


def test_unsupported_disks(driver: HyperVDriver) -> None:
    driver.define_vm(spec())
    with pytest.raises(NotSupported):
        driver.attach_disk("i-2-17-VM", DiskSpec(slot=1, path="/x.qcow2", format="qcow2"))
    with pytest.raises(NotSupported):
        driver.attach_disk("i-2-17-VM", DiskSpec(slot=1, device="floppy", path="a.vfd"))
    with pytest.raises(HyperVJobFailed, match="cannot find the file"):
        driver.attach_disk("i-2-17-VM", DiskSpec(slot=2, path="C:\\no.vhd", format="vhd"))
    slots = {d.slot for d in driver.get_vm("i-2-17-VM").spec.disks}
    assert slots == {0, 3}  # the empty drive made for the failed attach was rolled back


def test_nic_vlan_network_and_link(driver: HyperVDriver) -> None:
    driver.create_switch("private-net", "private")
    driver.define_vm(spec())
    mac = "02:00:11:22:33:44"
    info = driver.update_nic("i-2-17-VM", mac, vlan=200)
    assert info.vlan == 200
    info = driver.update_nic("i-2-17-VM", mac, vlan=None, network="private-net", enabled=False)
    assert (info.vlan, info.network, info.enabled) == (None, "private-net", False)
    info = driver.update_nic("i-2-17-VM", mac, enabled=True)
    assert info.enabled and info.network == "private-net"
    with pytest.raises(DeviceNotFound):
        driver.update_nic("i-2-17-VM", "02:00:00:00:00:99", vlan=3)


def test_emulated_nic_and_add_remove(driver: HyperVDriver) -> None:
    driver.define_vm(spec(nics=(NicSpec(device_id=1, mac="02:00:00:00:00:02", model="emulated",
                                         rate_mbps=100),)))
    driver.add_nic("i-2-17-VM", NicSpec(device_id=2, mac="02:00:00:00:00:03"))
    nics = driver.list_nics("i-2-17-VM")
    assert [(n.device_id, n.network) for n in nics] == [(1, "public"), (2, "public")]
    assert driver.get_vm("i-2-17-VM").spec.nics[0].model == "emulated"
    driver.remove_nic("i-2-17-VM", "02:00:00:00:00:03")
    assert len(driver.list_nics("i-2-17-VM")) == 1
    driver.start_vm("i-2-17-VM")
    with pytest.raises(InvalidVmState):
        driver.add_nic("i-2-17-VM", NicSpec(device_id=3, mac="02:00:00:00:00:04"))


def test_plug_and_unplug_nic_of_a_stopped_vm(driver: HyperVDriver) -> None:
    driver.define_vm(spec(nics=(NicSpec(device_id=1, mac="02:00:00:00:00:02"),)))
    info = driver.plug_nic("i-2-17-VM", NicSpec(device_id=2, mac="02:00:00:00:00:03", vlan=12))
    assert (info.mac, info.device_id, info.vlan) == ("02:00:00:00:00:03", 2, 12)
    assert driver.plug_nic("i-2-17-VM", NicSpec(device_id=2, mac="02:00:00:00:00:03", vlan=12)) == info
    assert len(driver.list_nics("i-2-17-VM")) == 2
    driver.unplug_nic("i-2-17-VM", "02:00:00:00:00:03")
    assert [n.mac for n in driver.list_nics("i-2-17-VM")] == ["02:00:00:00:00:02"]
    with pytest.raises(DeviceNotFound):
        driver.unplug_nic("i-2-17-VM", "02:00:00:00:00:03")
    driver.start_vm("i-2-17-VM")
    with pytest.raises(InvalidVmState, match="only while it is off"):
        driver.plug_nic("i-2-17-VM", NicSpec(device_id=3, mac="02:00:00:00:00:04"))


def test_vxlan_nics_are_refused_before_anything_is_made(driver: HyperVDriver) -> None:
    vx = NicSpec(device_id=1, mac="02:00:00:00:00:02", network="public", vxlan=5001)
    with pytest.raises(NotSupported, match="VXLAN segments"):
        driver.define_vm(spec(nics=(vx,)))
    assert driver.list_vms() == []
    driver.define_vm(spec(nics=()))
    with pytest.raises(NotSupported, match="VXLAN segments"):
        driver.plug_nic("i-2-17-VM", vx)
    assert driver.list_nics("i-2-17-VM") == []
    assert driver.host_capabilities()["vxlan"] is not None


def test_snapshots(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    first = driver.create_snapshot("i-2-17-VM", "before", "clean", with_memory=True)
    assert first.current and first.with_memory and first.description == "clean"
    driver.attach_disk("i-2-17-VM", DiskSpec(slot=1, path=DATA, format="vhd"))
    second = driver.create_snapshot("i-2-17-VM", "after")
    assert second.parent == "before"
    driver.revert_snapshot("i-2-17-VM", "before")
    vm = driver.get_vm("i-2-17-VM")
    assert 1 not in {d.slot for d in vm.spec.disks}
    assert vm.state == VmState.RUNNING  # memory snapshot: running again
    assert [s.name for s in driver.list_snapshots("i-2-17-VM") if s.current] == ["before"]
    driver.delete_snapshot("i-2-17-VM", "before")
    assert [(s.name, s.parent) for s in driver.list_snapshots("i-2-17-VM")] == [("after", None)]
    driver.delete_snapshot("i-2-17-VM", "before")
    with pytest.raises(SnapshotNotFound):
        driver.revert_snapshot("i-2-17-VM", "before")


def test_switches(driver: HyperVDriver) -> None:
    driver.create_switch("internal-net", "internal")
    kinds = {s.name: s.kind for s in driver.list_switches()}
    assert kinds == {"public": "external", "internal-net": "internal"}
    with pytest.raises(Exception, match="no free physical adapter"):
        driver.create_switch("second-external", "external")
    driver.define_vm(spec())
    driver.delete_switch("public")
    assert driver.list_nics("i-2-17-VM")[0].network is None
    driver.delete_switch("public")


def test_kvp_round_trip_and_guest_data(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.write_kvp("i-2-17-VM", "role", "web")
    driver.write_kvp("i-2-17-VM", "role", "db")
    assert driver.host_kvp("i-2-17-VM")["role"] == "db"
    driver.delete_kvp("i-2-17-VM", "role")
    assert "role" not in driver.host_kvp("i-2-17-VM")
    with pytest.raises(Exception, match="KVP names"):
        driver.write_kvp("i-2-17-VM", "big", "x" * 2000)
    model.set_guest("i-2-17-VM", kvp={"agent": "ok"}, ips={"020011223344": ["10.1.1.5", "fe80::1"]})
    assert driver.guest_kvp("i-2-17-VM") == {}  # off: nothing reported
    driver.start_vm("i-2-17-VM")
    assert driver.guest_kvp("i-2-17-VM") == {"agent": "ok"}
    assert driver.guest_kvp("i-2-17-VM", intrinsic=True)["NetworkAddressIPv4"] == "10.1.1.5"
    assert driver.guest_ips("i-2-17-VM") == {"02:00:11:22:33:44": ["10.1.1.5", "fe80::1"]}
    services = {s.name: s.status for s in driver.integration_services("i-2-17-VM")}
    assert services["Heartbeat"] == "OK"


def test_screenshot(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    with pytest.raises(InvalidVmState):
        driver.screenshot("i-2-17-VM", 160, 120)
    driver.start_vm("i-2-17-VM")
    # the fake draws red growing left to right and green top to bottom, blue fixed at 0x0A (5 bits)
    thumb = driver.screenshot("i-2-17-VM", 32, 24)
    image = Image.open(io.BytesIO(thumb.png))
    assert (thumb.width, thumb.height) == image.size == (32, 24)
    assert image.getpixel((31, 23))[:2] == (255, 255)  # r and g at maximum
    assert image.getpixel((0, 0)) == (0, 0, 0x0A << 3 | 0x0A >> 2)
    # a box that is not 4:3 gets the 4:3 picture that fits it
    assert (driver.screenshot("i-2-17-VM", 200, 100).width, driver.screenshot("i-2-17-VM", 200, 100).height) \
        == (133, 100)
    # more than Hyper-V renders: it is asked for 1024x768 and the picture is scaled up
    big = driver.screenshot("i-2-17-VM", 1600, 1200)
    assert (big.width, big.height) == Image.open(io.BytesIO(big.png)).size == (1600, 1200)
    with pytest.raises(InvalidRequest):
        driver.screenshot("i-2-17-VM", 0, 120)


def test_the_fake_refuses_thumbnails_hyperv_refuses(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    conn = model.connection(schema.V2)
    vsms = conn.query("Msvm_VirtualSystemManagementService")[0]
    vm = conn.query("Msvm_ComputerSystem", {"ElementName": "i-2-17-VM"})[0]
    vssd = conn.associators(vm, assoc_class="Msvm_SettingsDefineState",
                            result_class="Msvm_VirtualSystemSettingData")[0]
    for w, h in ((1025, 768), (1024, 769), (0, 10)):
        out = conn.invoke(vsms, "GetVirtualSystemThumbnailImage", TargetSystem=vssd.path,
                          WidthPixels=w, HeightPixels=h)
        assert out["ReturnValue"] != 0, (w, h)
    driver.stop_vm("i-2-17-VM", timeout=30, force=True)
    out = conn.invoke(vsms, "GetVirtualSystemThumbnailImage", TargetSystem=vssd.path,
                      WidthPixels=64, HeightPixels=48)
    assert out["ReturnValue"] != 0


def test_export_import_and_migration(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    config = driver.export_vm("i-2-17-VM", "D:\\exports")
    assert model.has_file(config)
    driver.undefine_vm("i-2-17-VM")
    imported = driver.import_vm(config)
    assert imported.name == "i-2-17-VM"
    assert imported.spec.disks[0].path == "D:\\exports\\i-2-17-VM\\Virtual Hard Disks\\" \
                                          "i-2-17-VM-root.vhdx"
    peer = HyperVModel(host="HV2")
    model.peers["hv2.example.test"] = peer
    driver.start_vm("i-2-17-VM")
    with pytest.raises(HyperVJobFailed, match="cannot access"):
        driver.migrate_vm("i-2-17-VM", "hv2.example.test")
    driver.migrate_vm("i-2-17-VM", "hv2.example.test", with_storage=True)
    assert driver.list_vms() == []
    there = HyperVDriver(peer.connection(schema.V2), peer.connection(schema.CIMV2))
    assert there.get_vm("i-2-17-VM").state == VmState.RUNNING
    with pytest.raises(HyperVJobFailed, match="No such host"):
        there.migrate_vm("i-2-17-VM", "nowhere")


def test_host_facts(driver: HyperVDriver) -> None:
    info = driver.host_info()
    assert (info.hypervisor_type, info.hypervisor_version) == ("Hyperv", "10.0")
    assert (info.cpu_sockets, info.cpus, info.cpu_mhz) == (2, 16, 2400)
    assert info.nics[0].ip == "10.0.0.10"
    assert driver.host_stats().cpu_utilization == 25.0
    pool = driver.local_pool()
    assert pool is not None and pool.path.startswith("C:\\Users\\Public")
    assert pool.capacity_bytes == 500 * 2**30 and pool.used_bytes == 180 * 2**30
