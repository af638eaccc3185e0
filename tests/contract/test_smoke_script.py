"""deploy/windows/smoke_test.py: refuses off Windows, and (with Windows faked) runs every contract
check over the Hyper-V WMI model, printing PASS per check."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hvcloud.hypervisor import contract
from hvcloud.hypervisor.hyperv import HyperVDriver, host_checks, schema
from hvcloud.hypervisor.hyperv.jobs import Clock
from tests.support.hyperv_fake import HyperVModel

from .conftest import _FakeTime

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "windows" / "smoke_test.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hv_smoke_test", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args],  # noqa: S603 - our own script
                          capture_output=True, text=True, check=False)


def test_help_and_refusal_off_windows() -> None:
    out = run_script("--help")
    assert out.returncode == 0 and "--switch" in out.stdout
    out = run_script("--switch", "s", "--disk-dir", "C:\\x")
    assert out.returncode == 2 and "only on Windows" in out.stderr


def test_runs_every_check_over_the_model(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    mod = load()
    model = HyperVModel()
    t = _FakeTime()
    drv = HyperVDriver(model.connection(schema.V2), model.connection(schema.CIMV2),
                       console_host="10.0.0.10", clock=Clock(now=t.now, sleep=t.sleep))
    drv.create_switch("public", "external")
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(HyperVDriver, "connect", classmethod(lambda cls, host=".", **kw: drv))
    monkeypatch.setattr(mod, "file_exists", model.has_file)
    assert mod.main(["--switch", "public", "--disk-dir", "C:\\smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = len(contract.CHECKS) + len(mod.HYPERV_CHECKS) + len(host_checks.CHECKS)
    # Hyper-V lacks these by its capability table (generation 1 VMs take NICs only while off; VLANs only)
    skipped = {"nic_hotplug", "vxlan_nic"}
    assert [ln.split()[0] for ln in lines[:-1] if ln.split()[1].rstrip(":") not in skipped] == \
        ["PASS"] * (expected - len(skipped)), lines
    assert sorted(ln.split()[1].rstrip(":") for ln in lines if ln.startswith("SKIP")) == sorted(skipped), lines
    assert drv.list_vms() == []
