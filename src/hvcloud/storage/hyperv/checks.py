"""Image safety on Hyper-V hosts, with or without qemu-img.

A template is attached to a VM by Hyper-V itself, which follows a differencing disk's parent
locator wherever it points, so a VHD or VHDX that has a parent is refused as firmly as a qcow2
with a backing file is on KVM. The structure is checked by our own readers (the native VHD
library, the VHDX header reader); qemu-img, when installed, checks it a second time.
"""

from __future__ import annotations

import os
from pathlib import Path

from hvcloud.storage import qemu_img, vhdx
from hvcloud.storage.errors import ImageError
from hvcloud.storage.image_check import inspect_untrusted, is_iso9660, sniff_format
from hvcloud.storage.vhd import DiskType, VhdError, VhdFile, check
from hvcloud.storage.vhd.structs import FOOTER_SIZE, Footer

#: the native VHD library runs on every platform (positional I/O through ``storage.fileio``); a
#: backend built with ``native_vhd=False`` asks Hyper-V (IMS) instead and checks VHDs by their footer
NATIVE_VHD = True


def vhd_footer(path: Path) -> Footer:
    """The VHD footer at the end of the file, checksum verified (without opening the whole disk)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() < FOOTER_SIZE:
            raise ImageError("not a VHD file (too short)")
        f.seek(-FOOTER_SIZE, os.SEEK_END)
        raw = f.read(FOOTER_SIZE)
    try:
        footer = Footer.unpack(raw)
    except VhdError as exc:
        raise ImageError(f"image is not a valid VHD: {exc}") from None
    if footer.checksum != footer.computed_checksum:
        raise ImageError("image is not a valid VHD: footer checksum mismatch")
    return footer


def virtual_size(path: Path, fmt: str, *, native_vhd: bool = NATIVE_VHD) -> int:
    """The guest-visible size of a VHD, VHDX or ISO already known to be well formed."""
    if fmt == "vhd":
        if not native_vhd:
            return int(vhd_footer(path).current_size)
        with VhdFile(str(path)) as vf:
            return vf.size
    if fmt == "vhdx":
        return vhdx.read_info(path).virtual_size
    return path.stat().st_size


def inspect_hyperv_image(path: Path, declared: str, *, native_vhd: bool = NATIVE_VHD) -> int:
    """Check an image from outside the host and return its virtual size; raise ImageError."""
    declared = declared.lower()
    if declared not in ("vhd", "vhdx", "raw", "iso"):
        raise ImageError(f"{declared} images cannot be used on Hyper-V")
    actual = sniff_format(path)
    if declared in ("vhd", "vhdx") and actual != declared:
        what = f"really {actual}" if actual else f"not a {declared} file"
        raise ImageError(f"format mismatch: image declared as {declared} is {what}; refused")
    if declared in ("raw", "iso") and actual is not None:
        raise ImageError(f"format mismatch: image declared as {declared} is really {actual}; refused")
    if declared == "vhd" and not native_vhd:
        footer = vhd_footer(path)
        if footer.disk_type == DiskType.DIFFERENCING:
            raise ImageError("image is a differencing VHD (it names a parent file); refused")
        size = int(footer.current_size)
    elif declared == "vhd":
        report = check(str(path), check_chain=False)
        if not report.ok:
            raise ImageError(f"image is not a valid VHD: {report.errors[0]}")
        try:
            with VhdFile(str(path)) as vf:
                if vf.disk_type == DiskType.DIFFERENCING:
                    raise ImageError("image is a differencing VHD (it names a parent file); refused")
                size = vf.size
        except VhdError as exc:
            raise ImageError(f"image is not a valid VHD: {exc}") from None
    elif declared == "vhdx":
        info = vhdx.read_info(path)
        if info.has_parent:
            raise ImageError("image is a differencing VHDX (it names a parent file); refused")
        size = info.virtual_size
    else:
        size = path.stat().st_size
        if declared == "iso" and not is_iso9660(path):
            raise ImageError("the file is not an ISO 9660/UDF image")
    if size <= 0:
        raise ImageError("image has no virtual size")
    if qemu_img.available() and declared != "iso":
        inspect_untrusted(path, declared)
    return size
