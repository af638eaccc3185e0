"""The simulator's security groups: policies in memory per (VM, MAC), with the real drivers'
refusals, defaults when a security-group port appears and nothing once it is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import DeviceNotFound, InvalidVmState, NicSpec, VmNotFound, VmSpec
from hvcloud.hypervisor.simulator.driver import HostProfile, SimulatedCluster, SimulatorDriver
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_policy import PolicyError

VM = "i-1-1-VM"
SG_MAC, PLAIN_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"


def spec() -> VmSpec:
    return VmSpec(name=VM, vcpus=1, memory_mib=256, nics=(
        NicSpec(device_id=0, mac=SG_MAC, security_groups=True, ips=("10.0.0.5", "10.0.0.6")),
        NicSpec(device_id=1, mac=PLAIN_MAC)))


def pol(seq: int, *ingress: SgRule, mac: str = SG_MAC) -> NicPolicy:
    return NicPolicy(mac=mac, ips=("10.0.0.5",), ingress=ingress, egress=(), seq=seq)


@pytest.fixture
def sim(tmp_path: Path) -> SimulatorDriver:
    d = SimulatorDriver(tmp_path / "h1", HostProfile(address="10.0.0.1"), SimulatedCluster())
    d.define_vm(spec())
    return d


def test_defaults_at_start_only_on_security_group_nics(sim: SimulatorDriver) -> None:
    assert sim.security_policies() == {}
    sim.start_vm(VM)
    assert sim.security_policy(VM, SG_MAC) == NicPolicy(SG_MAC, ("10.0.0.5", "10.0.0.6"), (), (), -1)
    assert sim.security_policy(VM, PLAIN_MAC) is None


def test_policy_seq_and_refusals(sim: SimulatorDriver) -> None:
    with pytest.raises(InvalidVmState):
        sim.apply_security_groups(VM, pol(1))
    sim.start_vm(VM)
    rule = SgRule("tcp", ("0.0.0.0/0",), (22, 22))
    sim.apply_security_groups(VM, pol(3, rule))
    sim.apply_security_groups(VM, pol(2))
    assert sim.security_policy(VM, SG_MAC) == pol(3, rule)
    with pytest.raises(PolicyError, match=r"ingress\[0\]\.ports"):
        sim.apply_security_groups(VM, pol(4, SgRule("tcp", ("0.0.0.0/0",), (22, 21))))
    with pytest.raises(DeviceNotFound):
        sim.apply_security_groups(VM, pol(4, mac="02:00:00:00:00:99"))
    with pytest.raises(VmNotFound):
        sim.apply_security_groups("i-9-9-VM", pol(4))
    assert sim.security_policy(VM, SG_MAC) == pol(3, rule)


def test_policies_go_with_the_port(sim: SimulatorDriver, tmp_path: Path) -> None:
    sim.start_vm(VM)
    sim.plug_nic(VM, NicSpec(device_id=2, mac="02:00:00:00:00:03", security_groups=True))
    assert sim.security_policy(VM, "02:00:00:00:00:03") is not None
    sim.unplug_nic(VM, "02:00:00:00:00:03")
    assert sim.security_policy(VM, "02:00:00:00:00:03") is None
    sim.stop_vm(VM, 0)
    assert sim.security_policies() == {}
    sim.start_vm(VM)
    other = SimulatorDriver(tmp_path / "h2", HostProfile(address="10.0.0.2"), sim.cluster)
    sim.migrate_vm(VM, "10.0.0.2")
    assert sim.security_policies() == {}
    assert other.security_policy(VM, SG_MAC) is not None
    other.undefine_vm(VM)
    assert other.security_policies() == {}
