"""The public side's validation and merge (shared by both router hosts), the simulated host's
apply/public_state, and the nftables text a change becomes: bad, hostile, oversized and
out-of-order input is refused naming the field, and nothing changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from hvcloud.router import nft
from hvcloud.router.api import (
    FirewallRule,
    InvalidRouterRequest,
    LoadBalancer,
    PortForward,
    PublicAddress,
    RouterNotFound,
    RouterSpec,
    RuleChange,
    Segment,
    StaticNat,
)
from hvcloud.router.public import MAX_CHANGE_ITEMS, PublicBook, combine, merge
from hvcloud.router.simulated import SimulatedRouterHost

SPEC = RouterSpec(name="r-1-VM", segment=Segment("cloudbr0", vlan=100), mac="02:00:00:00:00:01",
                  address="10.1.1.1", prefix=24, domain="net1.internal")
SEG = Segment("cloudbr0")


def pub(ip: str, source_nat: bool = False, **kw: object) -> PublicAddress:
    return replace(PublicAddress(ip=ip, prefix=24, gateway="192.0.2.1", mac="1e:00:00:00:00:10", segment=SEG,
                                 source_nat=source_nat), **kw)


def held() -> PublicBook:
    book, _ = merge(SPEC, PublicBook(), RuleChange(addresses=(pub("192.0.2.10", True), pub("192.0.2.11"),
                                                              pub("192.0.2.12"))))
    return book


def pf(rid: str, ports: tuple[int, int] = (80, 80), private: tuple[int, int] | None = None,
       ip: str = "192.0.2.11", vm: str = "10.1.1.10", proto: str = "tcp") -> PortForward:
    return PortForward(rid, ip, proto, ports, vm, private or ports)  # type: ignore[arg-type]


def refused(book: PublicBook, change: RuleChange, field: str) -> None:
    before = book.to_json()
    with pytest.raises(InvalidRouterRequest) as exc:
        merge(SPEC, book, change)
    assert field in str(exc.value), str(exc.value)
    assert book.to_json() == before


def test_addresses_rules_and_release() -> None:
    book = held()
    book, touched = merge(SPEC, book, RuleChange(
        port_forwards=(pf("1", (8000, 8010), (9000, 9010)),),
        static_nats=(StaticNat("192.0.2.12", "10.1.1.20"),),
        firewall=(FirewallRule("2", "ingress", "tcp", ("203.0.113.0/24",), "192.0.2.11", (8000, 8010)),
                  FirewallRule("3", "egress", "all", ())),
        egress_default_allow=False))
    assert touched.forwards == {"1"} and touched.statics == {"192.0.2.12"} and touched.egress_default
    assert book.firewall["3"].cidrs == ("0.0.0.0/0",)
    book2, touched = merge(SPEC, book, RuleChange(release=("192.0.2.11",)))
    assert "192.0.2.11" not in book2.addresses and not book2.forwards and list(book2.firewall) == ["3"]
    assert touched.forwards == {"1"} and touched.firewall == {"2"}
    assert "1" in book.forwards  # the old book is untouched


def test_a_second_source_nat_address_takes_over() -> None:
    book, _ = merge(SPEC, held(), RuleChange(addresses=(pub("192.0.2.11", True),)))
    assert [a.ip for a in book.addresses.values() if a.source_nat] == ["192.0.2.11"]


@pytest.mark.parametrize("change,field", [
    (RuleChange(port_forwards=(pf("1", ip="192.0.2.99"),)), "port_forwards[0].public_ip"),
    (RuleChange(port_forwards=(pf("1", vm="10.1.2.10"),)), "port_forwards[0].private_ip"),
    (RuleChange(port_forwards=(pf("1", vm="10.1.1.1"),)), "port_forwards[0].private_ip"),
    (RuleChange(port_forwards=(pf("1", (10, 20), (10, 30)),)), "port_forwards[0].private_ports"),
    (RuleChange(port_forwards=(pf("1", (20, 10)),)), "port_forwards[0].public_ports"),
    (RuleChange(port_forwards=(pf("1", (0, 10)),)), "port_forwards[0].public_ports"),
    (RuleChange(port_forwards=(pf("1", (1, 65536)),)), "port_forwards[0].public_ports"),
    (RuleChange(port_forwards=(pf("1", proto="icmp"),)), "port_forwards[0].protocol"),
    (RuleChange(port_forwards=(pf("1", (100, 200)), pf("2", (200, 300)))), "port_forwards[1].public_ports"),
    (RuleChange(port_forwards=(pf("x\n;flush ruleset"),)), "port_forwards[0].rule_id"),
    (RuleChange(port_forwards=(pf("a" * 65),)), "port_forwards[0].rule_id"),
    (RuleChange(static_nats=(StaticNat("192.0.2.10", "10.1.1.10"),)), "static_nats[0].public_ip"),
    (RuleChange(static_nats=(StaticNat("192.0.2.11", "10.1.1.10"), StaticNat("192.0.2.12", "10.1.1.10"))),
     "static_nats[1].private_ip"),
    (RuleChange(port_forwards=(pf("1"),), static_nats=(StaticNat("192.0.2.11", "10.1.1.10"),)),
     "port_forwards[0].public_ip"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", ("10.0.0.0/33",), "192.0.2.11"),)),
     "firewall[0].cidrs[0]"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", ("garbage",), "192.0.2.11"),)), "firewall[0].cidrs[0]"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", ("1.2.3.4/8 ; drop",), "192.0.2.11"),)),
     "firewall[0].cidrs[0]"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "icmp", (), "192.0.2.11", (80, 80)),)), "firewall[0].ports"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", (), "192.0.2.11", icmp_type=8),)),
     "firewall[0].icmp_type"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "icmp", (), "192.0.2.11", icmp_type=256),)),
     "firewall[0].icmp_type"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "gre", (), "192.0.2.11"),)),  # type: ignore[arg-type]
     "firewall[0].protocol"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", ()),)), "firewall[0].public_ip"),
    (RuleChange(firewall=(FirewallRule("1", "egress", "tcp", (), "192.0.2.11"),)), "firewall[0].public_ip"),
    (RuleChange(firewall=(FirewallRule("1", "ingress", "tcp", ("0.0.0.0/0",) * 300, "192.0.2.11"),)),
     "firewall[0].cidrs"),
    (RuleChange(addresses=(pub("10.1.1.50"),)), "addresses[0].ip"),
    (RuleChange(addresses=(pub("192.0.2.20", gateway="198.51.100.1"),)), "addresses[0].gateway"),
    (RuleChange(addresses=(pub("192.0.2.20", prefix=40),)), "addresses[0].prefix"),
    (RuleChange(addresses=(pub("192.0.2.20", mac="01:00:00:00:00:01"),)), "addresses[0]"),
    (RuleChange(addresses=(pub("192.0.2.20", segment=Segment("other")),)), "addresses[0].segment"),
    (RuleChange(addresses=(pub("192.0.2.20", segment=Segment(None)),)), "addresses[0].segment"),
    (RuleChange(addresses=(pub("192.0.2.20", True), pub("192.0.2.21", True))), "addresses"),
    (RuleChange(addresses=(pub("192.0.2.255"),)), "addresses[0].ip"),
    (RuleChange(release=("192.0.2.11",), port_forwards=(pf("1"),)), "port_forwards[0].public_ip"),
    (RuleChange(release=("not-an-ip",)), "release[0]"),
    (RuleChange(load_balancers=(LoadBalancer("1", "192.0.2.11", 80, 80, "udp", "roundrobin", ("10.1.1.10",)),)),
     "load_balancers[0].protocol"),
    (RuleChange(load_balancers=(LoadBalancer("1", "192.0.2.11", 80, 80, "tcp", "random",  # type: ignore[arg-type]
                                             ("10.1.1.10",)),)), "load_balancers[0].algorithm"),
    (RuleChange(load_balancers=(LoadBalancer("1", "192.0.2.11", 80, 80, "tcp", "source", ("8.8.8.8",)),)),
     "load_balancers[0].backends[0]"),
    (RuleChange(port_forwards=(pf("1"),),
                load_balancers=(LoadBalancer("2", "192.0.2.11", 80, 80, "tcp", "source", ("10.1.1.10",)),)),
     "load_balancers[0].public_port"),
    (RuleChange(load_balancers=(LoadBalancer("1", "192.0.2.12", 80, 80, "tcp", "source", ("10.1.1.10",)),
                                LoadBalancer("1", "192.0.2.12", 81, 80, "tcp", "source", ("10.1.1.10",)))),
     "load_balancers[1].rule_id"),
])
def test_bad_changes_are_refused_naming_the_field(change: RuleChange, field: str) -> None:
    refused(held(), change, field)


def test_static_nat_on_an_address_then_a_forward_on_it_is_refused() -> None:
    book, _ = merge(SPEC, held(), RuleChange(static_nats=(StaticNat("192.0.2.11", "10.1.1.10"),)))
    refused(book, RuleChange(port_forwards=(pf("1"),)), "port_forwards[0].public_ip")
    refused(book, RuleChange(addresses=(pub("192.0.2.11", True),)), "addresses[0].source_nat")


def test_replacing_a_forward_does_not_clash_with_itself() -> None:
    book, _ = merge(SPEC, held(), RuleChange(port_forwards=(pf("1", (100, 200)),)))
    book, _ = merge(SPEC, book, RuleChange(port_forwards=(pf("1", (150, 250)),)))
    assert book.forwards["1"].public_ports == (150, 250)
    # udp and tcp do not clash; another address does not either
    merge(SPEC, book, RuleChange(port_forwards=(pf("2", (150, 250), proto="udp"), pf("3", (150, 250),
                                                                                       ip="192.0.2.12"))))


def test_oversized_change_is_refused() -> None:
    refused(held(), RuleChange(remove_firewall=("1",) * (MAX_CHANGE_ITEMS + 1)), "remove_firewall")


def test_saved_book_round_trips_and_a_tampered_one_is_refused() -> None:
    book, _ = merge(SPEC, held(), RuleChange(
        port_forwards=(pf("1", (8000, 8001), (9000, 9001)),), static_nats=(StaticNat("192.0.2.12", "10.1.1.20"),),
        firewall=(FirewallRule("2", "ingress", "icmp", (), "192.0.2.11", icmp_type=8, icmp_code=0),),
        load_balancers=(LoadBalancer("lb", "192.0.2.11", 443, 8443, "tcp", "leastconn", ("10.1.1.10",)),)))
    again = PublicBook.from_json(SPEC, book.to_json())
    assert again.state() == book.state()
    bad = book.to_json()
    bad["port_forwards"][0]["private_ip"] = "10.9.9.9"
    with pytest.raises(Exception, match="unreadable"):
        PublicBook.from_json(SPEC, bad)


def test_combine_keeps_order_semantics() -> None:
    first = RuleChange(port_forwards=(pf("1"),), firewall=(FirewallRule("2", "egress", "all", ()),))
    then = RuleChange(remove_port_forwards=("1",), firewall=(FirewallRule("3", "egress", "all", ()),))
    both = combine(first, then)
    book, _ = merge(SPEC, held(), both)
    assert "1" not in book.forwards and set(book.firewall) == {"2", "3"}
    # removed then added again: the rule is there
    book, _ = merge(SPEC, book, combine(RuleChange(remove_firewall=("2",)),
                                        RuleChange(firewall=(FirewallRule("2", "egress", "tcp", ()),))))
    assert book.firewall["2"].protocol == "tcp"


def test_an_address_associated_and_made_source_nat_in_one_batch_is_one_source_nat_address() -> None:
    # the server's first batch: IpAssocCommand (sourceNat) then SetSourceNatCommand of the same address
    first = RuleChange(addresses=(pub("192.0.2.20", True), pub("192.0.2.21")))
    both = combine(first, RuleChange(addresses=(pub("192.0.2.20", True),)))
    book, _ = merge(SPEC, PublicBook(), both)
    assert [a.ip for a in book.addresses.values() if a.source_nat] == ["192.0.2.20"]
    assert set(book.addresses) == {"192.0.2.20", "192.0.2.21"}
    # two different source NAT addresses in one change stay refused
    refused(PublicBook(), RuleChange(addresses=(pub("192.0.2.20", True), pub("192.0.2.21", True))), "addresses")


# --------------------------------------------------------------------------- nftables text


def test_delta_is_the_size_of_the_change_not_of_the_router() -> None:
    book = held()
    rules = tuple(FirewallRule(str(i), "ingress", "tcp", (), "192.0.2.11", (1000 + i, 1000 + i)) for i in range(500))
    forwards = tuple(pf(f"p{i}", (2000 + i, 2000 + i), vm="10.1.1.10") for i in range(500))
    big, _ = merge(SPEC, book, RuleChange(firewall=rules, port_forwards=forwards))
    handles = {str(i): i + 10 for i in range(500)}
    new, touched = merge(SPEC, big, RuleChange(port_forwards=(pf("extra", (3000, 3000)),),
                                               remove_firewall=("7",)))
    d = nft.delta(SPEC, big, new, touched, handles)
    assert d.commands == [
        "add element ip hvr pf { 192.0.2.11 . tcp . 3000 : 10.1.1.10 . 3000 }",
        f"delete rule ip hvr fwi_{nft.bucket('7')} handle 17",
    ]
    assert d.removed_rules == ["7"] and d.added_rules == []
    full = nft.full(SPEC, new)
    assert full.count('comment "fw:') == 499 and "192.0.2.11 . tcp . 3000 : 10.1.1.10 . 3000" in full


def test_shifted_ranges_are_per_port_elements_and_kept_ranges_one() -> None:
    book, touched = merge(SPEC, held(), RuleChange(port_forwards=(pf("1", (8000, 8002), (9000, 9002)),
                                                                 pf("2", (100, 200)))))
    d = nft.delta(SPEC, held(), book, touched, {})
    assert "add element ip hvr pf { 192.0.2.11 . tcp . 8000 : 10.1.1.10 . 9000, 192.0.2.11 . tcp . 8001 : " \
           "10.1.1.10 . 9001, 192.0.2.11 . tcp . 8002 : 10.1.1.10 . 9002 }" in d.commands
    assert "add element ip hvr pfk { 192.0.2.11 . tcp . 100-200 : 10.1.1.10 }" in d.commands


def test_firewall_rule_text() -> None:
    icmp = FirewallRule("9", "ingress", "icmp", ("203.0.113.0/24",), "192.0.2.11", None, 8, 0)
    assert nft.firewall_rule(icmp) == (
        f"fwi_{nft.bucket('9')}",
        'ip daddr 192.0.2.11 ip saddr { 203.0.113.0/24 } meta l4proto icmp icmp type 8 icmp code 0 accept '
        'comment "fw:9"')
    assert nft.firewall_rule(FirewallRule("9", "egress", "udp", ("0.0.0.0/0",), None, (53, 53))) \
        == (f"fwo_{nft.bucket('9')}", 'meta l4proto udp th dport 53 goto egress_exc comment "fw:9"')


def test_delta_with_an_unknown_handle_raises_for_a_full_load() -> None:
    book, _ = merge(SPEC, held(), RuleChange(firewall=(FirewallRule("1", "egress", "all", ()),)))
    new, touched = merge(SPEC, book, RuleChange(remove_firewall=("1",)))
    with pytest.raises(KeyError):
        nft.delta(SPEC, book, new, touched, {})


# --------------------------------------------------------------------------- the simulated host


def test_simulated_host_applies_saves_and_recovers(tmp_path: Path) -> None:
    host = SimulatedRouterHost(tmp_path)
    with pytest.raises(RouterNotFound):
        host.public_state("r-1-VM")
    host.start(SPEC)
    state = host.apply("r-1-VM", RuleChange(addresses=(pub("192.0.2.10", True),)))
    assert [a.ip for a in state.addresses] == ["192.0.2.10"]
    with pytest.raises(InvalidRouterRequest, match="port_forwards"):
        host.apply("r-1-VM", RuleChange(port_forwards=(pf("1"),)))
    host.apply("r-1-VM", RuleChange(addresses=(pub("192.0.2.11"),), port_forwards=(pf("1"),)))
    again = SimulatedRouterHost(tmp_path)
    assert again.public_state("r-1-VM") == host.public_state("r-1-VM")
    assert again.recover() == ["r-1-VM"]


def test_haproxy_config_has_every_rule_checked_backends() -> None:
    from hvcloud.router.haproxy import render

    text = render([LoadBalancer("lb:1", "192.0.2.11", 80, 8080, "tcp", "leastconn", ("10.1.1.10", "10.1.1.11")),
                   LoadBalancer("lb2", "192.0.2.11", 443, 443, "tcp", "source", ())])
    assert "listen lb_lb_1\n  bind 192.0.2.11:80\n  balance leastconn\n" in text
    assert "  server b0 10.1.1.10:8080 check inter 500ms fall 2 rise 1\n" in text
    assert "  server b1 10.1.1.11:8080 check" in text
    assert "listen lb_lb2\n  bind 192.0.2.11:443\n  balance source\n" in text
    assert "mode tcp" in text


def test_simulated_host_takes_thousands_of_routers_with_public_sides() -> None:
    host = SimulatedRouterHost()
    for n in range(2000):
        spec = replace(SPEC, name=f"r-{n}-VM", address=f"10.{n // 250}.{n % 250}.1")
        host.start(spec)
        host.apply(spec.name, RuleChange(addresses=(pub(f"192.0.{n // 250}.{n % 250 + 2}", True, prefix=16,
                                                        gateway="192.0.255.254"),),
                                         firewall=(FirewallRule("1", "egress", "all", ()),)))
    assert len(host.routers()) == 2000
    assert host.status("r-1999-VM").details["rules"] == "1"
    assert host.public_state("r-7-VM").addresses[0].ip == "192.0.0.9"
