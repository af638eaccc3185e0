"""Byte codecs of the VHD footer, dynamic disk header and parent locators (all big-endian).

Layouts follow Microsoft's VHD specification v1.0; the field notes in
``shared/reference/vhd.md`` §1 say which spec text real writers disagree with and why we follow
the writers (all-F data offsets, locator data space in bytes).
"""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass, field, replace
from enum import IntEnum

from hvcloud.storage.vhd.errors import CorruptImage

SECTOR = 512
FOOTER_SIZE = 512
HEADER_SIZE = 1024
FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
VERSION = 0x00010000
NO_OFFSET = 0xFFFFFFFFFFFFFFFF
UNALLOCATED = 0xFFFFFFFF
DEFAULT_BLOCK_SIZE = 2 * 1024 * 1024
#: 0xFF000000 sectors = 2040 GiB, the spec's and qemu's maximum
MAX_SIZE = 0xFF000000 * SECTOR
VHD_EPOCH = 946684800
NIL_UUID = uuid.UUID(int=0)
FEATURES_RESERVED = 0x00000002
CREATOR_APP = b"win "
CREATOR_VERSION = 0x000A0000
CREATOR_HOST = b"Wi2k"

_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427x")
_HEADER = struct.Struct(">8sQQIIII16sII512s")
_LOCATOR = struct.Struct(">4sIIIQ")
_LOCATORS_AT = 576
_FOOTER_CSUM_AT = 64
_HEADER_CSUM_AT = 36


class DiskType(IntEnum):
    FIXED = 2
    DYNAMIC = 3
    DIFFERENCING = 4


W2RU = b"W2ru"
W2KU = b"W2ku"
WI2R = b"Wi2r"
WI2K = b"Wi2k"
MACX = b"MacX"
MAC = b"Mac "
NO_PLATFORM = b"\0\0\0\0"


def checksum(data: bytes, csum_at: int) -> int:
    """One's complement of the byte sum, with the 4-byte checksum field counted as zero."""
    total = sum(data) - sum(data[csum_at : csum_at + 4])
    return ~total & 0xFFFFFFFF


def vhd_time(unix: float | None = None) -> int:
    """Seconds since 2000-01-01 UTC, the VHD epoch, clamped to the 32-bit field."""
    t = int(time.time() if unix is None else unix) - VHD_EPOCH
    return max(0, min(t, 0xFFFFFFFF))


def unix_time(vhd: int) -> int:
    return vhd + VHD_EPOCH


def chs_geometry(size: int) -> tuple[int, int, int]:
    """CHS from the spec's appendix; the product is a floor of ``size`` (see reference §1.4)."""
    ts = min(size // SECTOR, 65535 * 16 * 255)
    if ts >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = ts // spt
    else:
        spt = 17
        cth = ts // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = ts // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = ts // spt
    return cth // heads, heads, spt


@dataclass(frozen=True)
class Footer:
    disk_type: DiskType
    current_size: int
    original_size: int
    unique_id: uuid.UUID
    data_offset: int = NO_OFFSET
    timestamp: int = 0
    cylinders: int = 0
    heads: int = 0
    sectors_per_track: int = 0
    creator_app: bytes = CREATOR_APP
    creator_version: int = CREATOR_VERSION
    creator_host: bytes = CREATOR_HOST
    features: int = FEATURES_RESERVED
    version: int = VERSION
    saved_state: int = 0
    checksum: int = field(default=0, compare=False)
    cookie: bytes = FOOTER_COOKIE
    #: checksum the stored bytes should have had; differs from ``checksum`` when corrupt
    computed_checksum: int = field(default=0, compare=False)

    @property
    def chs_size(self) -> int:
        return self.cylinders * self.heads * self.sectors_per_track * SECTOR

    def pack(self) -> bytes:
        raw = _FOOTER.pack(
            self.cookie,
            self.features,
            self.version,
            self.data_offset,
            self.timestamp,
            self.creator_app,
            self.creator_version,
            self.creator_host,
            self.original_size,
            self.current_size,
            self.cylinders,
            self.heads,
            self.sectors_per_track,
            int(self.disk_type),
            0,
            self.unique_id.bytes,
            self.saved_state,
        )
        csum = checksum(raw, _FOOTER_CSUM_AT)
        return raw[:_FOOTER_CSUM_AT] + struct.pack(">I", csum) + raw[_FOOTER_CSUM_AT + 4 :]

    def with_size(self, size: int) -> Footer:
        c, h, s = chs_geometry(size)
        return replace(self, current_size=size, cylinders=c, heads=h, sectors_per_track=s)

    @classmethod
    def unpack(cls, raw: bytes, *, where: str = "footer") -> Footer:
        if len(raw) != FOOTER_SIZE:
            raise CorruptImage(f"{where}: truncated ({len(raw)} of {FOOTER_SIZE} bytes)")
        (
            cookie,
            features,
            version,
            data_offset,
            timestamp,
            app,
            app_ver,
            host,
            orig,
            cur,
            cyl,
            heads,
            spt,
            dtype,
            csum,
            uid,
            saved,
        ) = _FOOTER.unpack(raw)
        if cookie != FOOTER_COOKIE:
            raise CorruptImage(f"{where}: wrong magic {cookie!r} (expected {FOOTER_COOKIE!r})")
        try:
            disk_type = DiskType(dtype)
        except ValueError:
            raise CorruptImage(f"{where}: unknown disk type {dtype}") from None
        return cls(
            disk_type=disk_type,
            current_size=cur,
            original_size=orig,
            unique_id=uuid.UUID(bytes=uid),
            data_offset=data_offset,
            timestamp=timestamp,
            cylinders=cyl,
            heads=heads,
            sectors_per_track=spt,
            creator_app=app,
            creator_version=app_ver,
            creator_host=host,
            features=features,
            version=version,
            saved_state=saved,
            checksum=csum,
            cookie=cookie,
            computed_checksum=checksum(raw, _FOOTER_CSUM_AT),
        )


def new_footer(
    disk_type: DiskType, size: int, *, unique_id: uuid.UUID | None = None, timestamp: int | None = None
) -> Footer:
    """A Hyper-V-style footer: creator ``win `` so every qemu trusts ``current_size``."""
    c, h, s = chs_geometry(size)
    return Footer(
        disk_type=disk_type,
        current_size=size,
        original_size=size,
        unique_id=unique_id or uuid.uuid4(),
        data_offset=NO_OFFSET if disk_type == DiskType.FIXED else FOOTER_SIZE,
        timestamp=vhd_time() if timestamp is None else timestamp,
        cylinders=c,
        heads=h,
        sectors_per_track=s,
    )


@dataclass(frozen=True)
class ParentLocator:
    platform: bytes
    data_space: int
    data_length: int
    data_offset: int
    reserved: int = 0

    @property
    def used(self) -> bool:
        return self.platform != NO_PLATFORM

    @property
    def space_bytes(self) -> int:
        """Data space in bytes: values < 512 are sectors (the spec), others bytes (every writer)."""
        return self.data_space * SECTOR if self.data_space < SECTOR else self.data_space


EMPTY_LOCATOR = ParentLocator(NO_PLATFORM, 0, 0, 0)


@dataclass(frozen=True)
class DynamicHeader:
    table_offset: int
    max_table_entries: int
    block_size: int
    parent_id: uuid.UUID = NIL_UUID
    parent_timestamp: int = 0
    parent_name: str = ""
    locators: tuple[ParentLocator, ...] = (EMPTY_LOCATOR,) * 8
    data_offset: int = NO_OFFSET
    version: int = VERSION
    checksum: int = field(default=0, compare=False)
    cookie: bytes = HEADER_COOKIE
    computed_checksum: int = field(default=0, compare=False)

    def pack(self) -> bytes:
        name = self.parent_name.encode("utf-16-be")
        if len(name) > 512:
            raise ValueError("parent name longer than 256 UTF-16 units")
        head = _HEADER.pack(
            self.cookie,
            self.data_offset,
            self.table_offset,
            self.version,
            self.max_table_entries,
            self.block_size,
            0,
            self.parent_id.bytes,
            self.parent_timestamp,
            0,
            name.ljust(512, b"\0"),
        )
        locs = b"".join(
            _LOCATOR.pack(loc.platform, loc.data_space, loc.data_length, loc.reserved, loc.data_offset)
            for loc in self.locators
        )
        raw = (head + locs).ljust(HEADER_SIZE, b"\0")
        csum = checksum(raw, _HEADER_CSUM_AT)
        return raw[:_HEADER_CSUM_AT] + struct.pack(">I", csum) + raw[_HEADER_CSUM_AT + 4 :]

    @classmethod
    def unpack(cls, raw: bytes) -> DynamicHeader:
        if len(raw) != HEADER_SIZE:
            raise CorruptImage(f"dynamic header: truncated ({len(raw)} of {HEADER_SIZE} bytes)")
        (cookie, data_offset, table_offset, version, entries, block_size, csum, pid, pstamp, _res, pname) = (
            _HEADER.unpack_from(raw)
        )
        if cookie != HEADER_COOKIE:
            raise CorruptImage(f"dynamic header: wrong magic {cookie!r} (expected {HEADER_COOKIE!r})")
        locs = tuple(ParentLocator(*_unpack_locator(raw, _LOCATORS_AT + i * _LOCATOR.size)) for i in range(8))
        name = pname.decode("utf-16-be", errors="replace")
        end = name.find("\0")
        return cls(
            table_offset=table_offset,
            max_table_entries=entries,
            block_size=block_size,
            parent_id=uuid.UUID(bytes=pid),
            parent_timestamp=pstamp,
            parent_name=name if end < 0 else name[:end],
            locators=locs,
            data_offset=data_offset,
            version=version,
            checksum=csum,
            cookie=cookie,
            computed_checksum=checksum(raw, _HEADER_CSUM_AT),
        )


def _unpack_locator(raw: bytes, at: int) -> tuple[bytes, int, int, int, int]:
    platform, space, length, reserved, offset = _LOCATOR.unpack_from(raw, at)
    return platform, space, length, offset, reserved


def bitmap_size(block_size: int) -> int:
    """Bytes of the sector bitmap in front of each block, padded to a sector."""
    spb = block_size // SECTOR
    return -(-((spb + 7) // 8) // SECTOR) * SECTOR


def round_up(n: int, to: int = SECTOR) -> int:
    return -(-n // to) * to
