"""Security groups on Hyper-V: extended port ACLs (``Msvm_EthernetSwitchPortExtendedAclSettingData``)
on the VM NIC's switch-port allocation, added with ``AddFeatureSettings`` as os-win's
networkutils does for Neutron's security groups.

What a :class:`~hvcloud.network.security_groups.NicPolicy` becomes:

* two **base** ACLs (name ``hvsg:base``, weight 1): deny everything incoming, deny everything
  outgoing. Higher weights win, so every other ACL is an exception to them.
* the **generation** of the policy (name ``hvsg:<seq>``): DHCP requests out and replies in; each
  ingress rule as one Allow-incoming ACL per CIDR (protocol, local port range); egress as
  Allow-outgoing ACLs per own address and CIDR, *with the NIC's address as LocalIPAddress*, which is
  the anti-spoofing of IP sources (MAC spoofing is off on a port unless ``AllowMacSpoofing`` is set,
  which hvcloud never sets). An empty egress allows TCP, UDP and ICMP from the NIC's addresses.
  TCP and UDP allows are **stateful**, so replies pass both ways, as conntrack does on Linux.

What port ACLs cannot express (said in docs/networking.md): ARP is not filtered (a guest can claim
another address in ARP, though its IP packets from that address are dropped); ICMP type and code
cannot be matched, so an ICMP rule admits all ICMP; ICMP is not stateful, so replies to a guest's
pings need an ingress ICMP rule; ``all`` is expanded to stateful TCP and UDP plus ICMP; IPv6 CIDRs
are left out (guests on security-group networks get no IPv6, as on Linux hosts).

A change adds the new generation in the other half of the weight range, then removes the old one:
two WMI calls, between which both generations' allows apply (never fewer than the base denies).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hvcloud.hypervisor.driver import NotSupported
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.network.sg_policy import split_cidrs

ACL_CLASS = "Msvm_EthernetSwitchPortExtendedAclSettingData"
IN, OUT = 1, 2
ALLOW, DENY = 1, 2
BASE_NAME = "hvsg:base"
BASE_WEIGHT = 1
#: weights of generation band 0 are 2..BAND, of band 1 BAND+1..2*BAND-1 (uint16 weights)
BAND = 32768
_NAME = re.compile(r"^hvsg:(-?\d{1,19})$")
_PROTO = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMPv4"}


@dataclass(frozen=True)
class Acl:
    direction: int
    action: int
    protocol: str = "ANY"
    local_ip: str = "ANY"
    remote_ip: str = "ANY"
    local_port: str = "ANY"
    remote_port: str = "ANY"
    stateful: bool = False

    def props(self, name: str, weight: int) -> dict[str, Any]:
        return {"Name": name, "Direction": self.direction, "Action": self.action, "Protocol": self.protocol,
                "LocalIPAddress": self.local_ip, "RemoteIPAddress": self.remote_ip, "LocalPort": self.local_port,
                "RemotePort": self.remote_port, "Weight": weight, "Stateful": self.stateful}


def base_acls() -> list[dict[str, Any]]:
    return [Acl(IN, DENY).props(BASE_NAME, BASE_WEIGHT), Acl(OUT, DENY).props(BASE_NAME, BASE_WEIGHT)]


def _ports(rule: SgRule) -> str:
    if rule.ports is None:
        return "ANY"
    start, end = rule.ports
    return str(start) if start == end else f"{start}-{end}"


def _expand(rule: SgRule) -> list[tuple[str, str, bool]]:
    """(protocol, port range, stateful) triples for one rule."""
    if rule.protocol in ("tcp", "udp"):
        return [(_PROTO[rule.protocol], _ports(rule), True)]
    if rule.protocol == "icmp":
        return [("ICMPv4", "ANY", False)]
    return [("TCP", "ANY", True), ("UDP", "ANY", True), ("ICMPv4", "ANY", False)]


def plan(policy: NicPolicy) -> list[Acl]:
    """The generation's ACLs, in the order their weights are given."""
    out = [Acl(OUT, ALLOW, "UDP", local_port="68", remote_port="67"),
           Acl(IN, ALLOW, "UDP", local_port="68", remote_port="67")]
    for rule in policy.ingress:
        v4, _v6 = split_cidrs(rule.cidrs)
        for cidr in v4:
            for proto, ports, stateful in _expand(rule):
                out.append(Acl(IN, ALLOW, proto, remote_ip=_addr(cidr), local_port=ports, stateful=stateful))
    egress = policy.egress or (SgRule("all", ("0.0.0.0/0",)),)
    for ip in policy.ips:
        for rule in egress:
            v4, _v6 = split_cidrs(rule.cidrs)
            for cidr in v4:
                for proto, ports, stateful in _expand(rule):
                    out.append(Acl(OUT, ALLOW, proto, local_ip=ip, remote_ip=_addr(cidr), remote_port=ports,
                                   stateful=stateful))
    return out


def _addr(cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    if net.prefixlen == 0:
        return "ANY"
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def seq_of(name: object) -> int | None:
    m = _NAME.match(str(name or ""))
    return int(m.group(1)) if m else None


def weighted(acls: Sequence[Acl], band: int, name: str) -> list[dict[str, Any]]:
    """Give each ACL its weight in ``band``; weights are unique per direction."""
    start = 2 if band == 0 else BAND
    next_weight = {IN: start, OUT: start}
    limit = BAND - 1 if band == 0 else 2 * BAND - 1
    out = []
    for acl in acls:
        w = next_weight[acl.direction]
        if w > limit:
            raise NotSupported(f"the policy needs more than {BAND - 2} port ACLs in one direction; "
                               "Hyper-V port ACL weights are 16-bit")
        next_weight[acl.direction] = w + 1
        out.append(acl.props(name, w))
    return out


def band_of(existing: Sequence[Mapping[str, Any]]) -> int | None:
    """The band the current generation uses, or None when there is none."""
    for props in existing:
        if seq_of(props.get("Name")) is not None:
            return 1 if int(props.get("Weight") or 0) >= BAND else 0
    return None
