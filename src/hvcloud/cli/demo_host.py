"""Which host ``hvcloud demo`` runs: the libvirt driver where libvirtd works, the simulator otherwise.

``auto`` probes, in order, everything a libvirt demo needs before any process starts: libvirtd
answering with a QEMU driver that runs ``qemu`` (TCG) guests, a bridge for the guest NICs (``virbr0``
when libvirt's default network has one, else an isolated ``hvdemo0`` made here), and the tiny
bootable test guest (built from Debian packages once, then cached). The first thing missing makes
the demo fall back to the simulator, and the reason is printed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DriverChoice = Literal["auto", "simulator", "libvirt"]
LIBVIRT_DEFAULT_BRIDGE = "virbr0"
DEMO_BRIDGE = "hvdemo0"
SIMULATOR_LABEL = "guest"


class DemoHostError(Exception):
    """The libvirt demo cannot run here; the message says why."""


@dataclass(frozen=True)
class DemoHost:
    driver: Literal["simulator", "libvirt"]
    #: the bridge guest NICs join (libvirt) or the zone's network label (simulator)
    bridge: str
    #: the template image to register
    template: Path
    #: why the simulator was chosen under ``auto`` (None when nothing was probed or libvirt works)
    fallback_reason: str | None = None
    #: True when the demo made the bridge and removes it when it stops
    made_bridge: bool = False


def choose(requested: DriverChoice, *, uri: str, bridge: str | None, images: Path) -> DemoHost:
    """The host to run; raises DemoHostError only when ``libvirt`` was asked for and cannot run."""
    if requested == "simulator":
        return simulator_host(images)
    try:
        return libvirt_host(uri, bridge, images)
    except DemoHostError as exc:
        if requested == "libvirt":
            raise
        return simulator_host(images, str(exc))


def simulator_host(images: Path, reason: str | None = None) -> DemoHost:
    from hvcloud.storage import qemu_img

    target = images / "demo-template-simulator.qcow2"
    if not target.exists():
        qemu_img.create(str(target), "qcow2", 64 * 1024 * 1024)
    return DemoHost("simulator", SIMULATOR_LABEL, target, fallback_reason=reason)


def libvirt_host(uri: str, bridge: str | None, images: Path) -> DemoHost:
    from hvcloud.hypervisor.libvirt.config import unusable_reason

    reason = unusable_reason(uri, "qemu")
    if reason is not None:
        raise DemoHostError(reason)
    template = _guest_template(images)
    name, made = _bridge(bridge)
    return DemoHost("libvirt", name, template, made_bridge=made)


def _guest_template(images: Path) -> Path:
    from hvcloud.storage import guest_image

    target = images / "demo-template-libvirt.qcow2"
    if target.exists():
        return target
    try:
        built = guest_image.build()
    except guest_image.GuestBuildError as exc:
        raise DemoHostError(f"cannot build the test guest: {exc}") from None
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(built.qcow2.read_bytes())
    tmp.replace(target)
    return target


def _bridge(requested: str | None) -> tuple[str, bool]:
    from hvcloud.network.bridges import Bridges, NetworkError

    bridges = Bridges()
    if requested:
        if not bridges.exists(requested):
            raise DemoHostError(f"bridge {requested} does not exist")
        return requested, False
    if bridges.exists(LIBVIRT_DEFAULT_BRIDGE):
        return LIBVIRT_DEFAULT_BRIDGE, False
    if bridges.exists(DEMO_BRIDGE):
        return DEMO_BRIDGE, False
    try:
        bridges.ensure_bridge(DEMO_BRIDGE)
    except NetworkError as exc:
        raise DemoHostError(f"there is no {LIBVIRT_DEFAULT_BRIDGE} bridge and {DEMO_BRIDGE} cannot be made: "
                            f"{exc}") from None
    return DEMO_BRIDGE, True


def remove_bridge(host: DemoHost, vnis: range = range(0)) -> None:
    """Remove the bridge the demo made and the segment bridges (``brvx-<vni>``) of its networks that
    nothing uses any more (its VMs and routers are stopped by then)."""
    if host.driver != "libvirt":
        return
    from hvcloud.network.bridges import Bridges, NetworkError, vxlan_bridge_name

    bridges = Bridges()
    for vni in vnis:
        with contextlib.suppress(NetworkError):
            name = vxlan_bridge_name(vni)
            if bridges.exists(name) and not [p for p in bridges.ports(name) if not p.startswith("vxlan")]:
                bridges.remove_vxlan_bridge(vni)
    if host.made_bridge:
        with contextlib.suppress(NetworkError):
            bridges.delete(host.bridge)
