"""The thin PyMI adapter (``PyMIConnection``) against a stand-in that behaves as PyMI does:
out-parameters as a tuple sorted by name with ``ReturnValue``, references as escaped path text that
is re-looked-up through a moniker, ``x_wmi`` with a signed HRESULT."""

from __future__ import annotations

import pytest

from hvcloud.hypervisor import contract
from hvcloud.hypervisor.hyperv import HyperVDriver, host_checks, schema
from hvcloud.hypervisor.hyperv.connection import PyMIConnection
from hvcloud.hypervisor.hyperv.errors import WmiError, WmiNotFound
from hvcloud.hypervisor.hyperv.jobs import Clock
from tests.support.hyperv_fake import HyperVModel, pymi

from .conftest import ROOT, FakeTime, spec


@pytest.fixture
def pymi_driver(model: HyperVModel, fake_time: FakeTime,
                monkeypatch: pytest.MonkeyPatch) -> HyperVDriver:
    pymi.install(monkeypatch, model)
    d = HyperVDriver.connect(".", console_host="10.0.0.10", job_timeout=30.0,
                             clock=Clock(now=fake_time.now, sleep=fake_time.sleep))
    d.create_switch("public", "external")
    return d


def test_refused_off_windows() -> None:
    with pytest.raises(WmiError, match="only available on Windows"):
        PyMIConnection()


def test_the_driver_runs_over_pymi(pymi_driver: HyperVDriver, model: HyperVModel) -> None:
    info = pymi_driver.define_vm(spec())
    assert info.spec.disks[0].path == ROOT
    assert info.spec.nics[0].vlan == 100
    pymi_driver.start_vm("i-2-17-VM")
    assert model.vm_state("i-2-17-VM") == 2
    assert pymi_driver.vm_stats(["i-2-17-VM"])["i-2-17-VM"].num_cpus == 2
    pymi_driver.create_snapshot("i-2-17-VM", "s1", with_memory=True)
    pymi_driver.stop_vm("i-2-17-VM", timeout=5.0)  # InitiateShutdown answers a one-tuple
    assert "Msvm_ShutdownComponent.InitiateShutdown" in model.calls
    pymi_driver.revert_snapshot("i-2-17-VM", "s1")
    assert pymi_driver.get_vm("i-2-17-VM").state.name == "RUNNING"
    pymi_driver.undefine_vm("i-2-17-VM")
    assert pymi_driver.list_vms() == []


def test_out_parameters_are_named_from_the_sorted_tuple(model: HyperVModel,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pymi.install(monkeypatch, model)
    conn = PyMIConnection(schema.V2)
    vsms = conn.query("Msvm_VirtualSystemManagementService")[0]
    vssd = conn.new_instance("Msvm_VirtualSystemSettingData")
    vssd["ElementName"] = "sorted"
    out = conn.invoke(vsms, "DefineSystem", SystemSettings=conn.embed(vssd))
    assert set(out) == {"Job", "ResultingSystem", "ReturnValue"}
    assert out["ReturnValue"] == 4096 and "Msvm_ConcreteJob" in out["Job"]


def test_a_reference_is_looked_up_again_with_its_escaped_key(
        model: HyperVModel, monkeypatch: pytest.MonkeyPatch) -> None:
    pymi.install(monkeypatch, model)
    conn = PyMIConnection(schema.V2)
    default = next(o for o in conn.query("Msvm_ResourceAllocationSettingData")
                   if str(o["InstanceID"]).endswith("\\Default"))
    assert "\\\\Default" in default.path  # a key's backslash is doubled in the path text
    again = conn.get(default.path)
    assert again["InstanceID"] == default["InstanceID"]
    with pytest.raises(WmiNotFound):
        conn.get(default.path.replace("Default", "Gone"))


def test_the_smoke_script_runs_over_pymi(model: HyperVModel, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.contract.test_smoke_script import load

    mod = load()
    pymi.install(monkeypatch, model)
    real_connect = HyperVDriver.connect.__func__  # type: ignore[attr-defined]
    t = FakeTime()

    def connect(cls: type[HyperVDriver], host: str = ".", **kw: object) -> HyperVDriver:
        d: HyperVDriver = real_connect(cls, host, console_host="10.0.0.10",
                                       clock=Clock(now=t.now, sleep=t.sleep))
        if not any(s.name == "public" for s in d.list_switches()):
            d.create_switch("public", "external")
        return d

    monkeypatch.setattr(HyperVDriver, "connect", classmethod(connect))
    monkeypatch.setattr(mod, "file_exists", model.has_file)
    assert mod.main(["--switch", "public", "--disk-dir", "C:\\smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = len(contract.CHECKS) + len(mod.HYPERV_CHECKS) + len(host_checks.CHECKS)
    # Hyper-V lacks these by its capability table (generation 1 VMs take NICs only while off; VLANs only)
    skipped = {"nic_hotplug", "vxlan_nic"}
    assert [ln.split()[0] for ln in lines[:-1] if ln.split()[1].rstrip(":") not in skipped] == \
        ["PASS"] * (expected - len(skipped)), lines
    assert sorted(ln.split()[1].rstrip(":") for ln in lines if ln.startswith("SKIP")) == sorted(skipped), lines
