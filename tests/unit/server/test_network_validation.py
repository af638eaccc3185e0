"""The network parameter parsers on their own: segment ranges, segment ids, address ranges, guest
CIDRs and DNS names, with malformed, oversized and hostile values (every refusal a 431)."""

from __future__ import annotations

import ipaddress

import pytest

from hvcloud.server.errors import CloudError
from hvcloud.server.orchestration.networks import validation as V


def _refused(fn: object, *args: object) -> str:
    with pytest.raises(CloudError) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.code == 431
    return info.value.text


@pytest.mark.parametrize(("text", "method", "expected"), [
    ("100-199", "VLAN", [(100, 199)]),
    (" 300 - 310 , 100-199 ", "VLAN", [(100, 199), (300, 310)]),
    ("7", "VLAN", [(7, 7)]),
    ("1-4094", "VLAN", [(1, 4094)]),
    ("5000-16777214", "VXLAN", [(5000, 16_777_214)]),
    ("1-2,,3-4", "VLAN", [(1, 2), (3, 4)]),
])
def test_vnet_ranges(text: str, method: str, expected: list[tuple[int, int]]) -> None:
    ranges = V.parse_vnet_ranges(text, method)
    assert ranges == expected
    assert V.stored_ranges(V.format_vnet_ranges(ranges)) == ranges


@pytest.mark.parametrize(("text", "method"), [
    ("", "VLAN"), (",", "VLAN"), ("0-10", "VLAN"), ("4000-4095", "VLAN"), ("16777215", "VXLAN"), ("10-5", "VLAN"),
    ("a-b", "VLAN"), ("1-2-3", "VLAN"), ("-5", "VLAN"), ("5-", "VLAN"), ("10-20,20-30", "VLAN"),
    ("1" * 40, "VLAN"), ("\u0661\u0660\u0660-\u0662\u0660\u0660", "VLAN"), ("100-199\x00", "VLAN"),
    ("1e3", "VLAN"), ("0x10-0x20", "VLAN"), (",".join(str(i) for i in range(1, 200, 2)), "VLAN"),
    ("' OR 1=1 --", "VLAN"),
])
def test_vnet_ranges_refused(text: str, method: str) -> None:
    assert "vlan" in _refused(V.parse_vnet_ranges, text, method)


def test_range_arithmetic() -> None:
    assert V.subtract_ranges([(100, 199)], [(120, 129), (190, 250)]) == [(100, 119), (130, 189)]
    assert V.subtract_ranges([(1, 5)], [(1, 5)]) == []
    assert V.ranges_overlap([(1, 10)], [(10, 20)]) == (10, 10)
    assert V.ranges_overlap([(1, 9)], [(10, 20)]) is None
    assert V.in_ranges(15, [(1, 9), (10, 20)]) and not V.in_ranges(21, [(1, 9), (10, 20)])


@pytest.mark.parametrize(("value", "method", "uri"), [
    ("100", "VLAN", "vlan://100"), ("vlan://100", "VLAN", "vlan://100"), ("VXLAN://5000", "VXLAN", "vxlan://5000"),
    ("untagged", "VLAN", "vlan://untagged"), ("vlan://untagged", "VXLAN", "vlan://untagged"),
    (" 42 ", "VXLAN", "vxlan://42"),
])
def test_segments(value: str, method: str, uri: str) -> None:
    assert V.parse_segment(value, method).uri == uri


@pytest.mark.parametrize(("value", "method"), [
    ("0", "VLAN"), ("4095", "VLAN"), ("16777215", "VXLAN"), ("vxlan://100", "VLAN"), ("vlan://100", "VXLAN"),
    ("gre://5", "VLAN"), ("vlan://", "VLAN"), ("-1", "VLAN"), ("\u0661\u0662", "VLAN"), ("9" * 12, "VXLAN"),
    ("100; rm -rf /", "VLAN"), ("vxlan://untagged", "VXLAN"), ("", "VLAN"),
])
def test_segments_refused(value: str, method: str) -> None:
    assert "vlan" in _refused(V.parse_segment, value, method)


def test_ip_range_rules() -> None:
    rng = V.ip_range("192.168.1.1", "255.255.255.0", "192.168.1.10", "192.168.1.20")
    assert rng.net == ipaddress.IPv4Network("192.168.1.0/24") and rng.netmask == "255.255.255.0"
    assert str(rng.end) == "192.168.1.20"
    assert str(V.ip_range("10.0.0.1", "255.255.255.248", "10.0.0.2", None).end) == "10.0.0.2"
    for args, field in ((("192.168.1.1", "255.255.255.0", "192.168.2.10", None), "startip"),
                        (("192.168.1.1", "255.255.255.0", "192.168.1.10", "192.168.1.255"), "endip"),
                        (("192.168.1.1", "255.255.255.0", "192.168.1.20", "192.168.1.10"), "endip"),
                        (("192.168.1.15", "255.255.255.0", "192.168.1.10", "192.168.1.20"), "gateway"),
                        (("192.168.1.0", "255.255.255.0", "192.168.1.10", None), "gateway"),
                        (("192.168.1.1", "255.255.255.255", "192.168.1.1", None), "netmask"),
                        (("192.168.1.1", "255.0.255.0", "192.168.1.10", None), "netmask"),
                        (("192.168.1.1", "24", "192.168.1.10", None), "netmask"),
                        (("192.168.1.1", "0.0.0.255", "192.168.1.10", None), "netmask"),
                        (("::1", "255.255.255.0", "192.168.1.10", None), "gateway"),
                        (("192.168.1.1", "255.255.255.0", "x" * 300, None), "startip")):
        assert field in _refused(V.ip_range, *args), args


def test_guest_cidrs() -> None:
    assert V.guest_cidr("10.1.1.7/24") == ipaddress.IPv4Network("10.1.1.0/24")
    assert "too small" in _refused(V.guest_cidr, "10.1.1.0/30")
    assert "too large" in _refused(V.guest_cidr, "10.0.0.0/7")
    assert "cidr" in _refused(V.guest_cidr, "10.1.1.0/33")
    assert "cidr" in _refused(V.guest_cidr, "fe80::/64")
    for private in ("10.9.0.0/16", "172.16.0.0/12", "192.168.4.0/24", "100.64.1.0/24"):
        V.check_private(ipaddress.IPv4Network(private), "cidr")
    for public in ("8.8.8.0/24", "172.32.0.0/16", "11.0.0.0/8", "100.128.0.0/24"):
        assert "RFC 1918" in _refused(V.check_private, ipaddress.IPv4Network(public), "cidr")


@pytest.mark.parametrize(("value", "expected"), [
    ("example.com", "example.com"), ("Corp.Example.", "corp.example"), ("cs1cloud.internal", "cs1cloud.internal"),
    ("a-b.c-d", "a-b.c-d"), ("x", "x"),
])
def test_network_domains(value: str, expected: str) -> None:
    assert V.network_domain(value) == expected


@pytest.mark.parametrize("value", [
    "", ".", "a..b", "-a.example", "a-.example", "a_b.example", "a b", "x" * 64, ".".join(["abcdefgh"] * 30),
    "\u00e9t\u00e9.example", "a;b", "a\nb",
])
def test_network_domains_refused(value: str) -> None:
    assert "networkdomain" in _refused(V.network_domain, value)


def test_isolation_methods() -> None:
    assert V.isolation_method(" vxlan ") == "VXLAN" and V.isolation_method("vlan") == "VLAN"
    for bad in ("GRE", "STT", "", "VLAN,VXLAN"):
        assert "isolationmethods" in _refused(V.isolation_method, bad)
