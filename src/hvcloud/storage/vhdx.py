"""Just enough of VHDX (MS-VHDX v1.0) to check an untrusted file and to write empty disks.

* :func:`read_info` validates the file type identifier, the two headers (CRC-32C, the current one
  by sequence number), the region table and the metadata items a reader must understand, and
  reports size, block size and parent locator. A pending log (non-zero LogGuid) is refused: only
  Hyper-V should replay it.
* :func:`create_dynamic` and :func:`create_differencing` write empty disks (an all-zero BAT), the
  layout Hyper-V's own ``CreateVirtualHardDisk`` produces. The agent uses Hyper-V itself on
  Windows; these serve hosts without it (and the WMI model in tests).

Data blocks are never read or written here.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from hvcloud.storage import fileio
from hvcloud.storage.errors import ImageError

KiB, MiB = 1024, 1024 * 1024
SIGNATURE = b"vhdxfile"
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
REGION_OFFSETS = (192 * KiB, 256 * KiB)
LOG_OFFSET, LOG_LENGTH = 1 * MiB, 1 * MiB
METADATA_OFFSET, METADATA_LENGTH = 2 * MiB, 1 * MiB
BAT_OFFSET = 3 * MiB
DEFAULT_BLOCK = 32 * MiB
MAX_SIZE = 64 * 1024**4

BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VIRTUAL_DISK_ID = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
_KNOWN_ITEMS = {FILE_PARAMETERS, VIRTUAL_DISK_SIZE, VIRTUAL_DISK_ID, LOGICAL_SECTOR,
                PHYSICAL_SECTOR, PARENT_LOCATOR}


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _with_checksum(buf: bytearray) -> bytes:
    struct.pack_into("<I", buf, 4, 0)
    struct.pack_into("<I", buf, 4, crc32c(bytes(buf)))
    return bytes(buf)


def _checksum_ok(buf: bytes) -> bool:
    stored: int = struct.unpack_from("<I", buf, 4)[0]
    zeroed = bytearray(buf)
    struct.pack_into("<I", zeroed, 4, 0)
    return crc32c(bytes(zeroed)) == stored


@dataclass(frozen=True)
class VhdxInfo:
    virtual_size: int
    block_size: int
    logical_sector_size: int
    physical_sector_size: int
    has_parent: bool
    data_write_guid: uuid.UUID
    disk_id: uuid.UUID
    parent: dict[str, str] = field(default_factory=dict)


def _pread(fd: int, n: int, at: int, what: str) -> bytes:
    os.lseek(fd, at, os.SEEK_SET)
    data = os.read(fd, n)
    if len(data) != n:
        raise ImageError(f"VHDX {what} is truncated")
    return data


def read_info(path: str | Path) -> VhdxInfo:
    """Validate the VHDX structures named above; raise ImageError naming the first fault."""
    fd = fileio.open_fd(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < BAT_OFFSET or _pread(fd, 8, 0, "file identifier") != SIGNATURE:
            raise ImageError("not a VHDX file")
        headers = []
        for off in HEADER_OFFSETS:
            raw = _pread(fd, 4 * KiB, off, "header")
            if raw[:4] == b"head" and _checksum_ok(raw):
                headers.append(raw)
        if not headers:
            raise ImageError("VHDX has no valid header")
        head = max(headers, key=lambda h: struct.unpack_from("<Q", h, 8)[0])
        data_write = uuid.UUID(bytes_le=head[32:48])
        log_guid = uuid.UUID(bytes_le=head[48:64])
        version = struct.unpack_from("<H", head, 66)[0]
        if version != 1:
            raise ImageError(f"VHDX version {version} is not supported")
        if log_guid.int != 0:
            raise ImageError("VHDX has a pending log; open it with Hyper-V first")
        regions = _regions(fd)
        meta_off, meta_len = regions[METADATA_GUID]
        bat_off, bat_len = regions[BAT_GUID]
        for off, length in ((meta_off, meta_len), (bat_off, bat_len)):
            if off % MiB or off < MiB or off + length > size:
                raise ImageError("VHDX region lies outside the file")
        items = _metadata(fd, meta_off, meta_len)
        block_size, flags = struct.unpack("<II", items[FILE_PARAMETERS][:8])
        vsize = struct.unpack("<Q", items[VIRTUAL_DISK_SIZE][:8])[0]
        logical = struct.unpack("<I", items[LOGICAL_SECTOR][:4])[0]
        physical = struct.unpack("<I", items[PHYSICAL_SECTOR][:4])[0]
        disk_id = uuid.UUID(bytes_le=items[VIRTUAL_DISK_ID][:16])
        if block_size < MiB or block_size > 256 * MiB or block_size & (block_size - 1):
            raise ImageError(f"VHDX block size {block_size} is invalid")
        if logical not in (512, 4096) or physical not in (512, 4096):
            raise ImageError("VHDX sector size is invalid")
        if vsize <= 0 or vsize > MAX_SIZE or vsize % logical:
            raise ImageError(f"VHDX virtual size {vsize} is invalid")
        has_parent = bool(flags & 2)
        parent = _parent_locator(items[PARENT_LOCATOR]) if has_parent and PARENT_LOCATOR in items else {}
        if has_parent and not parent:
            raise ImageError("differencing VHDX without a parent locator")
        if bat_len < bat_entries(vsize, block_size, logical, has_parent) * 8:
            raise ImageError("VHDX BAT is too small for the disk")
        return VhdxInfo(vsize, block_size, logical, physical, has_parent, data_write, disk_id, parent)
    finally:
        os.close(fd)


def _regions(fd: int) -> dict[uuid.UUID, tuple[int, int]]:
    for off in REGION_OFFSETS:
        raw = _pread(fd, 64 * KiB, off, "region table")
        if raw[:4] != b"regi" or not _checksum_ok(raw):
            continue
        count = struct.unpack_from("<I", raw, 8)[0]
        if count > 2047:
            raise ImageError("VHDX region table has too many entries")
        out: dict[uuid.UUID, tuple[int, int]] = {}
        for i in range(count):
            e = 16 + 32 * i
            guid = uuid.UUID(bytes_le=raw[e:e + 16])
            file_off, length, required = struct.unpack_from("<QII", raw, e + 16)
            if guid not in (BAT_GUID, METADATA_GUID):
                if required & 1:
                    raise ImageError(f"VHDX has an unknown required region {guid}")
                continue
            out[guid] = (file_off, length)
        if BAT_GUID in out and METADATA_GUID in out:
            return out
        raise ImageError("VHDX region table lacks the BAT or metadata region")
    raise ImageError("VHDX has no valid region table")


def _metadata(fd: int, off: int, length: int) -> dict[uuid.UUID, bytes]:
    head = _pread(fd, 32, off, "metadata table")
    if head[:8] != b"metadata":
        raise ImageError("VHDX metadata table signature is wrong")
    count = struct.unpack_from("<H", head, 10)[0]
    if count > 2047:
        raise ImageError("VHDX metadata table has too many entries")
    table = _pread(fd, 32 * count, off + 32, "metadata table")
    items: dict[uuid.UUID, bytes] = {}
    for i in range(count):
        e = 32 * i
        guid = uuid.UUID(bytes_le=table[e:e + 16])
        item_off, item_len, flags = struct.unpack_from("<III", table, e + 16)
        if guid not in _KNOWN_ITEMS:
            if flags & 4:
                raise ImageError(f"VHDX has an unknown required metadata item {guid}")
            continue
        if item_off < 64 * KiB or item_len > 64 * KiB or item_off + item_len > length:
            raise ImageError("VHDX metadata item lies outside its region")
        items[guid] = _pread(fd, item_len, off + item_off, "metadata item")
    missing = _KNOWN_ITEMS - {PARENT_LOCATOR} - set(items)
    if missing:
        raise ImageError("VHDX lacks required metadata items")
    return items


def _parent_locator(raw: bytes) -> dict[str, str]:
    if len(raw) < 20 or uuid.UUID(bytes_le=raw[:16]) != VHDX_LOCATOR_TYPE:
        raise ImageError("VHDX parent locator is of an unknown type")
    count = struct.unpack_from("<H", raw, 18)[0]
    out: dict[str, str] = {}
    for i in range(count):
        at = 20 + 12 * i
        if at + 12 > len(raw):
            raise ImageError("VHDX parent locator is truncated")
        ko, vo, kl, vl = struct.unpack_from("<IIHH", raw, at)
        if ko + kl > len(raw) or vo + vl > len(raw):
            raise ImageError("VHDX parent locator entry lies outside the item")
        try:
            out[raw[ko:ko + kl].decode("utf-16-le")] = raw[vo:vo + vl].decode("utf-16-le")
        except UnicodeDecodeError:
            raise ImageError("VHDX parent locator is not UTF-16") from None
    return out


def bat_entries(size: int, block: int, logical: int, has_parent: bool) -> int:
    chunk_ratio = (1 << 23) * logical // block
    blocks = -(-size // block)
    if has_parent:
        return -(-blocks // chunk_ratio) * (chunk_ratio + 1)
    return blocks + (blocks - 1) // chunk_ratio


def _write(path: str | Path, size: int, block: int, parent: dict[str, str] | None) -> None:
    if size <= 0 or size > MAX_SIZE or size % 512:
        raise ImageError(f"invalid VHDX size {size}")
    bat_len = -(-bat_entries(size, block, 512, parent is not None) * 8 // MiB) * MiB
    ident = bytearray(64 * KiB)
    ident[:8] = SIGNATURE
    creator = "hvcloud".encode("utf-16-le")
    ident[8:8 + len(creator)] = creator
    header = bytearray(4 * KiB)
    header[:4] = b"head"
    struct.pack_into("<Q", header, 8, 1)
    header[16:32] = uuid.uuid4().bytes_le
    header[32:48] = uuid.uuid4().bytes_le
    struct.pack_into("<HHIQ", header, 64, 0, 1, LOG_LENGTH, LOG_OFFSET)
    region = bytearray(64 * KiB)
    region[:4] = b"regi"
    struct.pack_into("<I", region, 8, 2)
    region[16:32] = BAT_GUID.bytes_le
    struct.pack_into("<QII", region, 32, BAT_OFFSET, bat_len, 1)
    region[48:64] = METADATA_GUID.bytes_le
    struct.pack_into("<QII", region, 64, METADATA_OFFSET, METADATA_LENGTH, 1)
    items: list[tuple[uuid.UUID, bytes, int]] = [
        (FILE_PARAMETERS, struct.pack("<II", block, 2 if parent is not None else 0), 4),
        (VIRTUAL_DISK_SIZE, struct.pack("<Q", size), 6),
        (VIRTUAL_DISK_ID, uuid.uuid4().bytes_le, 6),
        (LOGICAL_SECTOR, struct.pack("<I", 512), 6),
        (PHYSICAL_SECTOR, struct.pack("<I", 4096), 6),
    ]
    if parent is not None:
        items.append((PARENT_LOCATOR, _encode_locator(parent), 4))
    meta = bytearray(METADATA_LENGTH)
    meta[:8] = b"metadata"
    struct.pack_into("<H", meta, 10, len(items))
    at = 64 * KiB
    for i, (guid, data, flags) in enumerate(items):
        e = 32 + 32 * i
        meta[e:e + 16] = guid.bytes_le
        struct.pack_into("<III", meta, e + 16, at, len(data), flags)
        meta[at:at + len(data)] = data
        at += -(-len(data) // 4096) * 4096
    tmp = Path(f"{path}.part")
    with open(tmp, "xb") as f:
        f.write(ident)
        h = _with_checksum(header)
        r = _with_checksum(region)
        for off, data in ((HEADER_OFFSETS[0], h), (HEADER_OFFSETS[1], h),
                          (REGION_OFFSETS[0], r), (REGION_OFFSETS[1], r),
                          (METADATA_OFFSET, bytes(meta))):
            f.seek(off)
            f.write(data)
        f.truncate(BAT_OFFSET + bat_len)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _encode_locator(kv: dict[str, str]) -> bytes:
    pairs = [(k.encode("utf-16-le"), v.encode("utf-16-le")) for k, v in kv.items()]
    head = bytearray(VHDX_LOCATOR_TYPE.bytes_le + struct.pack("<HH", 0, len(pairs)))
    at = 20 + 12 * len(pairs)
    entries = bytearray()
    blob = bytearray()
    for k, v in pairs:
        entries += struct.pack("<IIHH", at, at + len(k), len(k), len(v))
        blob += k + v
        at += len(k) + len(v)
    return bytes(head + entries + blob)


def create_dynamic(path: str | Path, size: int, block_size: int = DEFAULT_BLOCK) -> None:
    _write(path, size, block_size, None)


def create_differencing(path: str | Path, parent: str | Path, *, absolute_win32_path: str,
                        relative_path: str | None = None) -> None:
    """An empty child of the VHDX ``parent`` (read here for its size and DataWriteGuid); the
    locator names the parent as Hyper-V will look for it."""
    p = read_info(parent)
    kv = {"parent_linkage": "{" + str(p.data_write_guid) + "}",
          "absolute_win32_path": absolute_win32_path}
    if relative_path:
        kv["relative_path"] = relative_path
    _write(path, p.virtual_size, p.block_size, kv)


def set_virtual_size(path: str | Path, new_size: int) -> None:
    """Grow a disk whose BAT region already has room (as the layout :func:`_write` makes has up
    to its 1 MiB multiple); shrinking and growing past the BAT are refused."""
    info = read_info(path)
    if new_size < info.virtual_size or new_size % info.logical_sector_size or new_size > MAX_SIZE:
        raise ImageError(f"cannot resize a VHDX from {info.virtual_size} to {new_size} bytes here")
    fd = fileio.open_fd(path, os.O_RDWR)
    try:
        regions = _regions(fd)
        meta_off = regions[METADATA_GUID][0]
        if regions[BAT_GUID][1] < bat_entries(new_size, info.block_size, info.logical_sector_size,
                                              info.has_parent) * 8:
            raise ImageError("the VHDX's BAT region is too small for that size; use Hyper-V")
        head = _pread(fd, 32, meta_off, "metadata table")
        count = struct.unpack_from("<H", head, 10)[0]
        table = _pread(fd, 32 * count, meta_off + 32, "metadata table")
        for i in range(count):
            if uuid.UUID(bytes_le=table[32 * i:32 * i + 16]) == VIRTUAL_DISK_SIZE:
                item_off = struct.unpack_from("<I", table, 32 * i + 16)[0]
                os.lseek(fd, meta_off + item_off, os.SEEK_SET)
                os.write(fd, struct.pack("<Q", new_size))
                os.fsync(fd)
                return
        raise ImageError("VHDX lacks its virtual size item")
    finally:
        os.close(fd)
