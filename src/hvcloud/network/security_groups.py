"""What a host enforces for a VM NIC on a security-group network (the contract between the agent
and the drivers; the enforcement is each driver's).

A NIC with security groups gets, from the moment it is plugged: **anti-spoofing** (frames from the
VM must carry its MAC, IPv4 packets its addresses, ARP its addresses; DHCP requests pass) and
**default deny** of new inbound connections. Its :class:`NicPolicy` then says what is allowed:
``ingress`` rules admit new connections *to* the VM (from the rule's CIDRs, on its protocol and
ports), ``egress`` rules admit new connections *from* the VM; an empty ``egress`` allows every
outbound connection (CloudStack's default). Replies to admitted connections always pass (conntrack).
A policy replaces the NIC's previous one whole; ``seq`` orders them: a policy older than the one in
force is ignored, so retries and reordering cannot roll rules back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SgProtocol = Literal["tcp", "udp", "icmp", "all"]


@dataclass(frozen=True)
class SgRule:
    """``ports``: an inclusive range for tcp/udp (None: all); for icmp, ``icmp_type``/``icmp_code``
    (None: any). ``cidrs``: the remote side (sources for ingress, destinations for egress)."""

    protocol: SgProtocol
    cidrs: tuple[str, ...]
    ports: tuple[int, int] | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class NicPolicy:
    """The whole rule set of one VM NIC (found by ``mac``); ``ips``: the addresses it may use."""

    mac: str
    ips: tuple[str, ...]
    ingress: tuple[SgRule, ...]
    egress: tuple[SgRule, ...]
    seq: int = 0
