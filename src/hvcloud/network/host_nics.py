"""The host's network interfaces and their byte counters, from ``ip -j addr`` and /proc."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

from hvcloud.hosttypes import HostNic
from hvcloud.network.bridges import NetworkError, Runner, run_ip


def parse_addr_json(text: str) -> list[HostNic]:
    """Host NICs with an IPv4 address (first one per device), loopback left out."""
    nics: list[HostNic] = []
    for dev in json.loads(text or "[]"):
        if dev.get("link_type") == "loopback":
            continue
        for addr in dev.get("addr_info", []):
            if addr.get("family") != "inet":
                continue
            net = ipaddress.IPv4Network(f"0.0.0.0/{int(addr['prefixlen'])}")
            nics.append(HostNic(name=str(dev["ifname"]), ip=str(addr["local"]),
                                netmask=str(net.netmask), mac=str(dev.get("address", ""))))
            break
    return nics


def host_nics(runner: Runner = run_ip) -> list[HostNic]:
    try:
        return parse_addr_json(runner(["-j", "addr", "show"]))
    except (NetworkError, ValueError, KeyError):
        return []


def parse_net_dev(text: str, skip: Sequence[str] = ("lo",)) -> tuple[int, int]:
    """Total received and sent bytes over all devices in /proc/net/dev, ``skip`` left out."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() in skip or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def net_bytes(proc: Path = Path("/proc/net/dev")) -> tuple[int, int]:
    try:
        return parse_net_dev(proc.read_text())
    except OSError:
        return 0, 0
