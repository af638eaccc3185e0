"""What a real Hyper-V host does that the driver must cope with (issue 20, items 5-9).

Each test failed against the driver before its fix, with the model refusing what a host refuses.
"""

from __future__ import annotations

from hvcloud.hypervisor.driver import VmState
from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from tests.support.hyperv_fake import HyperVModel

from .conftest import spec


def _vsms(model: HyperVModel):  # type: ignore[no-untyped-def]
    return model.connection().query("Msvm_VirtualSystemManagementService")[0]


# ------------------------------------------------------------------ 9: smaller facts


def test_memory_is_given_in_2_mb_units(driver: HyperVDriver, model: HyperVModel) -> None:
    info = driver.define_vm(spec(memory_mib=1023))
    # the spec reads back as asked, so that a repeated StartCommand sees the same definition
    assert info.spec.memory_mib == 1023
    mem = next(r for r in model.vm_resources("i-2-17-VM")
               if r["__class"] == "Msvm_MemorySettingData")
    assert mem["VirtualQuantity"] == mem["Reservation"] == mem["Limit"] == 1024


def test_the_model_refuses_an_odd_number_of_megabytes(driver: HyperVDriver,
                                                      model: HyperVModel) -> None:
    driver.define_vm(spec())
    conn = model.connection()
    vssd = conn.query("Msvm_VirtualSystemSettingData", {"ElementName": "i-2-17-VM"})[0]
    mem = next(r for r in conn.associators(vssd, assoc_class="Msvm_VirtualSystemSettingDataComponent",
                                           result_class="Msvm_MemorySettingData"))
    mem["VirtualQuantity"] = mem["Reservation"] = mem["Limit"] = 511
    out = conn.invoke(_vsms(model), "ModifyResourceSettings", ResourceSettings=[conn.embed(mem)])
    assert out["ReturnValue"] == 32773


def test_resource_settings_are_retried_as_os_win_does(driver: HyperVDriver,
                                                      model: HyperVModel) -> None:
    model.fail_next("AddResourceSettings", 32768)
    driver.define_vm(spec())
    assert driver.get_vm("i-2-17-VM").spec.disks


def test_32775_on_a_power_change_counts_as_done(driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    # the VM reached the state on its own between the read and the request: the host answers
    # 32775 (invalid state), which os-win treats as success
    model.fail_next("RequestStateChange", 32775)
    driver.stop_vm("i-2-17-VM", timeout=1.0, force=True)


def test_summary_code_102_is_the_load_history_and_109_the_health(model: HyperVModel,
                                                                 driver: HyperVDriver) -> None:
    driver.define_vm(spec())
    conn = model.connection()
    vssd = conn.query("Msvm_VirtualSystemSettingData", {"ElementName": "i-2-17-VM"})[0]
    out = conn.invoke(_vsms(model), "GetSummaryInformation", SettingData=[vssd.path],
                      RequestedInformation=[102, 109])
    info = out["SummaryInformation"][0]
    assert isinstance(info["ProcessorLoadHistory"], list) and info["HealthState"] == 5


def test_console_port_comes_from_the_terminal_service_settings(driver: HyperVDriver,
                                                                model: HyperVModel) -> None:
    driver.define_vm(spec())
    model.terminal_settings.props["ListenerPort"] = 12179
    assert driver.console("i-2-17-VM").port == 12179
    # and the host reports it, for the agent's rdp.server.port host detail
    assert driver.host_info().console_port == 12179


def test_kvp_classes_have_their_documented_parents() -> None:
    assert schema.is_subclass("Msvm_KvpExchangeComponentSettingData",
                              "CIM_ResourceAllocationSettingData")
    assert schema.is_subclass("Msvm_KvpExchangeDataItem", "CIM_ManagedElement")


# ------------------------------------------------------------------ 7: checkpoint type


def _snapshot_type(model: HyperVModel) -> int:
    vssd = model.connection().query("Msvm_VirtualSystemSettingData",
                                     {"ElementName": "i-2-17-VM",
                                      "VirtualSystemType": "Microsoft:Hyper-V:System:Realized"})[0]
    return int(vssd["UserSnapshotType"])


def test_a_memory_snapshot_is_a_standard_checkpoint(driver: HyperVDriver,
                                                    model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    assert _snapshot_type(model) == 3  # production checkpoints by default since Server 2016
    snap = driver.create_snapshot("i-2-17-VM", "mem", with_memory=True)
    assert snap.with_memory
    assert _snapshot_type(model) == 3  # the VM's own setting is put back
    driver.revert_snapshot("i-2-17-VM", "mem")
    assert driver.get_vm("i-2-17-VM").state == VmState.RUNNING


def test_a_snapshot_without_memory_reverts_to_off(driver: HyperVDriver,
                                                  model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.start_vm("i-2-17-VM")
    before = driver.get_vm("i-2-17-VM").spec
    snap = driver.create_snapshot("i-2-17-VM", "disk-only")
    assert not snap.with_memory
    driver.revert_snapshot("i-2-17-VM", "disk-only")
    after = driver.get_vm("i-2-17-VM")
    assert after.state == VmState.STOPPED
    # the model keeps a snapshot's device tree whole (drives still on their controllers)
    assert (after.spec.disks, after.spec.nics) == (before.disks, before.nics)


# ------------------------------------------------------------------ 8: results after a 4096 answer

_BARE = {"DefineSystem", "CreateSnapshot", "ImportSystemDefinition", "RealizePlannedSystem"}


def test_define_finds_the_vm_when_the_job_names_nothing(driver: HyperVDriver,
                                                        model: HyperVModel) -> None:
    model.bare_jobs |= {"DefineSystem"}
    assert driver.define_vm(spec()).name == "i-2-17-VM"


def test_snapshot_is_found_when_the_job_names_nothing(driver: HyperVDriver,
                                                      model: HyperVModel) -> None:
    driver.define_vm(spec())
    model.bare_jobs |= {"CreateSnapshot"}
    assert driver.create_snapshot("i-2-17-VM", "s1").name == "s1"
    assert driver.create_snapshot("i-2-17-VM", "s2").name == "s2"
    assert [s.name for s in driver.list_snapshots("i-2-17-VM") if s.current] == ["s2"]


def test_import_finds_the_vm_when_the_jobs_name_nothing(driver: HyperVDriver,
                                                        model: HyperVModel) -> None:
    driver.define_vm(spec())
    config = driver.export_vm("i-2-17-VM", "D:\\exports")
    driver.undefine_vm("i-2-17-VM")
    model.bare_jobs |= _BARE
    assert driver.import_vm(config).name == "i-2-17-VM"


# ------------------------------------------------------------------ 6: import with snapshots


def test_import_of_an_export_with_snapshots_gives_the_snapshot_folder(driver: HyperVDriver,
                                                                      model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.create_snapshot("i-2-17-VM", "s1", "first")
    driver.create_snapshot("i-2-17-VM", "s2")
    config = driver.export_vm("i-2-17-VM", "D:\\exports")
    driver.undefine_vm("i-2-17-VM")
    assert driver.import_vm(config).name == "i-2-17-VM"
    snaps = driver.list_snapshots("i-2-17-VM")
    assert [(s.name, s.parent, s.current) for s in snaps] == [("s1", None, False),
                                                              ("s2", "s1", True)]
    driver.revert_snapshot("i-2-17-VM", "s1")
    assert driver.get_vm("i-2-17-VM").spec.disks  # the snapshot came with its hardware


def test_the_model_refuses_an_import_with_snapshots_without_their_folder(
        driver: HyperVDriver, model: HyperVModel) -> None:
    driver.define_vm(spec())
    driver.create_snapshot("i-2-17-VM", "s1")
    config = driver.export_vm("i-2-17-VM", "D:\\exports")
    driver.undefine_vm("i-2-17-VM")
    conn = model.connection()
    out = conn.invoke(_vsms(model), "ImportSystemDefinition", SystemDefinitionFile=config,
                      SnapshotFolder="", GenerateNewSystemIdentifier=True)
    job = conn.get(out["Job"])
    for _ in range(5):
        job = conn.get(out["Job"])
    assert job["JobState"] == 10
