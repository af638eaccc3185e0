"""Image safety: what an untrusted image file really is, before anything opens it.

CloudStack's CVE-2024-45219 class of bug: a "raw" or "qcow2" template uploaded by a user that is
really a qcow2 with a backing file (or an external data file) pointing at a host file lets the guest
read that file. So every image from a store is inspected with ``qemu-img info`` *using its declared
format*, its leading bytes are checked for another format's magic, and backing or data files are
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hvcloud.storage import qemu_img
from hvcloud.storage.errors import ImageError

INFO_TIMEOUT = 120.0
_ISO_MAGICS = (b"CD001", b"BEA01", b"NSR02", b"NSR03")

_QCOW_MAGIC = b"QFI\xfb"
_VHDX_MAGIC = b"vhdxfile"
_VHD_COOKIE = b"conectix"


@dataclass(frozen=True)
class CheckedImage:
    format: str
    virtual_size: int
    physical_size: int


def is_iso9660(path: Path) -> bool:
    """True when the file carries an ISO 9660 / UDF volume descriptor at 32 KiB."""
    with open(path, "rb") as f:
        f.seek(0x8001)
        return f.read(5) in _ISO_MAGICS


def sniff_format(path: Path) -> str | None:
    """The format announced by the file's magic bytes: qcow2, vhdx, vhd, or None (raw/unknown)."""
    with open(path, "rb") as f:
        head = f.read(512)
        if head[:4] == _QCOW_MAGIC:
            return "qcow2"
        if head[:8] == _VHDX_MAGIC:
            return "vhdx"
        if head[:8] == _VHD_COOKIE:
            return "vhd"
        f.seek(0, 2)
        size = f.tell()
        if size >= 512:
            f.seek(size - 512)
            if f.read(8) == _VHD_COOKIE:
                return "vhd"
    return None


def inspect_untrusted(path: Path, declared: str) -> qemu_img.ImageInfo | None:
    """Check an image from outside; return its info (None for an ISO). Raises ImageError."""
    declared = declared.lower()
    if declared not in ("qcow2", "raw", "vhd", "vhdx", "iso"):
        raise ImageError(f"unsupported image format {declared!r}")
    actual = sniff_format(path)
    if declared in ("raw", "iso"):
        if actual is not None:
            raise ImageError(f"format mismatch: image declared as {declared} is really {actual}; refused")
        if declared == "iso":
            return None
    elif actual != declared:
        what = f"really {actual}" if actual else f"not a {declared} file"
        raise ImageError(f"format mismatch: image declared as {declared} is {what}; refused")
    try:
        info = qemu_img.info(str(path), declared, timeout=INFO_TIMEOUT)
    except ImageError as exc:
        raise ImageError(f"image is not a valid {declared} file: {exc}") from None
    if info.backing_file:
        raise ImageError(f"image has a backing file ({info.backing_file!r}); refused")
    if info.data_file:
        raise ImageError(f"image has an external data file ({info.data_file!r}); refused")
    if info.virtual_size <= 0:
        raise ImageError("image has no virtual size")
    return info


def check_template(path: Path, declared: str) -> CheckedImage:
    """The management server's gate for a registered or uploaded image: everything
    :func:`inspect_untrusted` checks, plus a non-empty file and, for an ISO, a real ISO 9660/UDF
    volume. Raises ImageError naming what is wrong."""
    physical = path.stat().st_size
    if physical == 0:
        raise ImageError("the image is empty")
    info = inspect_untrusted(path, declared)
    if info is None:
        if not is_iso9660(path):
            raise ImageError("the file is not an ISO 9660/UDF image")
        return CheckedImage("ISO", physical, physical)
    return CheckedImage(declared.upper(), info.virtual_size, physical)
