"""Libvirt domain XML built from a VmSpec, and the few facts read back from a domain's XML.

Layout choices (kept stable because live device operations address devices by these targets):

* disks are virtio (``vda``, ``vdb`` … by slot), optical drives IDE (``hda`` … ``hdd`` by slot, so
  at most slots 0-3); a VM without an optical drive gets an empty one at slot 3 so an ISO can be
  inserted later while it runs (IDE drives cannot be hot-plugged);
* NICs are bridged taps, ``virtio`` for ``synthetic`` and ``e1000`` for ``emulated``, in device order;
* the serial port is logged to ``<console_log_dir>/<name>.log`` and exposed as the console;
* a virtio-serial channel for qemu-guest-agent, VNC on the configured address with the VM's password;
* the VmSpec lives in ``<metadata>`` under :data:`METADATA_NS` (see ``spec_codec``).
"""

from __future__ import annotations

import re
import string
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from hvcloud.hypervisor.driver import DiskSpec, DriverError, NicSpec, VmSpec
from hvcloud.hypervisor.libvirt.spec_codec import spec_to_json
from hvcloud.network.bridges import NetworkError, segment_bridge_name, validate_ifname

METADATA_NS = "https://hvcloud.dev/xmlns/libvirt/vm/1"
METADATA_PREFIX = "hvcloud"
DEFAULT_CDROM_SLOT = 3
MAX_DISK_SLOT = 25

_VM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_LIBVIRT_FORMAT = {"qcow2": "qcow2", "raw": "raw", "vhd": "vpc", "iso": "raw"}


#: a VXLAN NIC's MTU: 1500 on the trunk less the 50 bytes of VXLAN over IPv4 (as CloudStack's KVM
#: agent leaves it); libvirt sets it on the tap and offers it to virtio guests (``host_mtu``)
VXLAN_NIC_MTU = 1450


class InvalidSpec(DriverError):
    """The VmSpec cannot be expressed as a libvirt domain."""


@dataclass(frozen=True)
class XmlSettings:
    domain_type: str = "qemu"
    vnc_listen: str = "127.0.0.1"
    console_log_dir: str = "/var/log/hvcloud/console"
    machine: str = "pc"
    default_bridge: str | None = None
    emulator: str | None = None
    #: NIC bandwidth limits need the kernel's sch_htb/sch_sfq; hosts without them turn this off
    nic_rate_limits: bool = True


def validate_name(name: str) -> str:
    if not _VM_NAME_RE.match(name):
        raise InvalidSpec(f"invalid VM name {name!r}")
    return name


def console_log_path(settings: XmlSettings, name: str) -> str:
    return f"{settings.console_log_dir.rstrip('/')}/{validate_name(name)}.log"


def _letters(n: int) -> str:
    return string.ascii_lowercase[n]


def disk_target(disk: DiskSpec) -> tuple[str, str]:
    """(target dev, bus) for a disk's slot."""
    if disk.device == "cdrom":
        if not 0 <= disk.slot <= 3:
            raise InvalidSpec(f"optical drive slot {disk.slot} is outside 0..3")
        return "hd" + _letters(disk.slot), "ide"
    if disk.device == "floppy":
        raise InvalidSpec("floppy drives are not supported by the libvirt driver")
    if not 0 <= disk.slot <= MAX_DISK_SLOT:
        raise InvalidSpec(f"disk slot {disk.slot} is outside 0..{MAX_DISK_SLOT}")
    return "vd" + _letters(disk.slot), "virtio"


def libvirt_format(disk: DiskSpec) -> str:
    fmt = "raw" if disk.device == "cdrom" else disk.format
    try:
        return _LIBVIRT_FORMAT[fmt]
    except KeyError:
        raise InvalidSpec(
            f"disk format {disk.format} cannot be attached through libvirt; convert it to qcow2"
        ) from None


def disk_element(disk: DiskSpec, boot_order: int | None = None) -> ET.Element:
    dev, bus = disk_target(disk)
    el = ET.Element("disk", type="file", device="cdrom" if disk.device == "cdrom" else "disk")
    drv = {"name": "qemu", "type": libvirt_format(disk)}
    if disk.device == "disk":
        drv["discard"] = "unmap"
    ET.SubElement(el, "driver", drv)
    if disk.path is not None:
        if not disk.path.startswith("/") or "\n" in disk.path:
            raise InvalidSpec(f"disk path {disk.path!r} must be absolute")
        ET.SubElement(el, "source", file=disk.path)
    ET.SubElement(el, "target", dev=dev, bus=bus)
    if disk.read_only or disk.device == "cdrom":
        ET.SubElement(el, "readonly")
    if disk.serial:
        ET.SubElement(el, "serial").text = disk.serial[:20]
    if boot_order is not None:
        ET.SubElement(el, "boot", order=str(boot_order))
    return el


def nic_bridge(nic: NicSpec, settings: XmlSettings) -> str:
    """The bridge the NIC's tap joins: the trunk (the NIC's network or the host's default bridge)
    when untagged, its VLAN bridge, or the VXLAN segment's ``brvx-<vni>``."""
    trunk = nic.network or settings.default_bridge
    if not trunk:
        raise InvalidSpec(f"NIC {nic.mac} names no bridge and the host has no default bridge")
    try:
        return segment_bridge_name(validate_ifname(trunk), nic.vlan or None, nic.vxlan)
    except NetworkError as exc:
        raise InvalidSpec(f"NIC {nic.mac}: {exc}") from None


def nic_element(nic: NicSpec, settings: XmlSettings) -> ET.Element:
    if not _MAC_RE.match(nic.mac):
        raise InvalidSpec(f"invalid MAC address {nic.mac!r}")
    el = ET.Element("interface", type="bridge")
    ET.SubElement(el, "mac", address=nic.mac.lower())
    ET.SubElement(el, "source", bridge=nic_bridge(nic, settings))
    ET.SubElement(el, "model", type="virtio" if nic.model == "synthetic" else "e1000")
    if nic.vxlan is not None:
        ET.SubElement(el, "mtu", size=str(VXLAN_NIC_MTU))
    if nic.rate_mbps and settings.nic_rate_limits:
        kbytes = str(nic.rate_mbps * 125)
        bw = ET.SubElement(el, "bandwidth")
        ET.SubElement(bw, "inbound", average=kbytes)
        ET.SubElement(bw, "outbound", average=kbytes)
    ET.SubElement(el, "link", state="up" if nic.enabled else "down")
    return el


def interface_xml(xml: str, mac: str) -> str | None:
    """The ``<interface>`` element with that MAC in a domain's XML, as text, or None."""
    for el in ET.fromstring(xml).findall("devices/interface"):
        found = el.find("mac")
        if found is not None and (found.get("address") or "").lower() == mac.lower():
            return ET.tostring(el, encoding="unicode")
    return None


def metadata_element(spec: VmSpec) -> ET.Element:
    el = ET.Element(f"{{{METADATA_NS}}}vm")
    ET.SubElement(el, f"{{{METADATA_NS}}}spec").text = spec_to_json(spec)
    return el


def metadata_xml(spec: VmSpec) -> str:
    """The metadata element alone, as ``virDomainSetMetadata`` wants it: without a namespace,
    which libvirt adds itself from the key and URI it is given."""
    el = ET.Element("vm")
    ET.SubElement(el, "spec").text = spec_to_json(spec)
    return ET.tostring(el, encoding="unicode")


def _boot_disk(spec: VmSpec) -> DiskSpec | None:
    flagged = [d for d in spec.disks if d.boot]
    if flagged:
        return flagged[0]
    root = [d for d in spec.disks if d.device == "disk" and d.slot == 0]
    if root:
        return root[0]
    isos = [d for d in spec.disks if d.device == "cdrom" and d.path]
    return isos[0] if isos else None


def _fallback_boot(disks: list[DiskSpec], boot: DiskSpec | None) -> DiskSpec | None:
    """The optical drive the firmware boots when the boot disk has nothing to boot: a VM deployed
    from an ISO starts with a blank ROOT disk and installs from the ISO, as on CloudStack's KVM
    hosts. Every drive keeps its boot order for life (a media change cannot alter it), so the first
    drive has it even while empty."""
    if boot is None or boot.device != "disk":
        return None
    return next((d for d in disks if d.device == "cdrom"), None)


def validate_spec(spec: VmSpec) -> None:
    validate_name(spec.name)
    if spec.vcpus < 1 or spec.vcpus > 256:
        raise InvalidSpec(f"vCPU count {spec.vcpus} is outside 1..256")
    if spec.memory_mib < 16:
        raise InvalidSpec(f"memory {spec.memory_mib} MiB is below 16 MiB")
    seen: set[str] = set()
    for disk in spec.disks:
        dev, _ = disk_target(disk)
        if dev in seen:
            raise InvalidSpec(f"two disks use slot {disk.slot}")
        seen.add(dev)
        libvirt_format(disk)
    macs = [n.mac.lower() for n in spec.nics]
    if len(set(macs)) != len(macs):
        raise InvalidSpec("two NICs share a MAC address")


def domain_xml(spec: VmSpec, settings: XmlSettings) -> str:
    validate_spec(spec)
    ET.register_namespace(METADATA_PREFIX, METADATA_NS)
    dom = ET.Element("domain", type=settings.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    if spec.uuid:
        ET.SubElement(dom, "uuid").text = spec.uuid
    ET.SubElement(dom, "title").text = spec.name
    ET.SubElement(dom, "metadata").append(metadata_element(spec))
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu", placement="static").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine=settings.machine).text = "hvm"
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "clock", offset="utc")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"
    devices = ET.SubElement(dom, "devices")
    if settings.emulator:
        ET.SubElement(devices, "emulator").text = settings.emulator
    boot = _boot_disk(spec)
    disks = sorted(spec.disks, key=lambda d: (d.device != "disk", d.slot))
    if not any(d.device == "cdrom" for d in disks):
        disks.append(DiskSpec(slot=DEFAULT_CDROM_SLOT, device="cdrom", format="iso"))
    fallback = _fallback_boot(disks, boot)
    for disk in disks:
        devices.append(disk_element(disk, 1 if disk is boot else 2 if disk is fallback else None))
    for nic in sorted(spec.nics, key=lambda n: n.device_id):
        devices.append(nic_element(nic, settings))
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "log", file=console_log_path(settings, spec.name), append="off")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    channel = ET.SubElement(devices, "channel", type="unix")
    ET.SubElement(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    gfx_attrs = {"type": "vnc", "port": "-1", "autoport": "yes", "listen": settings.vnc_listen}
    if spec.vnc_password:
        gfx_attrs["passwd"] = spec.vnc_password[:8]
    gfx = ET.SubElement(devices, "graphics", gfx_attrs)
    ET.SubElement(gfx, "listen", type="address", address=settings.vnc_listen)
    video = ET.SubElement(devices, "video")
    ET.SubElement(video, "model", type="cirrus")
    balloon = ET.SubElement(devices, "memballoon", model="virtio")
    ET.SubElement(balloon, "stats", period="10")
    return ET.tostring(dom, encoding="unicode")


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class AttachedDisk:
    target: str
    device: str
    path: str | None
    boot_order: int | None = None


@dataclass(frozen=True)
class DomainFacts:
    spec_json: str | None
    vnc_port: int | None
    vnc_listen: str | None
    vnc_password: str | None
    disks: tuple[AttachedDisk, ...] = ()
    nic_targets: dict[str, str] = field(default_factory=dict)


def parse_domain(xml: str) -> DomainFacts:
    root = ET.fromstring(xml)
    spec_el = root.find(f"metadata/{{{METADATA_NS}}}vm/{{{METADATA_NS}}}spec")
    gfx = root.find("devices/graphics[@type='vnc']")
    port: int | None = None
    listen = password = None
    if gfx is not None:
        raw_port = gfx.get("port", "-1")
        port = int(raw_port) if raw_port.lstrip("-").isdigit() and int(raw_port) > 0 else None
        listen = gfx.get("listen")
        password = gfx.get("passwd")
    disks = []
    for d in root.findall("devices/disk"):
        target = d.find("target")
        source = d.find("source")
        boot = d.find("boot")
        order = boot.get("order", "") if boot is not None else ""
        disks.append(AttachedDisk(
            target=target.get("dev", "") if target is not None else "",
            device=d.get("device", "disk"),
            path=source.get("file") if source is not None else None,
            boot_order=int(order) if order.isdigit() else None,
        ))
    nics: dict[str, str] = {}
    for i in root.findall("devices/interface"):
        mac = i.find("mac")
        tgt = i.find("target")
        if mac is not None and tgt is not None:
            nics[mac.get("address", "").lower()] = tgt.get("dev", "")
    return DomainFacts(
        spec_json=spec_el.text if spec_el is not None else None,
        vnc_port=port, vnc_listen=listen, vnc_password=password,
        disks=tuple(disks), nic_targets=nics,
    )
