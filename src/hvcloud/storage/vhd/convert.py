"""Converting between VHD types and to/from raw, qcow2, VHDX and VMDK.

VHD↔VHD and VHD↔raw are native. Other formats go through qemu-img, which never sees a
differencing VHD (it would silently read zeros for the parent's data) nor a VHD whose size it
would get wrong (CHS-sized creators on qemu < 10): those are flattened to a sparse temporary raw
file first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from hvcloud.storage import qemu_img
from hvcloud.storage.vhd.chain import Progress
from hvcloud.storage.vhd.errors import CorruptImage, VhdError
from hvcloud.storage.vhd.flatten import chain_to_raw, chain_to_vhd, raw_to_vhd
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.structs import DEFAULT_BLOCK_SIZE, FOOTER_COOKIE, HEADER_COOKIE, DiskType

FORMATS = ("vhd", "raw", "qcow2", "vhdx", "vmdk")
_EXT = {
    ".vhd": "vhd",
    ".avhd": "vhd",
    ".raw": "raw",
    ".img": "raw",
    ".qcow2": "qcow2",
    ".vhdx": "vhdx",
    ".avhdx": "vhdx",
    ".vmdk": "vmdk",
    ".iso": "raw",
}


def detect_format(path: str) -> str:
    """Format of an existing image from its magic bytes (never from qemu's probing).

    A file with no magic is ``raw``, unless it claims to be a VHD (a ``.vhd``/``.avhd`` name, or a
    dynamic header's ``cxsparse`` cookie at offset 512) and has no footer cookie: that is a damaged
    VHD, and reading it as raw would hide it, so it is a :class:`CorruptImage` naming the cookie."""
    try:
        with open(path, "rb") as f:
            head = f.read(512 + len(HEADER_COOKIE))
            size = f.seek(0, os.SEEK_END)
            tail = b""
            if size >= 512:
                f.seek(size - 512)
                tail = f.read(8)
    except OSError as exc:
        raise VhdError(f"{path}: {exc.strerror}") from None
    if head[:8] == FOOTER_COOKIE or tail == FOOTER_COOKIE:
        return "vhd"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head[:4] == b"KDMV":
        return "vmdk"
    if format_from_name(path) == "vhd" or head[512:] == HEADER_COOKIE:
        if size < 512:
            raise CorruptImage(f"{path}: not a VHD: {size} bytes is too short for a footer")
        raise CorruptImage(f"{path}: not a VHD: the footer cookie at offset {size - 512} is {tail!r} "
                           f"(expected {FOOTER_COOKIE!r})")
    return "raw"


def format_from_name(path: str) -> str | None:
    return _EXT.get(os.path.splitext(path)[1].lower())


def _qemu_reads_vhd_right(path: str) -> bool:
    with VhdFile(path) as vf:
        if vf.disk_type == DiskType.DIFFERENCING:
            return False
        size = vf.size
    return qemu_img.info(path, "vhd").virtual_size == size


@contextlib.contextmanager
def _temp_raw(near: str) -> Iterator[str]:
    directory = os.path.dirname(os.path.abspath(near))
    fd, tmp = tempfile.mkstemp(prefix=".hvcloud-", suffix=".raw", dir=directory)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def convert(
    src: str,
    dst: str,
    *,
    src_format: str | None = None,
    dst_format: str | None = None,
    vhd_type: str = "dynamic",
    block_size: int = DEFAULT_BLOCK_SIZE,
    sparse: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> None:
    """Convert ``src`` to ``dst``. ``vhd_type`` (fixed|dynamic) applies when ``dst`` is a VHD."""
    sf = src_format or detect_format(src)
    df = dst_format or format_from_name(dst)
    if df is None:
        raise VhdError(f"{dst}: cannot tell the target format from its name; give it explicitly")
    for fmt in (sf, df):
        if fmt not in FORMATS:
            raise VhdError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if os.path.exists(dst) and not overwrite:
        raise VhdError(f"{dst}: already exists")
    if os.path.abspath(src) == os.path.abspath(dst):
        raise VhdError("source and destination are the same file")
    dtype = {"fixed": DiskType.FIXED, "dynamic": DiskType.DYNAMIC}.get(vhd_type)
    if dtype is None:
        raise VhdError(f"VHD type must be fixed or dynamic, not {vhd_type!r}")
    if sf == "vhd" and df == "vhd":
        chain_to_vhd(
            src, dst, dtype, block_size=block_size, progress=progress, overwrite=overwrite, sparse=sparse
        )
    elif sf == "vhd" and df == "raw":
        chain_to_raw(src, dst, progress=progress, overwrite=overwrite)
    elif sf == "raw" and df == "vhd":
        raw_to_vhd(
            src, dst, dtype, block_size=block_size, progress=progress, overwrite=overwrite, sparse=sparse
        )
    elif sf == "vhd":
        if _qemu_reads_vhd_right(src):
            qemu_img.convert(src, "vhd", dst, df)
        else:
            with _temp_raw(dst) as tmp:
                chain_to_raw(src, tmp, progress=progress)
                qemu_img.convert(tmp, "raw", dst, df)
    elif df == "vhd":
        with _temp_raw(dst) as tmp:
            qemu_img.convert(src, sf, tmp, "raw")
            raw_to_vhd(
                tmp,
                dst,
                dtype,
                block_size=block_size,
                progress=progress,
                overwrite=overwrite,
                sparse=sparse,
            )
    else:
        qemu_img.convert(src, sf, dst, df)
