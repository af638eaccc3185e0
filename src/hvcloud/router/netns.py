"""A router's port: a network namespace and a veth pair into the segment's bridge.

The namespace ``hvr-<router>`` holds ``lo`` and ``eth0`` (the router's MAC and address); the veth's
host end (``vr`` + a hash of the router name, within the kernel's 15 characters) joins the bridge.
Every step checks what is there first, so bringing a port up again after an agent restart leaves a
working port untouched.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hvcloud import logs
from hvcloud.network.bridges import NetworkError, Runner, run_ip
from hvcloud.router.api import RouterError, RouterSpec

NETNS_DIR = Path("/run/netns")
PORT = "eth0"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")

log = logs.get(__name__)


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def namespace_name(router: str) -> str:
    """``hvr-<router>``; a name with other characters than ``[A-Za-z0-9_.-]`` or longer than 40 is
    cut and made unique with a hash."""
    clean = _UNSAFE.sub("-", router)
    if clean != router or len(clean) > 40:
        clean = f"{clean[:31]}-{_digest(router)[:8]}"
    return f"hvr-{clean}"


def veth_name(router: str) -> str:
    return f"vr{_digest(router)[:12]}"


class _Veths:
    """What both of a router's ports are made of: a veth whose ``port`` end sits in the router's
    namespace with ``mac`` and whose host end joins ``bridge``; each step checks what is there first."""

    def __init__(self, runner: Runner = run_ip) -> None:
        self._run = runner

    def _ip(self, *args: str) -> str:
        try:
            return self._run(list(args))
        except NetworkError as exc:
            raise RouterError(str(exc)) from exc

    def _link(self, name: str, ns: str | None = None) -> dict[str, Any] | None:
        prefix = ["-n", ns] if ns else []
        try:
            out = self._run([*prefix, "-j", "link", "show", "dev", name])
        except NetworkError:
            return None
        data = json.loads(out or "[]")
        return data[0] if data else None

    def _veth_into(self, ns: str, veth: str, port: str, bridge: str, mac: str) -> None:
        host = self._link(veth)
        if host is None or self._link(port, ns) is None:
            if host is not None:
                self._ip("link", "del", "dev", veth)
            if self._link(port, ns) is not None:
                self._ip("-n", ns, "link", "del", "dev", port)
            self._ip("link", "add", veth, "type", "veth", "peer", "name", port, "netns", ns)
            host = self._link(veth)
        if host is None or host.get("master") != bridge:
            self._ip("link", "set", "dev", veth, "master", bridge)
        self._ip("link", "set", "dev", veth, "up")
        found = self._link(port, ns) or {}
        if str(found.get("address", "")).lower() != mac:
            self._ip("-n", ns, "link", "set", "dev", port, "down")
            self._ip("-n", ns, "link", "set", "dev", port, "address", mac)

    def _addresses(self, ns: str, port: str) -> list[ipaddress.IPv4Interface]:
        out = self._ip("-n", ns, "-j", "-4", "addr", "show", "dev", port)
        found = []
        for link in json.loads(out or "[]"):
            for info in link.get("addr_info", []):
                if info.get("family") == "inet":
                    found.append(ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}"))
        return found


class Plumbing(_Veths):
    """The router's namespace and its guest port ``eth0`` (the network's gateway address)."""

    def namespace_exists(self, ns: str) -> bool:
        return (NETNS_DIR / ns).exists()

    def ensure(self, spec: RouterSpec, bridge: str) -> None:
        ns, veth = namespace_name(spec.name), veth_name(spec.name)
        if not self.namespace_exists(ns):
            self._ip("netns", "add", ns)
        self._ip("-n", ns, "link", "set", "dev", "lo", "up")
        self._veth_into(ns, veth, PORT, bridge, spec.mac)
        want = ipaddress.IPv4Interface(f"{spec.address}/{spec.prefix}")
        have = self.addresses(ns)
        for addr in have:
            if addr != want:
                self._ip("-n", ns, "addr", "del", str(addr), "dev", PORT)
        if want not in have:
            self._ip("-n", ns, "addr", "add", str(want), "dev", PORT)
        self._ip("-n", ns, "link", "set", "dev", PORT, "up")

    def addresses(self, ns: str) -> list[ipaddress.IPv4Interface]:
        return self._addresses(ns, PORT)

    def remove(self, router: str) -> None:
        ns, veth = namespace_name(router), veth_name(router)
        if self._link(veth) is not None:
            self._ip("link", "del", "dev", veth)
        if self.namespace_exists(ns):
            self._ip("netns", "del", ns)

    def port_up(self, router: str) -> bool:
        """The namespace, the veth and the address are there."""
        ns = namespace_name(router)
        return self.namespace_exists(ns) and self._link(veth_name(router)) is not None \
            and self._link(PORT, ns) is not None


PUBLIC_PORT = "eth1"


def public_veth_name(router: str) -> str:
    return f"vp{_digest(router)[:12]}"


class PublicPlumbing(_Veths):
    """The router's public interface ``eth1``: a veth into the Public traffic label's bridge,
    carrying every public address the router holds and its default route. Built only when the
    router holds an address."""

    def ensure(self, router: str, bridge: str, mac: str, addresses: list[ipaddress.IPv4Interface],
               gateway: str) -> None:
        ns = namespace_name(router)
        self._veth_into(ns, public_veth_name(router), PUBLIC_PORT, bridge, mac)
        self._ip("-n", ns, "link", "set", "dev", PUBLIC_PORT, "up")
        self.set_addresses(router, addresses, gateway)
        _sysctl(ns, "net.ipv4.ip_forward", "1")

    def set_addresses(self, router: str, addresses: list[ipaddress.IPv4Interface], gateway: str) -> None:
        """Exactly ``addresses`` on eth1 and the default route via ``gateway``."""
        ns = namespace_name(router)
        have = self.addresses(ns)
        for addr in have:
            if addr not in addresses:
                self._ip("-n", ns, "addr", "del", str(addr), "dev", PUBLIC_PORT)
        added = [addr for addr in addresses if addr not in have]
        for addr in added:
            self._ip("-n", ns, "addr", "add", str(addr), "dev", PUBLIC_PORT)
        self._ip("-n", ns, "route", "replace", "default", "via", gateway, "dev", PUBLIC_PORT)
        for addr in added:
            announce(ns, PUBLIC_PORT, str(addr.ip))

    def addresses(self, ns: str) -> list[ipaddress.IPv4Interface]:
        return self._addresses(ns, PUBLIC_PORT)

    def remove(self, router: str) -> None:
        veth = public_veth_name(router)
        if self._link(veth) is not None:
            self._ip("link", "del", "dev", veth)


def announce(ns: str, port: str, ip: str) -> None:
    """A gratuitous ARP for ``ip`` from ``port`` (as CloudStack's router sends when it takes an
    address): neighbours that cached another MAC for it (the router this one replaced, after a
    ``restartNetwork cleanup=true``) switch at once instead of after their cache times out. Best
    effort: without arping the neighbours learn it on their next ARP."""
    arping = shutil.which("arping")
    args = [arping, "-U", "-c", "1", "-I", port, "-s", ip, ip] if arping else None
    busybox = shutil.which("busybox")
    if args is None and busybox is not None:
        args = [busybox, "arping", "-U", "-c", "1", "-I", port, "-s", ip, ip]
    if args is None:
        log.info("router_garp_skipped", reason="no arping", ip=ip)
        return
    proc = subprocess.run(["ip", "netns", "exec", ns, *args], capture_output=True, text=True,  # noqa: S603
                          timeout=10, check=False)
    if proc.returncode != 0:
        log.info("router_garp_failed", ip=ip, detail=(proc.stderr or proc.stdout)[-300:])


def _sysctl(ns: str, key: str, value: str) -> None:
    """Write a sysctl inside the namespace (the namespace's own ``/proc/sys/net``)."""
    proc = subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}"],  # noqa: S603
                          capture_output=True, text=True, timeout=30, check=False)
    if proc.returncode != 0:
        raise RouterError(f"sysctl {key} in {ns}: {proc.stderr.strip()[-300:]}")
