"""The WMI model rejects what real WMI rejects, where a loose mock would accept anything."""

from __future__ import annotations

from unittest import mock

import pytest

from hvcloud.hypervisor.hyperv import schema
from hvcloud.hypervisor.hyperv.errors import WmiNotFound
from tests.support.hyperv_fake import (
    HyperVModel,
    UnknownClass,
    UnknownMethod,
    UnknownProperty,
    WrongType,
)


def _vsms(model: HyperVModel):  # type: ignore[no-untyped-def]
    return model.connection().query("Msvm_VirtualSystemManagementService")[0]


def test_a_loose_mock_accepts_a_misspelt_property_but_the_model_does_not(model: HyperVModel) -> None:
    loose = mock.MagicMock()
    loose.query.return_value = [mock.MagicMock()]
    vm = loose.query("Msvm_ComputerSystem")[0]
    vm.EnabeldState  # noqa: B018 - a typo that a MagicMock happily answers
    loose.Msvm_VirtualSystemManagementService.DefineSytem(SystemSetings="x")

    conn = model.connection()
    host = conn.query("Msvm_ComputerSystem")[0]
    with pytest.raises(UnknownProperty):
        host["EnabeldState"]
    with pytest.raises(UnknownMethod):
        conn.invoke(_vsms(model), "DefineSytem", SystemSettings="x")
    with pytest.raises(UnknownProperty):
        conn.invoke(_vsms(model), "DefineSystem", SystemSetings="x")


def test_unknown_class_and_wrong_namespace(model: HyperVModel) -> None:
    with pytest.raises(UnknownClass):
        model.connection().query("Msvm_ComputerSytem")
    with pytest.raises(UnknownClass):
        model.connection(schema.V2).query("Win32_OperatingSystem")
    with pytest.raises(UnknownClass):
        model.connection(schema.CIMV2).query("Msvm_ComputerSystem")


def test_wrong_types_are_refused(model: HyperVModel) -> None:
    conn = model.connection()
    vssd = conn.new_instance("Msvm_VirtualSystemSettingData")
    with pytest.raises(WrongType):
        vssd["AutomaticStartupAction"] = "2"
    with pytest.raises(WrongType):
        vssd["AutomaticStartupAction"] = 70000
    with pytest.raises(WrongType):
        vssd["Notes"] = "not an array"
    with pytest.raises(WrongType):
        vssd["AutomaticStartupAction"] = True
    host = conn.query("Msvm_ComputerSystem")[0]
    with pytest.raises(WrongType):
        conn.invoke(host, "RequestStateChange", RequestedState="2")
    with pytest.raises(WrongType):
        conn.query("Msvm_ComputerSystem", {"EnabledState": "2"})


def test_references_and_embedded_instances_are_checked(model: HyperVModel) -> None:
    conn = model.connection()
    vsms = _vsms(model)
    with pytest.raises(WmiNotFound):
        conn.invoke(vsms, "DestroySystem", AffectedSystem="\\\\HVHOST\\nowhere:X.Name=\"1\"")
    switch_svc = conn.query("Msvm_VirtualEthernetSwitchManagementService")[0]
    with pytest.raises(WrongType):
        conn.invoke(vsms, "DestroySystem", AffectedSystem=switch_svc.path)
    mem = conn.new_instance("Msvm_MemorySettingData")
    mem["VirtualQuantity"] = 512
    with pytest.raises(WrongType):
        conn.invoke(vsms, "DefineSystem", SystemSettings=conn.embed(mem))
    with pytest.raises(WrongType):
        conn.invoke(vsms, "DefineSystem", SystemSettings="<INSTANCE CLASSNAME='x'")
    bad = ('<INSTANCE CLASSNAME="Msvm_VirtualSystemSettingData">'
           '<PROPERTY NAME="ElementNam" TYPE="string"><VALUE>a</VALUE></PROPERTY></INSTANCE>')
    with pytest.raises(UnknownProperty):
        conn.invoke(vsms, "DefineSystem", SystemSettings=bad)


def test_local_changes_do_nothing_until_sent_back(model: HyperVModel) -> None:
    conn = model.connection()
    host = conn.query("Msvm_ComputerSystem")[0]
    host["ElementName"] = "renamed"
    assert conn.get(host.path)["ElementName"] == "HVHOST"


def test_jobs_progress_and_define_creates_documented_state(model: HyperVModel) -> None:
    conn = model.connection()
    vssd = conn.new_instance("Msvm_VirtualSystemSettingData")
    vssd["ElementName"] = "vm1"
    out = conn.invoke(_vsms(model), "DefineSystem", SystemSettings=conn.embed(vssd))
    assert out["ReturnValue"] == 4096
    job = conn.get(out["Job"])
    assert job.class_name == "Msvm_ConcreteJob"
    assert job["JobState"] == 4
    assert conn.get(out["Job"])["JobState"] == 7
    vm = conn.get(out["ResultingSystem"])
    assert vm["EnabledState"] == 3
    settings = conn.associators(vm, assoc_class="Msvm_SettingsDefineState",
                                result_class="Msvm_VirtualSystemSettingData")
    assert settings[0]["VirtualSystemType"] == "Microsoft:Hyper-V:System:Realized"
    start = conn.invoke(vm, "RequestStateChange", RequestedState=2)
    assert start["ReturnValue"] == 4096
    assert conn.get(vm.path)["EnabledState"] == 32770  # Starting while the job runs
    conn.get(start["Job"])
    assert conn.get(vm.path)["EnabledState"] == 2
    again = conn.invoke(vm, "RequestStateChange", RequestedState=9)
    conn.get(again["Job"]), conn.get(again["Job"])
    assert conn.get(vm.path)["EnabledState"] == 9
    assert conn.invoke(vm, "RequestStateChange", RequestedState=4)["ReturnValue"] == 32770
    assert conn.invoke(vm, "RequestStateChange", RequestedState=11)["ReturnValue"] == 32775


def test_job_can_be_cancelled(model: HyperVModel) -> None:
    conn = model.connection()
    model.hang_next_job("DefineSystem")
    vssd = conn.new_instance("Msvm_VirtualSystemSettingData")
    vssd["ElementName"] = "vm1"
    out = conn.invoke(_vsms(model), "DefineSystem", SystemSettings=conn.embed(vssd))
    job = conn.get(out["Job"])
    assert conn.invoke(job, "RequestStateChange", RequestedState=4)["ReturnValue"] == 0
    assert conn.get(out["Job"])["JobState"] == 8
    with pytest.raises(WmiNotFound):
        conn.get(out["ResultingSystem"])
