"""The DHCPRELEASE the runtime sends dnsmasq for a withdrawn lease, and reading dnsmasq's lease file."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from hvcloud.router.release import has_lease, lease_client_id, release_packet


def test_release_packet_is_a_bootp_request_with_the_release_options() -> None:
    pkt = release_packet("10.1.1.1", "10.1.1.10", "02:00:00:00:00:0a", b"\x01\x02\x00\x00\x00\x00\x0a")
    op, htype, hlen = struct.unpack("!BBB", pkt[:3])
    assert (op, htype, hlen) == (1, 1, 6)
    assert pkt[12:16] == bytes((10, 1, 1, 10))  # ciaddr
    assert pkt[28:34] == bytes.fromhex("02000000000a")  # chaddr
    assert pkt[236:240] == bytes((99, 130, 83, 99))
    options = pkt[240:]
    assert options[:3] == bytes((53, 1, 7)) and options[3:9] == bytes((54, 4, 10, 1, 1, 1))
    assert options[9:11] == bytes((61, 7)) and options[-1] == 255
    bare = release_packet("10.1.1.1", "10.1.1.10", "02:00:00:00:00:0a")
    assert bare[240:] == bytes((53, 1, 7, 54, 4, 10, 1, 1, 1, 255))


@pytest.mark.parametrize(("server", "ip", "mac", "cid"), [
    ("10.1.1.1", "10.1.1.10", "02:00:00:00:0a", None), ("10.1.1.1", "nope", "02:00:00:00:00:0a", None),
    ("x", "10.1.1.10", "02:00:00:00:00:0a", None), ("10.1.1.1", "10.1.1.10", "02:00:00:00:00:0a", b"x" * 256),
])
def test_bad_release_arguments_are_refused(server: str, ip: str, mac: str, cid: bytes | None) -> None:
    with pytest.raises(ValueError):
        release_packet(server, ip, mac, cid)


def test_lease_file_lookup_tolerates_junk(tmp_path: Path) -> None:
    leases = tmp_path / "leases"
    assert lease_client_id(leases, "02:00:00:00:00:0a", "10.1.1.10") is None
    assert not has_lease(leases, "02:00:00:00:00:0a", "10.1.1.10")
    leases.write_text("garbage\n\n1 2\n"
                      "1796736289 02:00:00:00:00:0b 10.1.1.11 vm-b *\n"
                      "1796736289 02:00:00:00:00:0c 10.1.1.12 vm-c zz:zz\n"
                      "1796736289 02:00:00:00:00:0a 10.1.1.10 vm-a 01:02:00:00:00:00:0a\n")
    assert lease_client_id(leases, "02:00:00:00:00:0a", "10.1.1.10") == bytes.fromhex("0102000000000a")
    assert lease_client_id(leases, "02:00:00:00:00:0b", "10.1.1.11") is None
    assert lease_client_id(leases, "02:00:00:00:00:0c", "10.1.1.12") is None
    assert lease_client_id(leases, "02:00:00:00:00:0a", "10.1.1.99") is None
    assert has_lease(leases, "02:00:00:00:00:0b", "10.1.1.11")
    assert not has_lease(leases, "02:00:00:00:00:0b", "10.1.1.10")
