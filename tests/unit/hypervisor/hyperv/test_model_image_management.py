"""Msvm_ImageManagementService in the strict model and the driver's client for it."""

from __future__ import annotations

import pytest

from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from hvcloud.hypervisor.hyperv.errors import HyperVError, HyperVJobFailed
from tests.support.hyperv_fake import HyperVModel, UnknownProperty, WrongType


def _ims(model: HyperVModel) -> object:
    return model.connection().query("Msvm_ImageManagementService")[0]


def _sd(model: HyperVModel, **props: object) -> str:
    conn = model.connection()
    sd = conn.new_instance("Msvm_VirtualHardDiskSettingData")
    for k, v in props.items():
        sd[k] = v
    return conn.embed(sd)


def test_settings_are_strict(model: HyperVModel) -> None:
    sd = model.connection().new_instance("Msvm_VirtualHardDiskSettingData")
    with pytest.raises(UnknownProperty):
        sd["ParentFile"] = "C:\\x.vhdx"
    with pytest.raises(WrongType):
        sd["Type"] = "4"
    with pytest.raises(UnknownProperty):
        model.connection().invoke(_ims(model), "CreateVirtualHardDisk", SettingData="x")  # type: ignore[arg-type]


@pytest.mark.parametrize("props", [
    {"Path": "E:\\D\\x.vhd", "Type": 3, "Format": 3, "MaxInternalSize": 1 << 20},
    {"Path": "x.vhdx", "Type": 3, "Format": 3, "MaxInternalSize": 1 << 20},
    {"Path": "E:\\D\\x.vhdx", "Type": 3, "Format": 3, "MaxInternalSize": 1000},
    {"Path": "E:\\D\\x.vhdx", "Type": 3, "Format": 3},
    {"Path": "E:\\D\\x.vhdx", "Type": 4, "Format": 3},
    {"Path": "E:\\D\\x.vhdx", "Type": 4, "Format": 3, "ParentPath": "E:\\D\\p.vhd"},
    {"Path": "E:\\D\\x.vhdx", "Type": 5, "Format": 3, "MaxInternalSize": 1 << 20},
])
def test_invalid_parameters_answer_32773(model: HyperVModel, props: dict[str, object]) -> None:
    out = model.connection().invoke(_ims(model), "CreateVirtualHardDisk",  # type: ignore[arg-type]
                                    VirtualDiskSettingData=_sd(model, **props))
    assert out["ReturnValue"] == 32773
    assert model.virtual_disks == {}


def test_driver_creates_dynamic_and_differencing_disks(model: HyperVModel, driver: HyperVDriver) -> None:
    ims = driver.image_management()
    ims.create_dynamic("E:\\D\\base.vhdx", 1 << 30)
    ims.create_differencing("E:\\D\\child.vhdx", "E:\\D\\base.vhdx")
    assert model.virtual_disks["e:\\d\\child.vhdx"] == {
        "Path": "E:\\D\\child.vhdx", "Type": 4, "Format": 3, "ParentPath": "E:\\D\\base.vhdx",
        "MaxInternalSize": 1 << 30}
    assert model.has_file("E:\\D\\child.vhdx")
    ims.resize("E:\\D\\base.vhdx", 2 << 30)
    assert model.virtual_disks["e:\\d\\base.vhdx"]["MaxInternalSize"] == 2 << 30
    jobs = [j for j in model.jobs() if j["Name"] in ("CreateVirtualHardDisk", "ResizeVirtualHardDisk")]
    assert len(jobs) == 3 and all(j["JobState"] == 7 for j in jobs)


def test_job_errors_carry_hyper_v_text(model: HyperVModel, driver: HyperVDriver) -> None:
    ims = driver.image_management()
    with pytest.raises(HyperVJobFailed, match="cannot find the file"):
        ims.create_differencing("E:\\D\\orphan.vhdx", "E:\\D\\nowhere.vhdx")
    ims.create_dynamic("E:\\D\\a.vhdx", 1 << 20)
    with pytest.raises(HyperVJobFailed, match="file exists"):
        ims.create_dynamic("E:\\D\\a.vhdx", 1 << 20)
    with pytest.raises(HyperVJobFailed, match="smaller"):
        ims.resize("E:\\D\\a.vhdx", 1 << 19)
    model.fail_next("CreateVirtualHardDisk", 32768)
    with pytest.raises(HyperVError):
        ims.create_dynamic("E:\\D\\b.vhdx", 1 << 20)


def test_schema_lists_the_methods() -> None:
    assert schema.out_parameter_names("Msvm_ImageManagementService", "CreateVirtualHardDisk") == [
        "Job", "ReturnValue"]
