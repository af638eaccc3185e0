from __future__ import annotations

from dataclasses import dataclass

import pytest

from hvcloud.hypervisor.driver import DiskSpec, NicSpec, VmSpec
from hvcloud.hypervisor.hyperv import HyperVDriver, schema
from hvcloud.hypervisor.hyperv.jobs import Clock
from tests.support.hyperv_fake import HyperVModel

ROOT = "C:\\VMs\\i-2-17-VM-root.vhdx"
DATA = "C:\\VMs\\data-1.vhd"
ISO = "\\\\store\\share\\iso\\tiny.iso"


@dataclass
class FakeTime:
    """A clock whose sleep advances time instantly, so waits are bounded but never slow."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.001)


@pytest.fixture
def model() -> HyperVModel:
    m = HyperVModel()
    for path in (ROOT, DATA, ISO):
        m.add_file(path)
    return m


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def driver(model: HyperVModel, fake_time: FakeTime) -> HyperVDriver:
    d = HyperVDriver(model.connection(schema.V2), model.connection(schema.CIMV2),
                     console_host="10.0.0.10", job_timeout=30.0,
                     clock=Clock(now=fake_time.now, sleep=fake_time.sleep))
    d.create_switch("public", "external")
    return d


def spec(name: str = "i-2-17-VM", **kw: object) -> VmSpec:
    base: dict[str, object] = dict(
        name=name, vcpus=2, memory_mib=1024, uuid="5c3b-uuid",
        disks=(DiskSpec(slot=0, path=ROOT, format="vhdx", boot=True),
               DiskSpec(slot=3, device="cdrom", path=ISO, format="iso")),
        nics=(NicSpec(device_id=0, mac="02:00:11:22:33:44", network="public", vlan=100),),
        boot_args="eth0ip=10.1.1.5", metadata={"zone": "z1"})
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]
