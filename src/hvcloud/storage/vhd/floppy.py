"""1.44 MB virtual floppy images (``.vfd``): blank, or FAT12-formatted with files in the root.

The boot sector is the standard 1.44 MB BPB (what ``mkfs.fat -F 12 -M 0xF0`` writes: 2 heads,
18 sectors per track, 9 sectors per FAT, 224 root entries). Files get 8.3 names in the root
directory, stored in contiguous clusters.
"""

from __future__ import annotations

import os
import re
import struct
import time
import uuid
from collections.abc import Sequence

from hvcloud.storage import fileio
from hvcloud.storage.vhd.builder import _TempTarget
from hvcloud.storage.vhd.errors import VhdError

FLOPPY_SIZE = 1_474_560
_SECTORS = 2880
_FAT_SECTORS = 9
_ROOT_ENTRIES = 224
_ROOT_SECTORS = _ROOT_ENTRIES * 32 // 512
_FIRST_DATA = 1 + 2 * _FAT_SECTORS + _ROOT_SECTORS
_CLUSTERS = _SECTORS - _FIRST_DATA
_NAME_CHARS = re.compile(r"^[A-Z0-9!#$%&'()\-@^_`{}~]+$")


class FloppyError(VhdError):
    pass


def short_name(name: str) -> bytes:
    """The 11-byte 8.3 directory name of ``name``; refuses names that do not fit 8.3."""
    upper = name.upper()
    base, dot, ext = upper.rpartition(".") if "." in upper else (upper, "", "")
    if (
        not base
        or len(base) > 8
        or len(ext) > 3
        or not _NAME_CHARS.match(base)
        or (ext and not _NAME_CHARS.match(ext))
    ):
        raise FloppyError(f"{name!r} is not a valid 8.3 file name for a FAT12 floppy")
    del dot
    return base.ljust(8).encode("ascii") + ext.ljust(3).encode("ascii")


def _boot_sector(label: bytes, serial: int) -> bytes:
    bpb = struct.pack(
        "<3s8sHBHBHHBHHHIIBBBI11s8s",
        b"\xeb\x3c\x90",
        b"HVCLOUD ",
        512,
        1,
        1,
        2,
        _ROOT_ENTRIES,
        _SECTORS,
        0xF0,
        _FAT_SECTORS,
        18,
        2,
        0,
        0,
        0,
        0,
        0x29,
        serial,
        label,
        b"FAT12   ",
    )
    # boot code: print nothing, wait for a key, reboot (int 16h / int 19h)
    code = b"\x31\xc0\xcd\x16\xcd\x19"
    return (bpb + code).ljust(510, b"\0") + b"\x55\xaa"


def _fat_date_time(t: float) -> tuple[int, int]:
    lt = time.localtime(t)
    date = ((max(lt.tm_year, 1980) - 1980) << 9) | (lt.tm_mon << 5) | lt.tm_mday
    tm = (lt.tm_hour << 11) | (lt.tm_min << 5) | (lt.tm_sec // 2)
    return date, tm


def _set_fat12(fat: bytearray, n: int, value: int) -> None:
    at = n * 3 // 2
    if n % 2 == 0:
        fat[at] = value & 0xFF
        fat[at + 1] = (fat[at + 1] & 0xF0) | ((value >> 8) & 0x0F)
    else:
        fat[at] = (fat[at] & 0x0F) | ((value & 0x0F) << 4)
        fat[at + 1] = (value >> 4) & 0xFF


def create_floppy(
    path: str, *, files: Sequence[str] = (), label: str = "", formatted: bool = True, overwrite: bool = False
) -> None:
    """Write a 1,474,560-byte floppy image; unformatted (all zeros, like Hyper-V's New-VFD) or
    FAT12 with ``files`` copied into the root directory under their 8.3 names."""
    if not formatted and files:
        raise FloppyError("files need a formatted floppy")
    image = bytearray(FLOPPY_SIZE)
    if formatted:
        lab = label.upper()
        if len(lab) > 11 or (lab and not _NAME_CHARS.match(lab.replace(" ", "_"))):
            raise FloppyError(f"volume label {label!r} must be up to 11 plain characters")
        lab_bytes = lab.ljust(11).encode("ascii") if lab else b"NO NAME    "
        image[0:512] = _boot_sector(lab_bytes, uuid.uuid4().int & 0xFFFFFFFF)
        fat = bytearray(_FAT_SECTORS * 512)
        _set_fat12(fat, 0, 0xFF0)
        _set_fat12(fat, 1, 0xFFF)
        entries: list[bytes] = []
        date, tm = _fat_date_time(time.time())
        if lab:
            entries.append(struct.pack("<11sBBBHHHHHHHI", lab_bytes, 0x08, 0, 0, 0, 0, 0, 0, tm, date, 0, 0))
        names: set[bytes] = set()
        cluster = 2
        for f in files:
            name = short_name(os.path.basename(f))
            if name in names:
                raise FloppyError(f"two files would both be named {name.decode().strip()!r}")
            names.add(name)
            try:
                with open(f, "rb") as fh:
                    data = fh.read(FLOPPY_SIZE + 1)
                mtime = os.stat(f).st_mtime
            except OSError as exc:
                raise FloppyError(f"{f}: {exc.strerror}") from None
            need = -(-len(data) // 512)
            if cluster - 2 + need > _CLUSTERS:
                raise FloppyError(f"{f}: does not fit on a 1.44 MB floppy")
            if len(entries) >= _ROOT_ENTRIES:
                raise FloppyError(f"more than {_ROOT_ENTRIES} root directory entries")
            first = cluster if need else 0
            for i in range(need):
                _set_fat12(fat, cluster + i, 0xFFF if i == need - 1 else cluster + i + 1)
            at = (_FIRST_DATA + cluster - 2) * 512
            image[at : at + len(data)] = data
            cluster += need
            fdate, ftm = _fat_date_time(mtime)
            entries.append(
                struct.pack(
                    "<11sBBBHHHHHHHI", name, 0x20, 0, 0, ftm, fdate, fdate, 0, ftm, fdate, first, len(data)
                )
            )
        for copy in range(2):
            at = (1 + copy * _FAT_SECTORS) * 512
            image[at : at + len(fat)] = fat
        root = b"".join(entries)
        image[(1 + 2 * _FAT_SECTORS) * 512 : (1 + 2 * _FAT_SECTORS) * 512 + len(root)] = root
    target = _TempTarget(path, overwrite=overwrite)
    try:
        fileio.pwrite(target.fd, bytes(image), 0)
        target.commit()
    except BaseException:
        target.abort()
        raise
