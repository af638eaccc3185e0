"""dnsmasq's files for one router: its configuration (written when the router starts) and the two
files it re-reads on SIGHUP (the static leases and the names), so a new VM never restarts it.

Only validated values reach these renderers (:mod:`hvcloud.router.validation`): hostnames are single
RFC 1123 labels, MACs canonical, addresses inside the subnet, so no value can add a line or field.
A non-default NIC is tagged ``nodefault`` and gets neither a router nor a DNS server option, as
CloudStack's router does for a VM's secondary networks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hvcloud.router import validation
from hvcloud.router.api import DhcpEntry, RouterSpec

#: the lease time dnsmasq hands out; a guest renews at half of it
DEFAULT_LEASE = "1d"
NODEFAULT_TAG = "nodefault"
#: the name cloud-init's CloudStack datasource tries first for the metadata server
DATA_SERVER = "data-server"


@dataclass(frozen=True)
class DnsmasqPaths:
    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "dnsmasq.conf"

    @property
    def hosts(self) -> Path:
        return self.dir / "dhcp-hosts"

    @property
    def names(self) -> Path:
        return self.dir / "addn-hosts"

    @property
    def pid(self) -> Path:
        return self.dir / "dnsmasq.pid"

    @property
    def leases(self) -> Path:
        return self.dir / "dnsmasq.leases"

    @property
    def log(self) -> Path:
        return self.dir / "dnsmasq.log"


def render_conf(spec: RouterSpec, paths: DnsmasqPaths, interface: str = "eth0", lease: str = DEFAULT_LEASE) -> str:
    net = validation.network(spec)
    lines = [
        f"# hvcloud router {spec.name}: written by the agent, replaced on every start",
        f"interface={interface}",
        "except-interface=lo",
        "bind-interfaces",
        # the agent's state directory is private to root: dnsmasq re-reads its files on SIGHUP as root
        "user=root",
        f"pid-file={paths.pid}",
        f"log-facility={paths.log}",
        f"dhcp-leasefile={paths.leases}",
        f"dhcp-hostsfile={paths.hosts}",
        f"addn-hosts={paths.names}",
        f"dhcp-range={net.network_address},static,{net.netmask},{lease}",
        "dhcp-authoritative",
        f"dhcp-option=tag:!{NODEFAULT_TAG},option:router,{spec.address}",
        f"dhcp-option=tag:!{NODEFAULT_TAG},option:dns-server,{spec.address}",
        # an empty option is never sent: a VM's non-default NIC gets no gateway and no DNS server
        f"dhcp-option=tag:{NODEFAULT_TAG},option:router",
        f"dhcp-option=tag:{NODEFAULT_TAG},option:dns-server",
        f"domain={spec.domain}",
        f"local=/{spec.domain}/",
        "no-resolv",
        "no-hosts",
        "no-negcache",
    ]
    lines += [f"server={dns}" for dns in spec.dns]
    return "\n".join(lines) + "\n"


def render_hosts(entries: Iterable[DhcpEntry]) -> str:
    """``dhcp-hostsfile``: one ``dhcp-host`` per line (MAC, tag, address, name)."""
    out = []
    for e in entries:
        tag = "" if e.default else f"set:{NODEFAULT_TAG},"
        out.append(f"{e.mac},{tag}{e.ip},{e.hostname}\n")
    return "".join(out)


def render_names(spec: RouterSpec, entries: Iterable[DhcpEntry]) -> str:
    """``addn-hosts``: the VMs' names (fully qualified and short) and ``data-server``."""
    out = [f"{spec.address} {DATA_SERVER}.{spec.domain} {DATA_SERVER}\n"]
    out += [f"{e.ip} {e.hostname}.{spec.domain} {e.hostname}\n" for e in entries]
    return "".join(out)
