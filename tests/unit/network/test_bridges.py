import json
from collections.abc import Sequence

import pytest

from hvcloud.network.bridges import Bridges, NetworkError, vlan_bridge_name, vlan_device_name
from hvcloud.network.host_nics import parse_addr_json, parse_net_dev


class RecordingIp:
    """Plays the kernel for ``ip``: keeps a set of links and records every argument list.
    Used because this machine's kernel has no 8021q module, so VLAN devices cannot be made."""

    def __init__(self, links: set[str]) -> None:
        self.links = set(links)
        self.calls: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        args = list(args)
        self.calls.append(args)
        if args[:3] == ["-j", "-d", "link"]:
            name = args[-1]
            if name not in self.links:
                raise NetworkError(f'Device "{name}" does not exist.')
            return json.dumps([{"ifname": name}])
        if args[:2] == ["link", "add"]:
            self.links.add(args[args.index("name") + 1])
        return ""


def test_vlan_names_fit_the_kernel_limit() -> None:
    assert vlan_bridge_name("cloudbr0", 261) == "cloudbr0-261"
    assert vlan_device_name("cloudbr0", 261) == "cloudbr0.261"
    long = vlan_bridge_name("verylongbridge1", 4094)
    assert len(long) <= 15 and long.endswith("-4094")
    with pytest.raises(NetworkError):
        vlan_bridge_name("br0", 0)
    with pytest.raises(NetworkError):
        vlan_bridge_name("br0 ; reboot", 5)


def test_vlan_bridge_is_made_once_with_argument_lists() -> None:
    ip = RecordingIp({"cloudbr0"})
    b = Bridges(ip)
    assert b.ensure_vlan_bridge("cloudbr0", 261) == "cloudbr0-261"
    adds = [c for c in ip.calls if c[:2] == ["link", "add"]]
    assert adds == [["link", "add", "link", "cloudbr0", "name", "cloudbr0.261", "type", "vlan", "id", "261"],
                    ["link", "add", "name", "cloudbr0-261", "type", "bridge"]]
    assert ["link", "set", "dev", "cloudbr0.261", "master", "cloudbr0-261"] in ip.calls
    ip.calls.clear()
    b.ensure_vlan_bridge("cloudbr0", 261)
    assert not [c for c in ip.calls if c[:2] == ["link", "add"]]


def test_vlan_on_missing_trunk_is_refused() -> None:
    with pytest.raises(NetworkError, match="does not exist"):
        Bridges(RecordingIp(set())).ensure_vlan_bridge("nope0", 5)


def test_host_nics_from_ip_json() -> None:
    text = json.dumps([
        {"ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00",
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"ifname": "eth0", "link_type": "ether", "address": "02:fc:00:00:00:01",
         "addr_info": [{"family": "inet6", "local": "fe80::1", "prefixlen": 64},
                       {"family": "inet", "local": "10.1.2.3", "prefixlen": 22}]},
        {"ifname": "dummy0", "link_type": "ether", "address": "aa:bb:cc:dd:ee:ff", "addr_info": []},
    ])
    nics = parse_addr_json(text)
    assert [(n.name, n.ip, n.netmask, n.mac) for n in nics] == [
        ("eth0", "10.1.2.3", "255.255.252.0", "02:fc:00:00:00:01")]


def test_net_dev_totals_skip_loopback() -> None:
    text = ("Inter-|   Receive  |  Transmit\n face |bytes packets|bytes\n"
            "    lo: 500 1 0 0 0 0 0 0 500 1 0 0 0 0 0 0\n"
            "  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
            "  br0: 7 1 0 0 0 0 0 0 9 1 0 0 0 0 0 0\n"
            "garbage\n")
    assert parse_net_dev(text) == (1007, 2009)
