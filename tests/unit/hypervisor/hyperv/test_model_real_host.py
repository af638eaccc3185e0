"""What a real Hyper-V host refuses or returns that the model once let through (issue #20, items
1-4 and the model's required parameters / CIM types). Each test failed against the old model or
the old driver."""

from __future__ import annotations

import datetime

import pytest

from hvcloud.hypervisor.driver import DiskSpec, InvalidVmState, NotSupported
from hvcloud.hypervisor.hyperv import HyperVDriver, jobs, schema
from hvcloud.hypervisor.hyperv.errors import HyperVJobFailed, HyperVJobTimeout
from hvcloud.hypervisor.hyperv.images import ImageManagement
from tests.support.hyperv_fake import HyperVModel

from .conftest import ROOT, FakeTime, spec

# ---------------------------------------------------------------- item 3: job classes


@pytest.mark.parametrize("job_class", ["Msvm_StorageJob", "Msvm_MigrationJob"])
def test_schema_knows_every_job_class_pymi_can_hand_back(job_class: str) -> None:
    assert schema.is_subclass(job_class, "CIM_ConcreteJob")
    # what PyMIConnection asks before terminating a job: a KeyError here hid the real timeout
    assert schema.out_parameter_names(job_class, "RequestStateChange") == ["ReturnValue"]


def test_image_management_jobs_are_storage_jobs_and_time_out_cleanly(
        model: HyperVModel, driver: HyperVDriver, fake_time: FakeTime) -> None:
    policy = jobs.JobPolicy(timeout=5, clock=jobs.Clock(now=fake_time.now, sleep=fake_time.sleep))
    ims = ImageManagement(model.connection(), lambda: policy)
    model.hang_next_job("CreateVirtualHardDisk")
    with pytest.raises(HyperVJobTimeout):
        ims.create_dynamic("C:\\VMs\\hang.vhdx", 16 * 2**20)
    job = model.jobs()[-1]
    assert job["Name"] == "CreateVirtualHardDisk"
    storage = model.connection().query("Msvm_StorageJob")
    assert [j["JobState"] for j in storage] == [8]  # terminated on timeout


def test_migration_jobs_are_migration_jobs(model: HyperVModel, driver: HyperVDriver) -> None:
    peer = HyperVModel(host="HVPEER")
    model.peers["hvpeer"] = peer
    driver.define_vm(spec(disks=()))
    driver.migrate_vm("i-2-17-VM", "HVPEER")
    found = model.connection().query("Msvm_MigrationJob")
    assert [j["Name"] for j in found] == ["MigrateVirtualSystemToHost"]


# ---------------------------------------------------------------- item 1: CIM datetimes


def test_model_hands_back_datetimes_as_pymi_does(model: HyperVModel, driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=()))
    vssd = model.connection().query("Msvm_VirtualSystemSettingData",
                                    {"ElementName": "i-2-17-VM"})[0]
    created = vssd["CreationTime"]
    assert isinstance(created, datetime.datetime) and created.tzinfo is not None
    vssd["CreationTime"] = created  # PyMI takes a datetime back
    assert vssd["CreationTime"] == created


def test_snapshots_read_datetime_creation_times(model: HyperVModel, driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=()))
    taken = driver.create_snapshot("i-2-17-VM", "s1", "first")
    expected = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC).timestamp()
    assert taken.created_at == expected
    assert [s.created_at for s in driver.list_snapshots("i-2-17-VM")] == [expected]


# ---------------------------------------------------------------- item 2: KVP on a VM that is off


def test_components_exist_only_while_the_vm_runs(model: HyperVModel, driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=(), user_data=None, boot_args=""))
    conn = model.connection()
    vm = conn.query("Msvm_ComputerSystem", {"ElementName": "i-2-17-VM"})[0]
    assert conn.associators(vm, assoc_class="Msvm_SystemDevice",
                            result_class="Msvm_KvpExchangeComponent") == []
    driver.start_vm("i-2-17-VM")
    assert len(conn.associators(vm, assoc_class="Msvm_SystemDevice",
                                result_class="Msvm_KvpExchangeComponent")) == 1
    driver.stop_vm("i-2-17-VM", timeout=30)
    assert conn.associators(vm, assoc_class="Msvm_SystemDevice",
                            result_class="CIM_LogicalElement") == []


def test_deploy_writes_user_data_and_boot_args_while_the_vm_is_off(
        model: HyperVModel, driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=(), user_data="I2luaXQ="))
    assert model.vm_state("i-2-17-VM") == 3
    assert driver.host_kvp("i-2-17-VM") == {"cloudstack-vm-userdata": "eth0ip=10.1.1.5",
                                            "hvcloud-user-data": "I2luaXQ="}
    driver.write_kvp("i-2-17-VM", "hvcloud-user-data", "bmV3")
    driver.delete_kvp("i-2-17-VM", "cloudstack-vm-userdata")
    assert driver.host_kvp("i-2-17-VM") == {"hvcloud-user-data": "bmV3"}
    assert driver.guest_kvp("i-2-17-VM") == {}


# ---------------------------------------------------------------- item 4: resizing


def _ims_resize(model: HyperVModel, path: str, size: int) -> dict[str, object]:
    conn = model.connection()
    return conn.invoke(conn.query("Msvm_ImageManagementService")[0], "ResizeVirtualHardDisk",
                       Path=path, MaxInternalSize=size)


def test_host_never_resizes_a_differencing_disk(model: HyperVModel, driver: HyperVDriver) -> None:
    ims = driver.image_management()
    ims.create_dynamic("C:\\VMs\\base.vhdx", 16 * 2**20)
    ims.create_differencing("C:\\VMs\\child.vhdx", "C:\\VMs\\base.vhdx")
    out = _ims_resize(model, "C:\\VMs\\child.vhdx", 32 * 2**20)
    with pytest.raises(HyperVJobFailed, match="differencing"):
        jobs.check(model.connection(), out, "resize", jobs.JobPolicy())
    with pytest.raises(NotSupported, match="differencing"):
        ims.resize("C:\\VMs\\child.vhdx", 32 * 2**20)
    assert model.virtual_disks["c:\\vms\\child.vhdx"]["MaxInternalSize"] == 16 * 2**20


def test_host_resizes_a_held_disk_only_as_vhdx_on_scsi_of_a_running_vm(
        model: HyperVModel, driver: HyperVDriver) -> None:
    data = "C:\\VMs\\data-2.vhdx"
    model.add_file(data)
    driver.define_vm(spec(disks=(DiskSpec(slot=0, path=ROOT, format="vhdx", boot=True),
                                 DiskSpec(slot=1, path=data, format="vhdx"))))
    driver.start_vm("i-2-17-VM")
    # the root disk sits on IDE: the old driver left it to the storage backend, which asked IMS
    out = _ims_resize(model, ROOT, 2**30)
    with pytest.raises(HyperVJobFailed, match="in use"):
        jobs.check(model.connection(), out, "resize", jobs.JobPolicy())
    with pytest.raises(InvalidVmState, match="only while the VM is off"):
        driver.resize_disk("i-2-17-VM", ROOT, 2**30)
    assert driver.resize_disk("i-2-17-VM", data, 2**30) == 2**30
    assert model.virtual_disks[data.lower()]["MaxInternalSize"] == 2**30
    driver.stop_vm("i-2-17-VM", timeout=30, force=True)
    assert driver.resize_disk("i-2-17-VM", ROOT, 2**30) is None
    jobs.check(model.connection(), _ims_resize(model, ROOT, 2**30), "resize", jobs.JobPolicy())


# ---------------------------------------------------------------- required method parameters


@pytest.mark.parametrize(("service", "method", "params"), [
    # old model: a raw KeyError
    ("Msvm_ImageManagementService", "CreateVirtualHardDisk", {}),
    ("Msvm_VirtualSystemManagementService", "DefineSystem", {}),
    # old model: accepted
    ("Msvm_VirtualSystemManagementService", "AddKvpItems", {"DataItems": []}),
    ("Msvm_VirtualSystemManagementService", "GetSummaryInformation", {"SettingData": []}),
])
def test_a_missing_required_parameter_is_invalid(model: HyperVModel, service: str, method: str,
                                                 params: dict[str, object]) -> None:
    conn = model.connection()
    out = conn.invoke(conn.query(service)[0], method, **params)
    assert out["ReturnValue"] == 32773
    assert model.refusals[-1].startswith(f"{service}.{method}: missing ")


def test_the_shutdown_component_needs_force_and_reason(model: HyperVModel,
                                                       driver: HyperVDriver) -> None:
    driver.define_vm(spec(disks=()))
    driver.start_vm("i-2-17-VM")
    conn = model.connection()
    vm = conn.query("Msvm_ComputerSystem", {"ElementName": "i-2-17-VM"})[0]
    comp = conn.associators(vm, assoc_class="Msvm_SystemDevice",
                            result_class="Msvm_ShutdownComponent")[0]
    assert conn.invoke(comp, "InitiateShutdown", Force=False)["ReturnValue"] == 32773
    assert model.vm_state("i-2-17-VM") == 2


def test_required_parameters_are_inputs_of_their_method() -> None:
    for cls in schema.CLASSES.values():
        for name, method in cls.methods.items():
            assert method.optional <= set(method.inputs), f"{cls.name}.{name}"
            assert method.required, f"{cls.name}.{name} takes no required parameter"
