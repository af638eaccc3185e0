"""The router's public side against the real kernel: nftables NAT and firewall, HAProxy.

A guest bridge with two namespace "guests" running busybox httpd, a router on it, and an
"outside" namespace on a public bridge made for the run holding the public range's gateway: every
proof is a real TCP connection through the router's namespace. Skipped (with the reason) when not
root or without nft / haproxy / ``ip netns`` / busybox.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvcloud.router.api import (
    FirewallRule,
    InvalidRouterRequest,
    LoadBalancer,
    PortForward,
    PublicAddress,
    RouterSpec,
    RuleChange,
    Segment,
    StaticNat,
)
from hvcloud.router.namespace import NamespaceRouterHost
from hvcloud.router.netns import namespace_name
from tests.support.public_lab import (
    Outside,
    fetch,
    kill_namespace_processes,
    serve,
    static_guest,
    stop_serving,
)
from tests.support.router_lab import Client, Lab, missing_tools, run
from tests.support.wait import wait_for

ROUTER_IP, A_IP, B_IP = "10.78.0.1", "10.78.0.10", "10.78.0.11"
GW, SNAT_IP, STATIC_IP, LB_IP, PF_IP = "198.51.100.1", "198.51.100.10", "198.51.100.11", "198.51.100.12", \
    "198.51.100.13"
PUB_MAC = "02:78:00:00:01:01"


@dataclass
class World:
    lab: Lab
    outside: Outside
    host: NamespaceRouterHost
    name: str
    state: Path
    work: Path
    a: Client
    b: Client

    def pub(self, ip: str, source_nat: bool = False) -> PublicAddress:
        return PublicAddress(ip=ip, prefix=24, gateway=GW, mac=PUB_MAC, segment=Segment(self.outside.bridge),
                             source_nat=source_nat)

    def from_outside(self, url: str, wait: float = 3.0) -> str | None:
        return fetch(self.outside.ns, url, wait)


def _spec(name: str, bridge: str) -> RouterSpec:
    return RouterSpec(name=name, segment=Segment(bridge), mac="02:78:00:00:00:01", address=ROUTER_IP, prefix=24,
                      domain="net78.internal")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    reason = missing_tools()
    for tool in ("nft", "haproxy"):
        if reason is None and shutil.which(tool) is None:
            reason = f"{tool} is not installed"
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("public")
    lab = Lab(work / "lab")
    outside: Outside | None = None
    name = f"r-{lab.suffix}"
    try:
        outside = Outside(lab.suffix, GW, 24)
        host = NamespaceRouterHost(work / "state")
        host.start(_spec(name, lab.bridge))
        a, b = lab.client("02:78:00:00:00:0a"), lab.client("02:78:00:00:00:0b")
        static_guest(a.ns, A_IP, 24, ROUTER_IP)
        static_guest(b.ns, B_IP, 24, ROUTER_IP)
        serve(a.ns, work / "www-a", 80, "guest-a\n")
        serve(b.ns, work / "www-b", 80, "guest-b\n")
        serve(outside.ns, work / "www-out", 8000, "outside\n")
        w = World(lab, outside, host, name, work / "state", work, a, b)
        host.apply(name, RuleChange(addresses=(w.pub(SNAT_IP, True), w.pub(STATIC_IP), w.pub(LB_IP),
                                               w.pub(PF_IP))))
        yield w
    finally:
        NamespaceRouterHost(work / "state").destroy(name)
        for c in lab.clients:
            kill_namespace_processes(c.ns)
        lab.close()
        if outside is not None:
            outside.close()


def test_eth1_holds_the_addresses_and_the_default_route(world: World) -> None:
    ns = namespace_name(world.name)
    addrs = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "eth1"]).stdout
    for ip in (SNAT_IP, STATIC_IP, LB_IP, PF_IP):
        assert f"{ip}/24" in addrs
    assert f"default via {GW} dev eth1" in run(["ip", "-n", ns, "route"]).stdout
    assert PUB_MAC in run(["ip", "-n", ns, "link", "show", "dev", "eth1"]).stdout


def test_guest_leaves_through_source_nat(world: World) -> None:
    assert fetch(world.a.ns, f"http://{GW}:8000/cgi-bin/whoami") == f"{SNAT_IP}\n"


def test_outside_cannot_reach_guest_addresses_directly(world: World) -> None:
    run(["ip", "-n", world.outside.ns, "route", "replace", "10.78.0.0/24", "via", SNAT_IP])
    try:
        assert world.from_outside(f"http://{A_IP}/", wait=2) is None
    finally:
        run(["ip", "-n", world.outside.ns, "route", "del", "10.78.0.0/24"], check=False)


def test_port_forward_needs_its_firewall_rule_and_stops_with_either(world: World) -> None:
    h, n = world.host, world.name
    url = f"http://{PF_IP}:8080/"
    h.apply(n, RuleChange(port_forwards=(PortForward("pf1", PF_IP, "tcp", (8080, 8080), A_IP, (80, 80)),)))
    assert world.from_outside(url, wait=2) is None  # default deny on public addresses
    h.apply(n, RuleChange(firewall=(FirewallRule("fw1", "ingress", "tcp", (f"{GW}/32",), PF_IP, (8080, 8080)),)))
    assert world.from_outside(url) == "guest-a\n"
    # the guest sees the real client address (DNAT only)
    assert world.from_outside(f"http://{PF_IP}:8080/cgi-bin/whoami") == f"{GW}\n"
    h.apply(n, RuleChange(remove_firewall=("fw1",)))
    assert world.from_outside(url, wait=2) is None
    h.apply(n, RuleChange(firewall=(FirewallRule("fw1", "ingress", "tcp", ("0.0.0.0/0",), PF_IP, (8080, 8080)),)))
    assert world.from_outside(url) == "guest-a\n"
    h.apply(n, RuleChange(remove_port_forwards=("pf1",)))
    assert world.from_outside(url, wait=2) is None
    h.apply(n, RuleChange(remove_firewall=("fw1",)))


def test_port_range_forward_shifts_ports(world: World) -> None:
    h, n = world.host, world.name
    h.apply(n, RuleChange(
        port_forwards=(PortForward("pf2", PF_IP, "tcp", (9079, 9081), B_IP, (79, 81)),),
        firewall=(FirewallRule("fw2", "ingress", "tcp", (), PF_IP, (9000, 9100)),)))
    try:
        assert world.from_outside(f"http://{PF_IP}:9080/") == "guest-b\n"
    finally:
        h.apply(n, RuleChange(remove_port_forwards=("pf2",), remove_firewall=("fw2",)))


def test_static_nat_both_ways(world: World) -> None:
    h, n = world.host, world.name
    h.apply(n, RuleChange(static_nats=(StaticNat(STATIC_IP, B_IP),),
                          firewall=(FirewallRule("fw3", "ingress", "all", (), STATIC_IP),)))
    assert world.from_outside(f"http://{STATIC_IP}/") == "guest-b\n"
    assert fetch(world.b.ns, f"http://{GW}:8000/cgi-bin/whoami") == f"{STATIC_IP}\n"
    assert fetch(world.a.ns, f"http://{GW}:8000/cgi-bin/whoami") == f"{SNAT_IP}\n"
    h.apply(n, RuleChange(remove_static_nats=(STATIC_IP,)))
    assert world.from_outside(f"http://{STATIC_IP}/", wait=2) is None
    assert fetch(world.b.ns, f"http://{GW}:8000/cgi-bin/whoami") == f"{SNAT_IP}\n"
    h.apply(n, RuleChange(remove_firewall=("fw3",)))


def test_egress_default_and_exceptions(world: World) -> None:
    h, n = world.host, world.name
    url = f"http://{GW}:8000/"
    h.apply(n, RuleChange(egress_default_allow=False))
    assert fetch(world.a.ns, url, wait=2) is None
    h.apply(n, RuleChange(firewall=(FirewallRule("eg1", "egress", "tcp", (f"{GW}/32",), None, (8000, 8000)),)))
    assert fetch(world.a.ns, url) == "outside\n"
    h.apply(n, RuleChange(egress_default_allow=True))  # the rule is now an exception: deny
    assert fetch(world.a.ns, url, wait=2) is None
    h.apply(n, RuleChange(remove_firewall=("eg1",)))
    assert fetch(world.a.ns, url) == "outside\n"


def test_load_balancer_spreads_and_skips_a_dead_backend(world: World) -> None:
    h, n = world.host, world.name
    lb = LoadBalancer("lb1", LB_IP, 80, 80, "tcp", "roundrobin", (A_IP, B_IP))
    h.apply(n, RuleChange(load_balancers=(lb,),
                          firewall=(FirewallRule("fw4", "ingress", "tcp", (), LB_IP, (80, 80)),)))
    try:
        url = f"http://{LB_IP}/"

        def backends(tries: int) -> set[str | None]:
            return {world.from_outside(url) for _ in range(tries)}

        wait_for("haproxy listening", lambda: world.from_outside(url) is not None, 10)
        seen = {world.from_outside(url) for _ in range(6)}
        assert seen == {"guest-a\n", "guest-b\n"}
        stop_serving(world.b.ns, 80)
        try:
            wait_for("the dead backend skipped", lambda: backends(4) == {"guest-a\n"}, 15)
        finally:
            serve(world.b.ns, world.work / "www-b", 80, "guest-b\n")
        wait_for("the backend taken back", lambda: backends(6) == {"guest-a\n", "guest-b\n"}, 15)
    finally:
        h.apply(n, RuleChange(load_balancers=(), remove_firewall=("fw4",)))
    assert world.from_outside(f"http://{LB_IP}/", wait=2) is None


def test_invalid_change_changes_nothing(world: World) -> None:
    h, n = world.host, world.name
    before = h.public_state(n)
    ruleset = run(["ip", "netns", "exec", namespace_name(n), "nft", "list", "table", "ip", "hvr"]).stdout
    with pytest.raises(InvalidRouterRequest, match=r"port_forwards\[1\].public_ports"):
        h.apply(n, RuleChange(port_forwards=(
            PortForward("ok1", PF_IP, "tcp", (100, 200), A_IP, (100, 200)),
            PortForward("ok2", PF_IP, "tcp", (150, 150), B_IP, (150, 150)))))
    with pytest.raises(InvalidRouterRequest, match="source NAT"):
        h.apply(n, RuleChange(static_nats=(StaticNat(SNAT_IP, A_IP),)))
    assert h.public_state(n) == before
    assert run(["ip", "netns", "exec", namespace_name(n), "nft", "list", "table", "ip", "hvr"]).stdout == ruleset


def test_rules_survive_agent_restart_and_router_restart(world: World) -> None:
    n = world.name
    world.host.apply(n, RuleChange(
        port_forwards=(PortForward("pf9", PF_IP, "tcp", (8081, 8081), A_IP, (80, 80)),),
        firewall=(FirewallRule("fw9", "ingress", "tcp", (), PF_IP, (8081, 8081)),),
        load_balancers=(LoadBalancer("lb9", LB_IP, 81, 80, "tcp", "source", (B_IP,)),)))
    world.host.apply(n, RuleChange(firewall=(FirewallRule("fw10", "ingress", "tcp", (), LB_IP, (81, 81)),)))
    url, lb_url = f"http://{PF_IP}:8081/", f"http://{LB_IP}:81/"
    assert world.from_outside(url) == "guest-a\n"
    # an agent restart: a new runtime over the same state dir, the table flushed behind its back
    run(["ip", "netns", "exec", namespace_name(n), "nft", "flush", "table", "ip", "hvr"])
    fresh = NamespaceRouterHost(world.state)
    assert n in fresh.recover()
    assert world.from_outside(url) == "guest-a\n"
    wait_for("haproxy after recover", lambda: world.from_outside(lb_url) == "guest-b\n", 10)
    # and a change after recover finds its rules' handles again
    fresh.apply(n, RuleChange(remove_firewall=("fw9",)))
    assert world.from_outside(url, wait=2) is None
    fresh.apply(n, RuleChange(firewall=(FirewallRule("fw9", "ingress", "tcp", (), PF_IP, (8081, 8081)),)))
    # a router stop/start (a reboot) brings eth1, the table and HAProxy back
    spec = fresh.status(n).spec
    fresh.stop(n)
    assert world.from_outside(url, wait=2) is None
    fresh.start(spec)
    static_guest(world.a.ns, A_IP, 24, ROUTER_IP)
    assert world.from_outside(url) == "guest-a\n"
    wait_for("haproxy after restart", lambda: world.from_outside(lb_url) == "guest-b\n", 10)
    assert fetch(world.a.ns, f"http://{GW}:8000/cgi-bin/whoami") == f"{SNAT_IP}\n"
    world.host = fresh
    fresh.apply(n, RuleChange(remove_port_forwards=("pf9",), remove_firewall=("fw9", "fw10"), load_balancers=()))


def test_release_removes_the_address_and_its_rules(world: World) -> None:
    h, n = world.host, world.name
    extra = "198.51.100.20"
    h.apply(n, RuleChange(addresses=(world.pub(extra),),
                          port_forwards=(PortForward("pf20", extra, "tcp", (80, 80), A_IP, (80, 80)),),
                          firewall=(FirewallRule("fw20", "ingress", "tcp", (), extra, (80, 80)),)))
    assert world.from_outside(f"http://{extra}/") == "guest-a\n"
    state = h.apply(n, RuleChange(release=(extra,)))
    assert extra not in {a.ip for a in state.addresses}
    assert not [f for f in state.port_forwards if f.public_ip == extra]
    assert not [r for r in state.firewall if r.public_ip == extra]
    assert world.from_outside(f"http://{extra}/", wait=2) is None
    assert f"{extra}/" not in run(["ip", "-n", namespace_name(n), "-4", "-o", "addr", "show"]).stdout


def test_saved_changes_fold_into_the_snapshot(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from hvcloud.router import namespace

    monkeypatch.setattr(namespace, "COMPACT_EVERY", 3)
    h, n = world.host, world.name
    for i in range(7):
        h.apply(n, RuleChange(firewall=(FirewallRule(f"c{i}", "egress", "udp", (f"203.0.113.{i}/32",), None,
                                                     (53, 53)),)))
    h.apply(n, RuleChange(remove_firewall=("c2",)))
    # a torn last line (a crash while appending) is dropped, not fatal
    log_path = world.state / n / "public.log"
    with log_path.open("a") as fh:
        fh.write('{"firewall": [{"rule_')
    fresh = NamespaceRouterHost(world.state)
    assert fresh.public_state(n) == h.public_state(n)
    assert {r.rule_id for r in fresh.public_state(n).firewall} >= {"c0", "c1", "c3", "c6"}
    assert not log_path.exists()  # folded at once: the next change does not land after the torn line
    fresh.apply(n, RuleChange(remove_firewall=tuple(f"c{i}" for i in range(7))))
    assert NamespaceRouterHost(world.state).public_state(n) == fresh.public_state(n)
    world.host = fresh
