"""Hostile and malformed input to a router: refused before it reaches a dnsmasq file or a path."""

from __future__ import annotations

import base64

import pytest

from hvcloud.router import validation
from hvcloud.router.api import DhcpEntry, InvalidRouterRequest, RouterSpec, Segment

SPEC = RouterSpec(name="r-1-VM", segment=Segment("br0"), mac="02:00:00:00:00:01", address="10.1.1.1", prefix=24,
                  domain="cs1cloud.internal", dns=("192.0.2.1",))


@pytest.mark.parametrize("name", ["vm\nx", "vm x", "vm,x", "vm#x", "-vm", "vm-", "", "a" * 64, "1234", "vm.x",
                                  "vm/x", "vm\x00", "vmé", "vm\tset:x"])
def test_hostnames_that_would_inject_dnsmasq_lines_are_refused(name: str) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.entry(SPEC, DhcpEntry("02:00:00:00:00:0a", "10.1.1.10", name))


@pytest.mark.parametrize("name", ["vm", "VM-1", "a" * 63, "x1"])
def test_plain_labels_are_accepted(name: str) -> None:
    assert validation.hostname(name) == name


@pytest.mark.parametrize("mac", ["02:00:00:00:00", "02-00-00-00-00-0a", "02:00:00:00:00:0g", "0200.0000.000a",
                                 "01:00:5e:00:00:01", "00:00:00:00:00:00", "02:00:00:00:00:0a\n", "",
                                 "ff:ff:ff:ff:ff:ff"])
def test_bad_macs_are_refused(mac: str) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.mac(mac)


def test_mac_is_canonical_lower_case() -> None:
    assert validation.entry(SPEC, DhcpEntry("02:AB:00:00:00:0A", "10.1.1.10", "vm")).mac == "02:ab:00:00:00:0a"


@pytest.mark.parametrize("ip", ["10.1.2.10", "10.1.1.0", "10.1.1.255", "10.1.1.1", "10.1.1", "10.1.1.10 ",
                                "::1", "010.1.1.10", "10.1.1.10/24", ""])
def test_addresses_outside_the_subnet_or_malformed_are_refused(ip: str) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.entry(SPEC, DhcpEntry("02:00:00:00:00:0a", ip, "vm"))


@pytest.mark.parametrize("change", [
    {"address": "10.1.1.0"}, {"address": "10.1.1.255"}, {"prefix": 31}, {"prefix": 4}, {"address": "nope"},
    {"domain": "bad domain"}, {"domain": "a..b"}, {"domain": "x\nserver=1.2.3.4"}, {"name": "../etc"},
    {"name": "r 1"}, {"name": ""}, {"dns": ("8.8.8.8\n",)}, {"dns": ("1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4")},
    {"mac": "zz"},
])
def test_bad_specs_are_refused(change: dict[str, object]) -> None:
    fields = {**SPEC.__dict__, **change}
    with pytest.raises(InvalidRouterRequest):
        validation.spec(RouterSpec(**fields))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("item", [("../x", "f", "v"), ("metadata", "../../etc/passwd", "v"), ("metadata", "a/b", "v"),
                                  ("metadata", "..", "v"), ("metadata", ".", "v"), ("metadata", "", "v"),
                                  ("metadata", "x" * 65, "v"), ("meta data", "f", "v"), ("metadata", "f\n", "v")])
def test_vm_data_names_are_plain_keys(item: tuple[str, str, str]) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.vm_data([item])


def test_user_data_is_base64_and_at_most_one_mib_decoded() -> None:
    assert validation.vm_data([("userdata", "user-data", _b64(b"#!/bin/sh\n"))]).get("userdata", "user-data") == \
        b"#!/bin/sh\n"
    # unpadded and URL-safe forms are what some clients send
    assert validation.vm_data([("userdata", "user-data", "aGk")]).get("userdata", "user-data") == b"hi"
    assert validation.vm_data([("userdata", "user-data", _b64(b"\xfb\xff"))]).get("userdata", "user-data") == \
        b"\xfb\xff"
    assert validation.vm_data([("userdata", "user-data", _b64(b"\xfb\xff").replace("+", "-").replace("/", "_"))]) \
        .get("userdata", "user-data") == b"\xfb\xff"
    ok = validation.vm_data([("userdata", "user-data", _b64(b"x" * validation.MAX_USER_DATA))])
    assert len(ok.get("userdata", "user-data") or b"") == validation.MAX_USER_DATA
    with pytest.raises(InvalidRouterRequest, match="larger"):
        validation.vm_data([("userdata", "user-data", _b64(b"x" * (validation.MAX_USER_DATA + 1)))])
    with pytest.raises(InvalidRouterRequest, match="larger"):
        validation.vm_data([("userdata", "user-data", "A" * (validation.MAX_USER_DATA * 2))])
    with pytest.raises(InvalidRouterRequest, match="base64"):
        validation.vm_data([("userdata", "user-data", "not base64 at all!")])


def test_other_vm_data_files_are_bounded_text() -> None:
    with pytest.raises(InvalidRouterRequest, match="larger"):
        validation.vm_data([("metadata", "public-keys", "k" * (validation.MAX_VM_DATA_FILE + 1))])
    with pytest.raises(InvalidRouterRequest, match="text"):
        validation.vm_data([("metadata", "public-keys", "\ud800")])
    with pytest.raises(InvalidRouterRequest, match="not text"):
        validation.vm_data([("metadata", "public-keys", 5)])  # type: ignore[list-item]
    with pytest.raises(InvalidRouterRequest, match="more than"):
        validation.vm_data([("metadata", f"k{i}", "v") for i in range(validation.MAX_VM_DATA_FILES + 1)])


@pytest.mark.parametrize("data", ["userdata", b"x", [("metadata", "f")], [("a", "b", "c", "d")], [None]])
def test_vm_data_that_is_not_triples_is_refused(data: object) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.vm_data(data)  # type: ignore[arg-type]


def test_empty_and_none_contents_withdraw_a_file() -> None:
    files = validation.vm_data([("metadata", "a", "1"), ("metadata", "b", None), ("metadata", "c", ""),
                                ("userdata", "user-data", "none"), ("metadata", "a", None)])
    assert files.files == {}
    later = validation.vm_data([("metadata", "x", "1"), ("metadata", "x", "2")])
    assert later.files == {"metadata": {"x": b"2"}}


@pytest.mark.parametrize("pw", ["", "a\nb", "a\x00", "x" * (validation.MAX_PASSWORD + 1), "\x7f"])
def test_bad_passwords_are_refused(pw: str) -> None:
    with pytest.raises(InvalidRouterRequest):
        validation.password(pw)


@pytest.mark.parametrize("seg", [Segment(None), Segment("br0\n"), Segment("a" * 16), Segment("br0", vlan=0),
                                 Segment("br0", vlan=4095), Segment("br0", vxlan=1 << 24),
                                 Segment("br0", vlan=5, vxlan=5), Segment("../x")])
def test_bad_segments_are_refused(seg: Segment) -> None:
    with pytest.raises(InvalidRouterRequest, match="segment"):
        validation.spec(RouterSpec(**{**SPEC.__dict__, "segment": seg}))


def test_good_segments_pass() -> None:
    for seg in (Segment("br0"), Segment("br0", vlan=4094), Segment("eth1", vxlan=5001)):
        assert validation.spec(RouterSpec(**{**SPEC.__dict__, "segment": seg})).segment == seg
