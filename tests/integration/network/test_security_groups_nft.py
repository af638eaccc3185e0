"""Security groups enforced by :class:`NftSecurityGroups` against the real kernel.

A "host" namespace holds a bridge; "VM" namespaces hang off it by veth pairs whose bridge ends
play the VMs' taps. VM 1 is a plain port (no security groups: the "router", it serves DHCP); VMs
10, 11 and 12 get security groups. Every check is a real TCP/UDP/ICMP exchange or DHCP lease.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_nft import NftSecurityGroups
from hvcloud.network.sg_policy import PolicyError
from tests.support.sg_lab import BUSYBOX, SgLab, Vm, missing_tools


@dataclass
class World:
    lab: SgLab
    sg: NftSecurityGroups
    router: Vm
    a: Vm
    b: Vm
    c: Vm


@pytest.fixture
def world() -> Iterator[World]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    lab = SgLab()
    try:
        router, a, b, c = lab.vm(1), lab.vm(10), lab.vm(11), lab.vm(12)
        for vm in (router, a, b, c):
            vm.serve("tcp:22", "tcp:80", "tcp:8080", "udp:5353")
        sg = NftSecurityGroups(lab.host)
        for vm in (a, b, c):
            sg.apply_defaults(vm.tap, vm.mac, [vm.ip])
        yield World(lab, sg, router, a, b, c)
    finally:
        lab.close()


def policy(vm: Vm, *ingress: SgRule, egress: tuple[SgRule, ...] = (), seq: int = 1) -> NicPolicy:
    return NicPolicy(mac=vm.mac, ips=(vm.ip,), ingress=tuple(ingress), egress=egress, seq=seq)


def test_defaults_deny_new_inbound_but_let_replies_and_outbound_pass(world: World) -> None:
    w = world
    assert not w.router.reaches("tcp", w.a.ip, 80)
    assert not w.b.reaches("tcp", w.a.ip, 80)
    assert not w.router.reaches("udp", w.a.ip, 5353)
    assert not w.router.pings(w.a.ip)
    # outbound from a protected VM is allowed, and its replies come back through conntrack
    assert w.a.reaches("tcp", w.router.ip, 80)
    assert w.a.reaches("udp", w.router.ip, 5353)
    assert w.a.pings(w.router.ip)
    # a plain port is untouched
    assert w.router.reaches("tcp", w.router.ip, 80)


def test_ingress_rule_admits_only_its_port_and_sources(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", (f"{w.router.ip}/32",), (80, 80))))
    assert w.router.reaches("tcp", w.a.ip, 80)
    assert not w.router.reaches("tcp", w.a.ip, 8080)
    assert not w.b.reaches("tcp", w.a.ip, 80)          # between VMs on one bridge too
    # the change takes effect at once: widen the source and open a port range and udp
    assert w.sg.apply_policy(w.a.tap, policy(
        w.a, SgRule("tcp", ("10.88.0.0/24",), (80, 8080)), SgRule("udp", ("10.88.0.11",), (5353, 5353)),
        SgRule("icmp", ("0.0.0.0/0",), icmp_type=8, icmp_code=0), seq=2))
    assert w.b.reaches("tcp", w.a.ip, 8080)
    assert w.b.reaches("udp", w.a.ip, 5353)
    assert not w.router.reaches("udp", w.a.ip, 5353)
    assert not w.b.reaches("tcp", w.a.ip, 22)
    assert w.router.pings(w.a.ip)
    # and narrowing takes effect at once for new connections
    assert w.sg.apply_policy(w.a.tap, policy(w.a, seq=3))
    assert not w.b.reaches("tcp", w.a.ip, 8080)
    assert not w.router.pings(w.a.ip)


def test_both_ends_protected_need_egress_and_ingress(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("all", (f"{w.b.ip}/32",))))
    # b may only go to the router on 80
    assert w.sg.apply_policy(w.b.tap, policy(w.b, egress=(SgRule("tcp", (f"{w.router.ip}/32",), (80, 80)),)))
    assert not w.b.reaches("tcp", w.a.ip, 80)
    assert w.b.reaches("tcp", w.router.ip, 80)
    assert not w.b.reaches("tcp", w.router.ip, 22)
    assert w.sg.apply_policy(w.b.tap, policy(w.b, seq=2))     # empty egress: anywhere
    assert w.b.reaches("tcp", w.a.ip, 80)
    assert not w.c.reaches("tcp", w.a.ip, 80)


def test_a_vm_cannot_spoof_another_address_or_mac(world: World) -> None:
    w = world
    # a takes b's address as a second address: nothing from it gets out
    w.a.run("ip", "addr", "add", f"{w.lab.prefix}.99/24", "dev", "eth0")
    assert w.a.reaches("tcp", w.router.ip, 80, src=w.a.ip)
    assert not w.a.reaches("tcp", w.router.ip, 80, src=f"{w.lab.prefix}.99")
    # ARP claiming an address that is not its own is dropped: the router never learns .99
    w.a.run(BUSYBOX, "arping", "-c", "2", "-s", f"{w.lab.prefix}.99", "-I", "eth0", w.router.ip, check=False)
    neigh = w.router.run("ip", "neigh", "show", f"{w.lab.prefix}.99").stdout
    assert w.a.mac not in neigh
    # a takes c's MAC: nothing from it gets out
    w.a.run("ip", "link", "set", "eth0", "address", w.c.mac)
    assert not w.a.reaches("tcp", w.router.ip, 80, src=w.a.ip)
    w.a.run("ip", "link", "set", "eth0", "address", w.a.mac)
    assert w.a.reaches("tcp", w.router.ip, 80, src=w.a.ip)


def test_dhcp_still_works(world: World, tmp_path: Path) -> None:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed")
    w = world
    leases = tmp_path / "leases"
    w.router.servers.append(subprocess.Popen(  # noqa: S603
        ["ip", "netns", "exec", w.router.ns, "dnsmasq", "-k", "--conf-file=/dev/null", "--port=0",
         "--interface=eth0", "--bind-interfaces", f"--dhcp-leasefile={leases}", "--pid-file=",
         f"--dhcp-range={w.lab.prefix}.100,{w.lab.prefix}.200,255.255.255.0",
         f"--dhcp-host={w.a.mac},{w.a.ip}"]))
    w.a.run("ip", "addr", "flush", "dev", "eth0")
    proc = w.a.run(BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1", "-s", "/bin/true",
                   check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"lease of {w.a.ip} obtained" in proc.stdout + proc.stderr


def test_an_older_policy_is_ignored(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", ("0.0.0.0/0",), (80, 80)), seq=7))
    loads = w.sg.loads
    assert not w.sg.apply_policy(w.a.tap, policy(w.a, seq=6))
    assert w.sg.loads == loads
    assert w.router.reaches("tcp", w.a.ip, 80)
    # a fresh enforcer (an agent restart) reads seq from the kernel
    again = NftSecurityGroups(w.lab.host)
    assert again.seq_of(w.a.tap) == 7
    assert not again.apply_policy(w.a.tap, policy(w.a, seq=5))
    assert again.apply_policy(w.a.tap, policy(w.a, seq=7))    # the same seq again is applied


def test_hundreds_of_cidrs_are_one_load(world: World) -> None:
    w = world
    cidrs = (*(f"172.{16 + i // 256}.{i % 256}.0/24" for i in range(800)), f"{w.router.ip}/32")
    loads = w.sg.loads
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", cidrs, (80, 80)),
                                             SgRule("udp", cidrs[:400], (1, 65535))))
    assert w.sg.loads == loads + 1
    assert w.router.reaches("tcp", w.a.ip, 80)
    assert not w.b.reaches("tcp", w.a.ip, 80)


def test_refused_policy_changes_nothing(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", ("0.0.0.0/0",), (80, 80))))
    loads = w.sg.loads
    with pytest.raises(PolicyError, match=r"ingress\[1\]\.cidrs\[0\]"):
        w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", ("0.0.0.0/0",), (22, 22)),
                                          SgRule("tcp", ("10.0.0.300/8",), (80, 80)), seq=2))
    assert w.sg.loads == loads
    assert w.router.reaches("tcp", w.a.ip, 80)
    assert not w.router.reaches("tcp", w.a.ip, 22)


def test_removal_cleans_up_and_leaves_the_port_open(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", ("10.88.0.0/24",), (80, 80))))
    for vm in (w.a, w.b, w.c):
        w.sg.remove(vm.tap)
    w.sg.remove(w.a.tap)                        # again: not an error
    assert w.sg.ports() == {}
    ruleset = w.lab.hrun("nft", "list", "ruleset").stdout
    assert "p1-out" not in ruleset and "in1r0" not in ruleset and "tap10" not in ruleset
    assert w.router.reaches("tcp", w.a.ip, 22)
    assert w.b.reaches("tcp", w.a.ip, 8080)


def test_a_flushed_ruleset_is_rebuilt_on_the_next_change(world: World) -> None:
    w = world
    w.lab.hrun("nft", "flush", "ruleset")
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", ("0.0.0.0/0",), (80, 80)), seq=2))
    assert w.router.reaches("tcp", w.a.ip, 80)
    assert not w.router.reaches("tcp", w.a.ip, 22)
    assert set(w.sg.ports()) == {w.a.tap}



def test_a_port_moved_to_another_bridge_stays_filtered(world: World) -> None:
    w = world
    assert w.sg.apply_policy(w.a.tap, policy(w.a, SgRule("tcp", (f"{w.router.ip}/32",), (80, 80))))
    w.lab.hrun("ip", "link", "add", "br1", "type", "bridge")
    w.lab.hrun("ip", "link", "set", "br1", "up")
    for vm in (w.a, w.router):
        w.lab.hrun("ip", "link", "set", vm.tap, "master", "br1")
    w.sg.follow_bridge(w.a.tap)
    info = w.lab.hrun("ip", "-d", "link", "show", "br1").stdout
    assert "nf_call_iptables 1" in info
    assert w.router.reaches("tcp", w.a.ip, 80)
    assert not w.router.reaches("tcp", w.a.ip, 22)
