"""Checks on disk files before they are handed to QEMU."""

from __future__ import annotations

import struct

from hvcloud.hypervisor.driver import DiskSpec
from hvcloud.hypervisor.libvirt.domain_xml import InvalidSpec

_VHD_COOKIE = b"conectix"
_VHD_DIFFERENCING = 4


def vhd_disk_type(path: str) -> int | None:
    """The VHD footer's disk type (2 fixed, 3 dynamic, 4 differencing), None if not a VHD."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        for offset in (max(size - 512, 0), 0):  # footer, then the copy at the start of dynamic VHDs
            f.seek(offset)
            footer = f.read(512)
            if footer[:8] == _VHD_COOKIE and len(footer) >= 64:
                return int(struct.unpack(">I", footer[60:64])[0])
    return None


def check_disk_file(disk: DiskSpec) -> None:
    """Refuse what QEMU should not be given: VHD differencing disks (QEMU cannot follow their
    parent) and VHDX (libvirt has no such format)."""
    if disk.path is None or disk.device == "cdrom":
        return
    if disk.format == "vhdx":
        raise InvalidSpec(f"{disk.path}: VHDX disks must be converted to qcow2 for libvirt")
    if disk.format == "vhd":
        try:
            kind = vhd_disk_type(disk.path)
        except OSError as exc:
            raise InvalidSpec(f"{disk.path}: cannot read disk: {exc.strerror}") from None
        if kind is None:
            raise InvalidSpec(f"{disk.path}: not a VHD file")
        if kind == _VHD_DIFFERENCING:
            raise InvalidSpec(f"{disk.path}: VHD differencing disks are not supported by libvirt; "
                              "use a qcow2 linked clone")
