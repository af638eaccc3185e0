"""Release a guest's DHCP lease in dnsmasq, as dnsmasq's ``dhcp_release`` tool does (not installed
by ``dnsmasq-base``).

Withdrawing a static lease from ``dhcp-hosts`` and sending SIGHUP leaves dnsmasq's lease (and the
DNS name it gives the address) in place until it expires, and a later VM given that address with
another MAC would be refused it. A DHCPRELEASE for the MAC and address, sent to dnsmasq from inside
the router's namespace through ``eth0``, drops the lease at once; the client id is taken from
dnsmasq's lease file, because dnsmasq finds a lease by client id when it has one.

Run as ``python -m hvcloud.router.release --server A --ip IP --mac MAC [--client-id HEX] --interface eth0``
inside the namespace.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import struct
import sys
from pathlib import Path

DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
_MAGIC = bytes((99, 130, 83, 99))
_DHCPRELEASE = 7


def release_packet(server: str, ip: str, mac: str, client_id: bytes | None = None) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", ""))
    if len(chaddr) != 6:
        raise ValueError(f"invalid MAC {mac!r}")
    header = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, int.from_bytes(os.urandom(4), "big"), 0, 0,
                         ipaddress.IPv4Address(ip).packed, bytes(4), bytes(4), bytes(4), chaddr.ljust(16, b"\0"),
                         bytes(64), bytes(128))
    options = bytes((53, 1, _DHCPRELEASE, 54, 4)) + ipaddress.IPv4Address(server).packed
    if client_id:
        if len(client_id) > 255:
            raise ValueError("client id longer than 255 bytes")
        options += bytes((61, len(client_id))) + client_id
    return header + _MAGIC + options + bytes((255,))


def lease_client_id(leases: Path, mac: str, ip: str) -> bytes | None:
    """The client id dnsmasq recorded for ``mac``/``ip`` (``expiry mac ip name clid`` lines)."""
    try:
        lines = leases.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 5 and fields[1].lower() == mac and fields[2] == ip and fields[4] != "*":
            try:
                return bytes.fromhex(fields[4].replace(":", ""))
            except ValueError:
                return None
    return None


def has_lease(leases: Path, mac: str, ip: str) -> bool:
    try:
        lines = leases.read_text().splitlines()
    except FileNotFoundError:
        return False
    return any(len(f) >= 3 and f[1].lower() == mac and f[2] == ip for f in (line.split() for line in lines))


def send(server: str, ip: str, mac: str, client_id: bytes | None, interface: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.sendto(release_packet(server, ip, mac, client_id), (server, DHCP_SERVER_PORT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="send dnsmasq a DHCPRELEASE for one lease")
    parser.add_argument("--server", required=True)
    parser.add_argument("--ip", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--client-id", default=None, help="hex")
    parser.add_argument("--interface", default="eth0")
    args = parser.parse_args(argv)
    send(args.server, args.ip, args.mac, bytes.fromhex(args.client_id) if args.client_id else None, args.interface)
    return 0


if __name__ == "__main__":
    sys.exit(main())
