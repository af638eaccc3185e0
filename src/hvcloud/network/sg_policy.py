"""Checking a :class:`~hvcloud.network.security_groups.NicPolicy` before anything is enforced.

Every enforcer (nftables on Linux hosts, the simulator, Hyper-V port ACLs) calls
:func:`check_policy` first, so all refuse the same input with the same message, and a refused policy
changes nothing. The limits bound what one command can make a host build: a policy is one nftables
transaction (or one set of port ACLs), and a hostile or corrupt command must not turn into an
unbounded one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from hvcloud.host_errors import InvalidRequest
from hvcloud.network.security_groups import NicPolicy, SgRule

MAX_RULES = 1024
MAX_CIDRS = 16384
MAX_IPS = 64
MAX_SEQ = (1 << 63) - 1
PROTOCOLS = ("tcp", "udp", "icmp", "all")
_MAC = re.compile(r"^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(InvalidRequest):
    """The policy cannot be enforced as given; the message names the offending field."""


def check_mac(mac: str) -> str:
    """A unicast MAC in lower-case colon form (the form the agent's translation produces)."""
    if not isinstance(mac, str) or not _MAC.match(mac):
        raise PolicyError(f"mac: {str(mac)[:40]!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    if int(mac[:2], 16) & 1:
        raise PolicyError(f"mac: {mac} is a multicast address")
    return mac


def check_ips(ips: Iterable[str]) -> tuple[str, ...]:
    """The NIC's own IPv4 addresses: unicast, at most :data:`MAX_IPS`, without duplicates."""
    out: list[str] = []
    for i, ip in enumerate(ips):
        if i >= MAX_IPS:
            raise PolicyError(f"ips: more than {MAX_IPS} addresses")
        try:
            addr = ipaddress.IPv4Address(ip)
        except (ipaddress.AddressValueError, ValueError, TypeError):
            raise PolicyError(f"ips[{i}]: {str(ip)[:60]!r} is not an IPv4 address") from None
        if addr.is_unspecified or addr.is_multicast or addr == ipaddress.IPv4Address("255.255.255.255"):
            raise PolicyError(f"ips[{i}]: {addr} cannot be a NIC's address")
        if str(addr) not in out:
            out.append(str(addr))
    return tuple(out)


def parse_cidr(text: str, where: str) -> IpNetwork:
    """``10.1.0.0/16``, ``10.1.2.3`` (a /32) or an IPv6 network; host bits are cleared as
    CloudStack's KVM agent lets iptables do."""
    if not isinstance(text, str) or not text or len(text) > 64:
        raise PolicyError(f"{where}: {str(text)[:64]!r} is not a CIDR")
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except (ValueError, TypeError):
        raise PolicyError(f"{where}: {text[:64]!r} is not a CIDR") from None


def _check_rule(rule: SgRule, where: str) -> None:
    if rule.protocol not in PROTOCOLS:
        raise PolicyError(f"{where}.protocol: {str(rule.protocol)[:20]!r} is not one of {', '.join(PROTOCOLS)}")
    if not rule.cidrs:
        raise PolicyError(f"{where}.cidrs: a rule needs at least one CIDR")
    for j, cidr in enumerate(rule.cidrs):
        parse_cidr(cidr, f"{where}.cidrs[{j}]")
    if rule.protocol in ("tcp", "udp"):
        if rule.icmp_type is not None or rule.icmp_code is not None:
            raise PolicyError(f"{where}: icmp type/code on a {rule.protocol} rule")
        if rule.ports is not None:
            start, end = rule.ports
            if not (isinstance(start, int) and isinstance(end, int)) or not 0 <= start <= end <= 65535:
                raise PolicyError(f"{where}.ports: {rule.ports!r} is not a range within 0-65535 (start <= end)")
        return
    if rule.ports is not None:
        raise PolicyError(f"{where}.ports: a {rule.protocol} rule has no ports")
    if rule.protocol == "all":
        if rule.icmp_type is not None or rule.icmp_code is not None:
            raise PolicyError(f"{where}: icmp type/code on an 'all' rule")
        return
    for field, value in (("icmp_type", rule.icmp_type), ("icmp_code", rule.icmp_code)):
        if value is not None and not (isinstance(value, int) and 0 <= value <= 255):
            raise PolicyError(f"{where}.{field}: {value!r} is not within 0-255")
    if rule.icmp_code is not None and rule.icmp_type is None:
        raise PolicyError(f"{where}.icmp_code: a code needs a type")


def check_policy(policy: NicPolicy) -> NicPolicy:
    """The policy as given if it can be enforced, else :class:`PolicyError` naming the field."""
    check_mac(policy.mac)
    check_ips(policy.ips)
    if not isinstance(policy.seq, int) or not 0 <= policy.seq <= MAX_SEQ:
        raise PolicyError(f"seq: {policy.seq!r} is not a sequence number")
    total = 0
    for name, rules in (("ingress", policy.ingress), ("egress", policy.egress)):
        if len(rules) > MAX_RULES:
            raise PolicyError(f"{name}: more than {MAX_RULES} rules")
        for i, rule in enumerate(rules):
            _check_rule(rule, f"{name}[{i}]")
            total += len(rule.cidrs)
    if total > MAX_CIDRS:
        raise PolicyError(f"cidrs: {total} CIDRs in one policy, more than {MAX_CIDRS}")
    return policy


def split_cidrs(cidrs: Iterable[str]) -> tuple[list[str], list[str]]:
    """A rule's CIDRs as (IPv4, IPv6) lists, overlaps merged (nftables interval sets refuse
    overlapping elements)."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for cidr in cidrs:
        net = parse_cidr(cidr, "cidr")
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    return ([str(n) for n in ipaddress.collapse_addresses(v4)],
            [str(n) for n in ipaddress.collapse_addresses(v6)])
