from __future__ import annotations

import pytest

from hvcloud.hypervisor.driver import (
    DiskSpec,
    Driver,
    InsufficientCapacity,
    InvalidVmState,
    PowerState,
    VmAlreadyExists,
    VmNotFound,
    VmState,
)
from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from hvcloud.hypervisor.hyperv.errors import HyperVJobFailed, HyperVJobTimeout
from tests.support.hyperv_fake import HyperVModel

from .conftest import ISO, ROOT, FakeTime, spec


def test_driver_implements_the_whole_interface(driver: HyperVDriver) -> None:
    assert isinstance(driver, Driver)
    assert not getattr(HyperVDriver, "__abstractmethods__", set())


def test_define_builds_the_vm_as_documented(driver: HyperVDriver, model: HyperVModel) -> None:
    info = driver.define_vm(spec())
    assert info.state == VmState.STOPPED
    assert info.power_state == PowerState.POWER_OFF
    assert info.spec.vcpus == 2 and info.spec.memory_mib == 1024
    assert info.spec.uuid == "5c3b-uuid" and info.spec.metadata == {"zone": "z1"}
    assert [(d.slot, d.device, d.path) for d in info.spec.disks] == [
        (0, "disk", ROOT), (3, "cdrom", ISO)]
    nic = info.spec.nics[0]
    assert (nic.mac, nic.network, nic.vlan, nic.enabled) == ("02:00:11:22:33:44", "public", 100,
                                                            True)
    subtypes = {r["ResourceSubType"] for r in model.vm_resources("i-2-17-VM")}
    assert "Microsoft:Hyper-V:Synthetic SCSI Controller" in subtypes
    assert "Microsoft:Hyper-V:Virtual Hard Disk" in subtypes
    mem = next(r for r in model.vm_resources("i-2-17-VM") if r["__class"] == "Msvm_MemorySettingData")
    assert mem["VirtualQuantity"] == 1024 and mem["DynamicMemoryEnabled"] is False
    assert driver.host_kvp("i-2-17-VM") == {"cloudstack-vm-userdata": "eth0ip=10.1.1.5"}


def test_a_fresh_driver_sees_what_another_made(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    other = HyperVDriver(model.connection(schema.V2), model.connection(schema.CIMV2))
    assert [v.name for v in other.list_vms()] == ["i-2-17-VM"]
    assert other.get_vm("i-2-17-VM").spec == driver.get_vm("i-2-17-VM").spec


def test_define_twice_and_missing_vm(driver: HyperVDriver) -> None:
    driver.define_vm(spec())
    with pytest.raises(VmAlreadyExists):
        driver.define_vm(spec())
    with pytest.raises(VmNotFound):
        driver.get_vm("nope")
    with pytest.raises(InsufficientCapacity):
        driver.define_vm(spec(name="huge", memory_mib=10**6))


def test_failed_define_is_rolled_back(driver: HyperVDriver) -> None:
    missing = DiskSpec(slot=0, path="C:\\VMs\\missing.vhdx", format="vhdx")
    with pytest.raises(HyperVJobFailed, match="cannot find the file"):
        driver.define_vm(spec(disks=(missing,)))
    assert driver.list_vms() == []


def test_power_cycle(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    assert model.vm_state("i-2-17-VM") == 2
    driver.start_vm("i-2-17-VM")  # no-op
    driver.pause_vm("i-2-17-VM")
    assert model.vm_state("i-2-17-VM") == 9
    assert driver.get_vm("i-2-17-VM").power_state == PowerState.POWER_UNKNOWN
    driver.resume_vm("i-2-17-VM")
    driver.save_vm("i-2-17-VM")
    assert driver.get_vm("i-2-17-VM").state == VmState.SAVED
    with pytest.raises(InvalidVmState):
        driver.pause_vm("i-2-17-VM")
    driver.restore_vm("i-2-17-VM")
    assert model.vm_state("i-2-17-VM") == 2
    with pytest.raises(InvalidVmState):
        driver.restore_vm("i-2-17-VM")
    driver.reboot_vm("i-2-17-VM")
    assert model.guest("i-2-17-VM").reboots == 1
    driver.reboot_vm("i-2-17-VM", hard=True)
    assert model.guest("i-2-17-VM").resets == 1


def test_graceful_stop_uses_the_shutdown_component(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    driver.stop_vm("i-2-17-VM", timeout=60)
    assert model.vm_state("i-2-17-VM") == 3
    assert "Msvm_ShutdownComponent.InitiateShutdown" in model.calls
    assert model.calls[-1] != "Msvm_ComputerSystem.RequestStateChange"
    driver.stop_vm("i-2-17-VM", timeout=60)  # no-op
    with pytest.raises(InvalidVmState):
        driver.reboot_vm("i-2-17-VM")


def test_stop_forces_off_when_the_guest_ignores_shutdown(
        driver: HyperVDriver, model: HyperVModel, fake_time: FakeTime) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    model.set_guest("i-2-17-VM", honours_shutdown=False)
    before = fake_time.t
    driver.stop_vm("i-2-17-VM", timeout=20)
    assert model.vm_state("i-2-17-VM") == 3
    assert fake_time.t - before >= 20
    assert model.calls[-1] == "Msvm_ComputerSystem.RequestStateChange"


def test_stop_without_integration_services_turns_off(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    model.set_guest("i-2-17-VM", ic_running=False)
    driver.stop_vm("i-2-17-VM", timeout=60)
    assert model.vm_state("i-2-17-VM") == 3
    assert "Msvm_ShutdownComponent.InitiateShutdown" not in model.calls


def test_start_without_memory_is_insufficient_capacity(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec(memory_mib=40000))
    driver.define_vm(spec(name="second", memory_mib=40000, nics=(), disks=()))
    driver.start_vm("i-2-17-VM")
    with pytest.raises(InsufficientCapacity, match="Not enough memory"):
        driver.start_vm("second")
    assert model.vm_state("second") == 3


def test_undefine_turns_off_and_keeps_files(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    driver.undefine_vm("i-2-17-VM")
    assert driver.list_vms() == []
    assert model.has_file(ROOT)
    driver.undefine_vm("i-2-17-VM")  # missing is fine


def test_hung_job_times_out_and_is_terminated(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    model.hang_next_job("RequestStateChange")
    with pytest.raises(HyperVJobTimeout):
        driver.start_vm("i-2-17-VM")
    assert any(j["Name"] == "RequestStateChange" and j["JobState"] == 8 for j in model.jobs())


def test_job_error_text_reaches_the_caller(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    model.fail_next_job("RequestStateChange", 32768,
                        "'i-2-17-VM' failed to start. (Virtual machine ID 1234)")
    with pytest.raises(HyperVJobFailed, match="failed to start") as info:
        driver.start_vm("i-2-17-VM")
    assert info.value.code == 32768 and info.value.job_state == 10


def test_sync_answers_work_too(driver: HyperVDriver, model: HyperVModel) -> None:
    model.sync_methods |= {"DefineSystem", "AddResourceSettings", "RequestStateChange"}
    driver.define_vm(spec(name="sync"))
    driver.start_vm("sync")
    assert model.vm_state("sync") == 2


def test_list_stats_and_console(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.define_vm(spec(name="idle", nics=(), disks=()))
    driver.start_vm("i-2-17-VM")
    stats = driver.vm_stats(["i-2-17-VM", "idle", "ghost"])
    assert list(stats) == ["i-2-17-VM"]
    assert stats["i-2-17-VM"].num_cpus == 2 and stats["i-2-17-VM"].memory_kb == 1024 * 1024
    assert stats["i-2-17-VM"].cpu_utilization == model.guest("i-2-17-VM").cpu_load
    console = driver.console("i-2-17-VM")
    assert (console.protocol, console.port, console.host) == ("rdp", 2179, "10.0.0.10")
    assert console.instance_id == driver.get_vm("i-2-17-VM").uuid
