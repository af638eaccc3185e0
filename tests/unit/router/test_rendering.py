"""dnsmasq's files, the metadata URL map and the router's saved state."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvcloud.router import validation
from hvcloud.router.api import DhcpEntry, InvalidRouterRequest, RouterError, RouterSpec, Segment
from hvcloud.router.book import RouterBook
from hvcloud.router.dnsmasq import DnsmasqPaths, render_conf, render_hosts, render_names
from hvcloud.router.metadata import files_from_json, files_to_json, resolve
from hvcloud.router.netns import namespace_name, veth_name

SPEC = validation.spec(RouterSpec(name="r-7-VM", segment=Segment("br0"), mac="02:00:00:00:00:01",
                                  address="10.1.1.1", prefix=24, domain="cs7.internal", dns=("192.0.2.1", "192.0.2.2")))


def test_conf_serves_static_leases_and_the_domain_on_eth0_only() -> None:
    conf = render_conf(SPEC, DnsmasqPaths(Path("/s/r")), lease="2h").splitlines()
    for line in ["interface=eth0", "bind-interfaces", "except-interface=lo", "no-resolv", "no-hosts",
                 "dhcp-range=10.1.1.0,static,255.255.255.0,2h", "domain=cs7.internal", "local=/cs7.internal/",
                 "server=192.0.2.1", "server=192.0.2.2", "dhcp-hostsfile=/s/r/dhcp-hosts",
                 "addn-hosts=/s/r/addn-hosts", "dhcp-leasefile=/s/r/dnsmasq.leases", "pid-file=/s/r/dnsmasq.pid",
                 "dhcp-option=tag:!nodefault,option:router,10.1.1.1",
                 "dhcp-option=tag:!nodefault,option:dns-server,10.1.1.1",
                 "dhcp-option=tag:nodefault,option:router", "dhcp-option=tag:nodefault,option:dns-server"]:
        assert line in conf
    assert not any(line.startswith("dhcp-option=option:router") for line in conf)


def test_hosts_file_tags_non_default_nics() -> None:
    entries = [DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm-a"),
               DhcpEntry("02:00:00:00:00:0b", "10.1.1.11", "vm-b", default=False)]
    assert render_hosts(entries) == "02:00:00:00:00:0a,10.1.1.10,vm-a\n02:00:00:00:00:0b,set:nodefault,10.1.1.11,vm-b\n"
    assert render_names(SPEC, entries) == ("10.1.1.1 data-server.cs7.internal data-server\n"
                                           "10.1.1.10 vm-a.cs7.internal vm-a\n10.1.1.11 vm-b.cs7.internal vm-b\n")
    assert render_hosts([]) == ""


FILES = validation.vm_data([("metadata", "instance-id", "i-1"), ("metadata", "local-ipv4", "10.1.1.10"),
                            ("userdata", "user-data", "aGk="), ("password", "vm_password", "secret")])


@pytest.mark.parametrize(("path", "body"), [
    ("/latest/meta-data/", b"instance-id\nlocal-ipv4\n"), ("/latest/meta-data", b"instance-id\nlocal-ipv4\n"),
    ("/latest/meta-data/instance-id", b"i-1"), ("/latest/instance-id", b"i-1"), ("/latest/user-data", b"hi"),
    ("/latest/user-data/", b"hi"), ("/latest/meta-data/local-ipv4?x=1", b"10.1.1.10"),
    ("/latest/local-ipv4#frag", b"10.1.1.10"),
    # not served: other folders, unknown keys, traversal, other roots, encoded names
    ("/latest/vm_password", None), ("/latest/meta-data/user-data", None), ("/latest/meta-data/../user-data", None),
    ("/latest/../metadata/instance-id", None), ("/latest/meta-data/a/b", None), ("/", None), ("", None),
    ("/latest/", None), ("/latest/%2e%2e", None), ("/2009-04-04/meta-data/instance-id", None),
    ("/latest/meta-data/nope", None), ("/latest/" + "a" * 10000, None), ("/latest/meta-data/.", None),
])
def test_metadata_urls_map_as_cloudstacks_router_rewrites_them(path: str, body: bytes | None) -> None:
    assert resolve(path, FILES) == body


def test_saved_vm_data_round_trips_and_malformed_parts_are_dropped() -> None:
    assert files_from_json(files_to_json(FILES)) == FILES
    hostile = {"../x": {"f": "aGk="}, "metadata": {"../f": "aGk=", "ok": "aGk=", "bad": "!!", "n": 5}, "x": []}
    assert files_from_json(hostile).files == {"metadata": {"ok": b"hi"}}
    assert files_from_json(["not", "a", "dict"]).files == {}


def test_book_replaces_by_mac_and_by_address() -> None:
    book = RouterBook(SPEC)
    a = DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm-a")
    assert book.set_entry(a) == []
    assert book.set_entry(a) is None
    moved = DhcpEntry(a.mac, "10.1.1.20", "vm-a")
    assert book.set_entry(moved) == [a]
    taker = DhcpEntry("02:00:00:00:00:0c", "10.1.1.20", "vm-c")
    assert book.set_entry(taker) == [moved]
    assert list(book.entries.values()) == [taker]
    renamed = DhcpEntry(taker.mac, taker.ip, "vm-c2")
    assert book.set_entry(renamed) == []
    assert book.remove_entry(renamed) == [renamed]
    assert book.remove_entry(renamed) is None


def test_book_round_trips_and_refuses_edited_state() -> None:
    book = RouterBook(SPEC, running=True)
    book.set_entry(DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm-a", default=False))
    again = RouterBook.from_json(book.to_json())
    assert again == book
    data = book.to_json()
    data["entries"][0]["hostname"] = "evil\ndhcp-option=3,6.6.6.6"
    with pytest.raises(InvalidRouterRequest):
        RouterBook.from_json(data)
    spec = book.to_json()["spec"]
    broken: object
    for broken in ({}, {"spec": {}}, {"spec": {"segment": {}}}, None, {"spec": spec, "entries": [{}]}):
        with pytest.raises(RouterError):
            RouterBook.from_json(broken)


def test_reconfigure_drops_entries_outside_the_new_subnet() -> None:
    book = RouterBook(SPEC)
    book.set_entry(DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", "vm-a"))
    book.set_entry(DhcpEntry("02:00:00:00:00:0b", "10.1.1.200", "vm-b"))
    smaller = RouterSpec(**{**SPEC.__dict__, "prefix": 25})
    assert [e.hostname for e in book.reconfigure(smaller)] == ["vm-b"]
    assert list(book.entries) == ["02:00:00:00:00:0a"]


@pytest.mark.parametrize("name", ["r-1-VM", "r.x_y", "r" * 63, "weird name/../x", "ü"])
def test_namespace_and_veth_names_are_safe_and_distinct(name: str) -> None:
    ns, veth = namespace_name(name), veth_name(name)
    assert ns.startswith("hvr-") and len(ns) <= 44 and all(c.isalnum() or c in "-_." for c in ns)
    assert len(veth) <= 15 and veth.isalnum()
    assert namespace_name(name + "x") != ns and veth_name(name + "x") != veth
