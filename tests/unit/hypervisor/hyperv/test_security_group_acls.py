"""Security groups as extended port ACLs, against the strict Hyper-V model."""

from __future__ import annotations

import pytest

from hvcloud.host_errors import HostError
from hvcloud.hypervisor.driver import DeviceNotFound, NicSpec
from hvcloud.hypervisor.hyperv import HyperVDriver
from hvcloud.hypervisor.hyperv import port_acls as P
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_policy import PolicyError
from tests.unit.hypervisor.hyperv.conftest import spec

VM = "i-2-17-VM"
MAC = "02:00:11:22:33:44"


def sg_vm(driver: HyperVDriver) -> None:
    driver.define_vm(spec(nics=(NicSpec(device_id=0, mac=MAC, network="public", vlan=100, security_groups=True,
                                        ips=("10.1.1.5",)),)))


def pol(*ingress: SgRule, egress: tuple[SgRule, ...] = (), seq: int = 1) -> NicPolicy:
    return NicPolicy(mac=MAC, ips=("10.1.1.5",), ingress=ingress, egress=egress, seq=seq)


def by_name(acls: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for acl in acls:
        out.setdefault(str(acl["Name"]), []).append(acl)
    return out


def test_a_security_group_nic_is_defined_with_deny_and_anti_spoofing(driver: HyperVDriver) -> None:
    sg_vm(driver)
    acls = by_name(driver.security_acls(VM, MAC))
    assert set(acls) == {"hvsg:base", "hvsg:-1"}
    assert {(a["Direction"], a["Action"], a["Weight"]) for a in acls["hvsg:base"]} == {(1, 2, 1), (2, 2, 1)}
    gen = acls["hvsg:-1"]
    # nothing comes in but DHCP replies; out only from the NIC's own address (and DHCP requests)
    assert [a for a in gen if a["Direction"] == 1] == [
        {**gen[1], "Protocol": "UDP", "LocalPort": "68", "RemotePort": "67", "Action": 1}]
    out = [a for a in gen if a["Direction"] == 2 and a["RemotePort"] != "67"]
    assert {a["LocalIPAddress"] for a in out} == {"10.1.1.5"}
    assert {(a["Protocol"], a["Stateful"]) for a in out} == {("TCP", True), ("UDP", True), ("ICMPv4", False)}


def test_a_plain_nic_gets_no_acls(driver: HyperVDriver) -> None:
    driver.define_vm(spec())
    assert driver.security_acls(VM, MAC) == []


def test_policy_replaces_the_generation_and_seq_orders_them(driver: HyperVDriver) -> None:
    sg_vm(driver)
    driver.apply_security_groups(VM, pol(SgRule("tcp", ("198.51.100.0/24", "192.0.2.0/24"), (22, 22)),
                                         SgRule("icmp", ("10.0.0.0/8",), None, 8, 0), seq=4))
    acls = by_name(driver.security_acls(VM, MAC))
    assert set(acls) == {"hvsg:base", "hvsg:4"}
    ins = [a for a in acls["hvsg:4"] if a["Direction"] == 1 and a["LocalPort"] != "68"]
    assert {(a["RemoteIPAddress"], a["Protocol"], a["LocalPort"], a["Stateful"]) for a in ins} == {
        ("198.51.100.0/24", "TCP", "22", True), ("192.0.2.0/24", "TCP", "22", True),
        ("10.0.0.0/8", "ICMPv4", "ANY", False)}
    # the new generation took the other half of the weights, so adding it never collided
    assert all(int(a["Weight"]) >= P.BAND for a in acls["hvsg:4"])  # type: ignore[call-overload]
    driver.apply_security_groups(VM, pol(seq=3))            # older: ignored
    assert set(by_name(driver.security_acls(VM, MAC))) == {"hvsg:base", "hvsg:4"}
    driver.apply_security_groups(VM, pol(egress=(SgRule("udp", ("198.51.100.7",), (53, 53)),), seq=5))
    acls = by_name(driver.security_acls(VM, MAC))
    assert set(acls) == {"hvsg:base", "hvsg:5"}
    assert all(int(a["Weight"]) < P.BAND for a in acls["hvsg:5"])  # type: ignore[call-overload]
    out = [a for a in acls["hvsg:5"] if a["Direction"] == 2 and a["RemotePort"] != "67"]
    assert [(a["LocalIPAddress"], a["RemoteIPAddress"], a["Protocol"], a["RemotePort"]) for a in out] == [
        ("10.1.1.5", "198.51.100.7", "UDP", "53")]


def test_acls_survive_a_restart_of_the_vm(driver: HyperVDriver) -> None:
    sg_vm(driver)
    driver.apply_security_groups(VM, pol(SgRule("tcp", ("0.0.0.0/0",), (80, 80)), seq=2))
    driver.start_vm(VM)
    driver.stop_vm(VM, 0, force=True)
    driver.start_vm(VM)
    assert "hvsg:2" in by_name(driver.security_acls(VM, MAC))


def test_refusals_change_nothing(driver: HyperVDriver) -> None:
    sg_vm(driver)
    before = driver.security_acls(VM, MAC)
    with pytest.raises(PolicyError, match=r"ingress\[0\]\.cidrs\[0\]"):
        driver.apply_security_groups(VM, pol(SgRule("tcp", ("10.0.0.0/40",), (1, 2))))
    with pytest.raises(DeviceNotFound):
        driver.apply_security_groups(VM, NicPolicy(mac="02:00:00:00:00:99", ips=(), ingress=(), egress=(), seq=1))
    assert driver.security_acls(VM, MAC) == before


def test_the_model_refuses_what_hyperv_refuses(driver: HyperVDriver) -> None:
    sg_vm(driver)
    net = driver._network
    vm = net._vm(VM)
    resources = net._resources(net._vssd(vm))
    alloc = next(r for r in resources if r.class_name == "Msvm_EthernetPortAllocationSettingData")

    def add(**props: object) -> None:
        obj = net._conn.new_instance(P.ACL_CLASS)
        for k, v in {"Name": "t", "Direction": 1, "Action": 1, "Weight": 30000, **props}.items():
            obj[k] = v
        net._call(net._vsms(), "AddFeatureSettings", "test ACL", AffectedConfiguration=alloc.path,
                  FeatureSettings=[net._conn.embed(obj)])

    add(Protocol="TCP", LocalPort="80-90", RemoteIPAddress="10.0.0.0/8", Stateful=True)
    for bad in ({"Weight": 30000},                                   # weight taken in that direction
                {"Weight": 30001, "Action": 2, "Protocol": "TCP", "Stateful": True},   # stateful deny
                {"Weight": 30002, "Protocol": "ICMPv4", "Stateful": True},            # stateful icmp
                {"Weight": 30003, "RemoteIPAddress": "10.0.0.1/8"},                   # host bits
                {"Weight": 30004, "LocalPort": "90-80"},
                {"Weight": 30005, "Protocol": "SCTP-OVER-SOMETHING"},
                {"Weight": 30006, "Direction": 3}):
        with pytest.raises(HostError):
            add(**bad)
    add(Weight=30000, Direction=2)                                 # the same weight, other direction


def test_plan_sizes_and_limits() -> None:
    cidrs = tuple(f"10.{i // 128}.{i % 128 * 2}.0/24" for i in range(1000))
    acls = P.plan(pol(SgRule("tcp", cidrs, (80, 80))))
    assert sum(1 for a in acls if a.direction == P.IN) == 1001
    with pytest.raises(Exception, match="16-bit"):
        P.weighted(P.plan(pol(SgRule("all", tuple(f"10.{i // 128}.{i % 128 * 2}.0/24" for i in range(12000))))),
                   0, "hvsg:1")
