"""Linux bridges and VLANs for the libvirt driver, driven through ``ip`` argument lists.

A VLAN-tagged NIC is plugged into a per-VLAN bridge, the way CloudStack's KVM agent does it: for
trunk bridge ``br0`` and VLAN 261 the helper makes a VLAN sub-interface ``br0.261`` (tagging frames
that leave through ``br0``) enslaved to a bridge ``br0-261``; the VM's tap joins that bridge untagged.
Names are cut to the kernel's 15-character limit deterministically.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

IFNAMSIZ = 15
_NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")

#: runs an ``ip`` argument list and returns stdout; replaceable for hosts without some kernel feature
Runner = Callable[[Sequence[str]], str]


class NetworkError(Exception):
    """A bridge or VLAN could not be set up; the message carries ``ip``'s complaint."""


def run_ip(args: Sequence[str]) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def validate_ifname(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or name in (".", ".."):
        raise NetworkError(f"invalid interface name {name!r}")
    return name


def validate_vlan(vlan: int) -> int:
    if not 1 <= vlan <= 4094:
        raise NetworkError(f"VLAN id {vlan} is outside 1..4094")
    return vlan


def validate_vni(vni: int) -> int:
    if not 1 <= vni <= 16777215:
        raise NetworkError(f"VXLAN VNI {vni} is outside 1..16777215")
    return vni


def vxlan_device_name(vni: int) -> str:
    return f"vxlan{validate_vni(vni)}"


def vxlan_bridge_name(vni: int) -> str:
    """``brvx-<vni>``, as CloudStack's KVM agent names a VXLAN segment's bridge."""
    return f"brvx-{validate_vni(vni)}"


def vxlan_group(vni: int) -> str:
    """The multicast group a VNI floods to (239.x.y.z from the VNI's three bytes), as CloudStack's
    ``modifyvxlan.sh`` derives it, so hosts agree without coordination."""
    v = validate_vni(vni)
    return f"239.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}"


def segment_bridge_name(trunk: str | None, vlan: int | None = None, vxlan: int | None = None) -> str:
    """The bridge a NIC (or a router port) on this segment joins: the trunk itself when untagged,
    ``<trunk>-<vlan>`` for a VLAN, ``brvx-<vni>`` for a VXLAN."""
    if vlan is not None and vxlan is not None:
        raise NetworkError("a segment has a VLAN or a VXLAN VNI, not both")
    if vxlan is not None:
        return vxlan_bridge_name(vxlan)
    if trunk is None:
        raise NetworkError("the segment names no trunk bridge")
    return vlan_bridge_name(trunk, vlan) if vlan is not None else validate_ifname(trunk)


def vlan_device_name(trunk: str, vlan: int) -> str:
    suffix = f".{validate_vlan(vlan)}"
    return validate_ifname(trunk)[: IFNAMSIZ - len(suffix)] + suffix


def vlan_bridge_name(trunk: str, vlan: int) -> str:
    suffix = f"-{validate_vlan(vlan)}"
    return validate_ifname(trunk)[: IFNAMSIZ - len(suffix)] + suffix


class Bridges:
    """Idempotent bridge and VLAN operations. Every method is safe to call again."""

    def __init__(self, runner: Runner = run_ip) -> None:
        self._run = runner

    def link(self, name: str) -> dict[str, Any] | None:
        """``ip -j link show`` for one device, or None when it does not exist."""
        try:
            out = self._run(["-j", "-d", "link", "show", "dev", validate_ifname(name)])
        except NetworkError:
            return None
        data = json.loads(out or "[]")
        return data[0] if data else None

    def exists(self, name: str) -> bool:
        return self.link(name) is not None

    def is_bridge(self, name: str) -> bool:
        info = self.link(name)
        return bool(info and info.get("linkinfo", {}).get("info_kind") == "bridge")

    def ensure_bridge(self, name: str) -> None:
        if not self.exists(name):
            self._run(["link", "add", "name", validate_ifname(name), "type", "bridge"])
        self._run(["link", "set", "dev", name, "up"])

    def ensure_vlan_bridge(self, trunk: str, vlan: int) -> str:
        """The bridge that carries ``vlan`` over ``trunk``, created if missing; returns its name."""
        if not self.exists(trunk):
            raise NetworkError(f"trunk device {trunk} does not exist")
        vdev = vlan_device_name(trunk, vlan)
        vbr = vlan_bridge_name(trunk, vlan)
        if not self.exists(vdev):
            self._run(["link", "add", "link", trunk, "name", vdev, "type", "vlan", "id", str(vlan)])
        self.ensure_bridge(vbr)
        self._run(["link", "set", "dev", vdev, "master", vbr])
        self._run(["link", "set", "dev", vdev, "up"])
        return vbr

    def ensure_vxlan_bridge(self, trunk: str, vni: int) -> str:
        """The bridge that carries VXLAN ``vni`` over ``trunk`` (the device its UDP packets leave
        through), created if missing; returns its name."""
        if not self.exists(trunk):
            raise NetworkError(f"trunk device {trunk} does not exist")
        vdev = vxlan_device_name(vni)
        vbr = vxlan_bridge_name(vni)
        if not self.exists(vdev):
            self._run(["link", "add", vdev, "type", "vxlan", "id", str(vni), "group", vxlan_group(vni),
                       "dev", validate_ifname(trunk), "dstport", "4789"])
        self.ensure_bridge(vbr)
        self._run(["link", "set", "dev", vdev, "master", vbr])
        self._run(["link", "set", "dev", vdev, "up"])
        return vbr

    def ensure_segment(self, trunk: str | None, vlan: int | None = None, vxlan: int | None = None) -> str:
        """The segment's bridge (see :func:`segment_bridge_name`), created if missing."""
        name = segment_bridge_name(trunk, vlan, vxlan)
        if trunk is None:
            raise NetworkError("the segment names no trunk bridge")
        if vxlan is not None:
            return self.ensure_vxlan_bridge(trunk, vxlan)
        if vlan is not None:
            return self.ensure_vlan_bridge(trunk, vlan)
        if not self.exists(name):
            raise NetworkError(f"bridge {name} does not exist on this host")
        return name

    def remove_vxlan_bridge(self, vni: int) -> None:
        self.delete(vxlan_device_name(vni))
        self.delete(vxlan_bridge_name(vni))

    def delete(self, name: str) -> None:
        if self.exists(name):
            self._run(["link", "del", "dev", validate_ifname(name)])

    def remove_vlan_bridge(self, trunk: str, vlan: int) -> None:
        self.delete(vlan_device_name(trunk, vlan))
        self.delete(vlan_bridge_name(trunk, vlan))

    def ports(self, bridge: str) -> list[str]:
        out = self._run(["-j", "link", "show", "master", validate_ifname(bridge)])
        return [str(item["ifname"]) for item in json.loads(out or "[]")]
