"""Checks of network parameters shared by the physical-network, range and network managers.

Every check raises a 431 ``CloudError`` naming the parameter at fault and changes nothing; values
come back normalised (ranges merged and sorted, addresses in canonical form).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass

from hvcloud.server import errors

#: CloudStack's isolation methods this cloud implements, with the segment ids each allows
SEGMENT_LIMITS: dict[str, tuple[int, int]] = {"VLAN": (1, 4094), "VXLAN": (1, 16_777_214)}
#: the broadcast domain type (``vlan://`` / ``vxlan://`` scheme) of each isolation method
BROADCAST_TYPES = {"VLAN": "Vlan", "VXLAN": "Vxlan"}
MAX_RANGES = 64
#: the largest segment id of any isolation method (a VXLAN VNI is 24 bits)
MAX_SEGMENT_ID = 16_777_215
#: the smallest guest network: /29 (a gateway and five addresses); /30 and smaller are refused
MAX_PREFIX = 29
MIN_PREFIX = 8
_RANGE = re.compile(r"^\s*([0-9]{1,9})\s*(?:-\s*([0-9]{1,9})\s*)?$", re.ASCII)
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def isolation_method(value: str, name: str = "isolationmethods") -> str:
    for method in SEGMENT_LIMITS:
        if method.lower() == value.strip().lower():
            return method
    raise errors.param_error(f"Invalid {name} {value[:32]!r}: supported isolation methods are "
                             f"{', '.join(SEGMENT_LIMITS)}")


def parse_vnet_ranges(text: str, method: str, name: str = "vlan") -> list[tuple[int, int]]:
    """``"100-199,300-310"`` (or ``"100"``) as sorted, non-overlapping (low, high) pairs within the
    limits of ``method``; overlapping pieces of one value are refused."""
    low_limit, high_limit = SEGMENT_LIMITS[method]
    pieces = [p for p in text.split(",") if p.strip()]
    if not pieces:
        raise errors.param_error(f"Invalid {name}: give a range as start-end")
    if len(pieces) > MAX_RANGES:
        raise errors.param_error(f"Invalid {name}: more than {MAX_RANGES} ranges")
    ranges: list[tuple[int, int]] = []
    for piece in pieces:
        m = _RANGE.match(piece)
        if m is None:
            raise errors.param_error(f"Invalid {name} {piece.strip()[:32]!r}: expected start-end")
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        if low > high:
            raise errors.param_error(f"Invalid {name} {low}-{high}: the start is after the end")
        if low < low_limit or high > high_limit:
            raise errors.param_error(f"Invalid {name} {low}-{high}: {method} ids must be between "
                                     f"{low_limit} and {high_limit}")
        ranges.append((low, high))
    ranges.sort()
    for (_, high), (low, _) in itertools.pairwise(ranges):
        if low <= high:
            raise errors.param_error(f"Invalid {name}: the ranges overlap at {low}")
    return ranges


def format_vnet_ranges(ranges: list[tuple[int, int]]) -> str | None:
    return ",".join(f"{lo}-{hi}" for lo, hi in ranges) or None


def stored_ranges(text: str | None) -> list[tuple[int, int]]:
    """A physical network's ``vnet_range`` column as sorted (low, high) pairs: ``"100-199,300"`` →
    ``[(100, 199), (300, 300)]``. The API writes it checked; a value changed behind its back reads
    defensively: malformed parts, reversed bounds and ids out of range are dropped, and more than
    :data:`MAX_RANGES` parts read as no range at all."""
    if not text:
        return []
    parts = text.split(",")
    if len(parts) > MAX_RANGES:
        return []
    ranges: list[tuple[int, int]] = []
    for part in parts:
        m = _RANGE.fullmatch(part)
        if m is None:
            continue
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        if low > high or high > MAX_SEGMENT_ID:
            continue
        ranges.append((low, high))
    return sorted(ranges)


def ranges_overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> tuple[int, int] | None:
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            if lo1 <= hi2 and lo2 <= hi1:
                return max(lo1, lo2), min(hi1, hi2)
    return None


def in_ranges(vnet: int, ranges: list[tuple[int, int]]) -> bool:
    return any(lo <= vnet <= hi for lo, hi in ranges)


def subtract_ranges(ranges: list[tuple[int, int]], remove: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = list(ranges)
    for rlo, rhi in remove:
        nxt: list[tuple[int, int]] = []
        for lo, hi in out:
            if rhi < lo or rlo > hi:
                nxt.append((lo, hi))
                continue
            if lo < rlo:
                nxt.append((lo, rlo - 1))
            if rhi < hi:
                nxt.append((rhi + 1, hi))
        out = nxt
    return out


@dataclass(frozen=True)
class Segment:
    """A parsed ``vlan`` parameter: ``vnet`` None for untagged."""

    method: str
    vnet: int | None

    @property
    def uri(self) -> str:
        if self.vnet is None:
            return "vlan://untagged"
        return f"{self.method.lower()}://{self.vnet}"


def parse_segment(value: str, method: str, name: str = "vlan") -> Segment:
    """``"100"``, ``"vlan://100"``, ``"vxlan://5000"`` or ``"untagged"`` / ``"vlan://untagged"``; the
    scheme, when given, must match the physical network's isolation method."""
    text = value.strip().lower()
    scheme, sep, rest = text.partition("://")
    if sep:
        if scheme not in ("vlan", "vxlan"):
            raise errors.param_error(f"Invalid {name} {value[:32]!r}: expected vlan://N, vxlan://N or a number")
        text = rest
        if text == "untagged" and scheme == "vlan":
            return Segment(method, None)
        if scheme.upper() != method:
            raise errors.param_error(f"Invalid {name} {value[:32]!r}: the physical network isolates by {method}")
    if text == "untagged" and not sep:
        return Segment(method, None)
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise errors.param_error(f"Invalid {name} {value[:32]!r}: expected a {method} id")
    vnet = int(text)
    low, high = SEGMENT_LIMITS[method]
    if not low <= vnet <= high:
        raise errors.param_error(f"Invalid {name} {vnet}: {method} ids must be between {low} and {high}")
    return Segment(method, vnet)


def ipv4(value: str, name: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise errors.param_error(f"Invalid {name} {value[:64]!r}: not an IPv4 address") from None


def netmask_prefix(value: str, name: str = "netmask") -> int:
    """A dotted netmask (``255.255.255.0``) as its prefix length; a bare prefix length is refused."""
    if value.count(".") != 3:
        raise errors.param_error(f"Invalid {name} {value[:64]!r}: not an IPv4 netmask")
    try:
        net = ipaddress.IPv4Network(f"0.0.0.0/{value.strip()}")
    except ValueError:
        net = None
    if net is None or str(net.netmask) != value.strip():  # a host mask (0.0.0.255) reads as a netmask too
        raise errors.param_error(f"Invalid {name} {value[:64]!r}: not an IPv4 netmask")
    return net.prefixlen


def guest_cidr(value: str, name: str = "cidr") -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(value.strip(), strict=False)
    except ValueError:
        raise errors.param_error(f"Invalid {name} {value[:64]!r}: not an IPv4 CIDR") from None
    check_size(net, name)
    return net


def check_size(net: ipaddress.IPv4Network, name: str) -> None:
    if net.prefixlen > MAX_PREFIX:
        raise errors.param_error(f"Invalid {name} {net}: too small, a guest network needs at least a "
                                 f"/{MAX_PREFIX}")
    if net.prefixlen < MIN_PREFIX:
        raise errors.param_error(f"Invalid {name} {net}: too large, at most a /{MIN_PREFIX}")


def check_private(net: ipaddress.IPv4Network, name: str) -> None:
    """CloudStack's guest CIDR rule for isolated networks: RFC 1918 or RFC 6598 space."""
    allowed = (ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv4Network("172.16.0.0/12"),
               ipaddress.IPv4Network("192.168.0.0/16"), ipaddress.IPv4Network("100.64.0.0/10"))
    if not any(net.subnet_of(block) for block in allowed):
        raise errors.param_error(f"Invalid {name} {net}: a guest CIDR must be RFC 1918 or RFC 6598 space")


def host_in(net: ipaddress.IPv4Network, address: ipaddress.IPv4Address, name: str) -> None:
    if address not in net or address in (net.network_address, net.broadcast_address):
        raise errors.param_error(f"Invalid {name} {address}: not a host address of {net}")


@dataclass(frozen=True)
class IpRange:
    """A checked address range: gateway and netmask give the subnet; start..end inside it."""

    net: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address

    @property
    def netmask(self) -> str:
        return str(self.net.netmask)


def ip_range(gateway: str, netmask: str, start: str, end: str | None) -> IpRange:
    """The rules of ``createVlanIpRange`` and of a shared network's range: the gateway and the range
    in one subnet (gateway/netmask), the range ordered, the gateway outside it."""
    gw = ipv4(gateway, "gateway")
    prefix = netmask_prefix(netmask)
    net = ipaddress.IPv4Network(f"{gw}/{prefix}", strict=False)
    if prefix > 30:
        raise errors.param_error(f"Invalid netmask {netmask}: the subnet {net} has no room for a range")
    host_in(net, gw, "gateway")
    first = ipv4(start, "startip")
    last = ipv4(end, "endip") if end else first
    for address, name in ((first, "startip"), (last, "endip")):
        if address not in net or address in (net.network_address, net.broadcast_address):
            raise errors.param_error(f"Invalid {name} {address}: not a host address of {net}, the subnet of gateway "
                                     f"{gw}")
    if int(first) > int(last):
        raise errors.param_error(f"Invalid endip {last}: it is before startip {first}")
    if first <= gw <= last:
        raise errors.param_error(f"Invalid gateway {gw}: the gateway is inside the range {first}-{last}")
    return IpRange(net, gw, first, last)


def addresses_overlap(a_start: str, a_end: str, b_start: str, b_end: str) -> bool:
    return int(ipaddress.IPv4Address(a_start)) <= int(ipaddress.IPv4Address(b_end)) and \
        int(ipaddress.IPv4Address(b_start)) <= int(ipaddress.IPv4Address(a_end))


def network_domain(value: str, name: str = "networkdomain") -> str:
    """A DNS domain name (labels of letters, digits and hyphens, at most 253 characters)."""
    text = value.strip().rstrip(".")
    labels = text.split(".")
    if not text or len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        raise errors.param_error(f"Invalid {name} {value[:64]!r}: a network domain is a DNS name "
                                 "(letters, digits, hyphens; labels of at most 63 characters)")
    return text.lower()
