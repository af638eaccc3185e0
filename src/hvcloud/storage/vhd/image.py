"""One VHD file: parsing with structural checks, sector mapping, and crash-consistent writes.

A :class:`VhdFile` knows nothing about parents; :mod:`hvcloud.storage.vhd.chain` stacks them.

Write protocol (dynamic and differencing files), applied per :meth:`VhdFile.write_sectors` call:

1. if blocks must be allocated, write the footer at the new end of file and fsync — the file is
   now longer, the old footer lies in unreferenced space, the disk is valid (leaked space only);
2. write the data (and the bitmaps of the *new* blocks, which nothing references yet; their
   sectors this call does not write are zeroed) and fsync — bulk callers may send the data past
   the page cache (``direct``), which changes nothing in this order;
3. write the BAT entries of the new blocks and the changed bitmaps of existing blocks, and fsync.

A crash at any point leaves either the old disk (plus unreferenced space that ``check`` reports
and ``compact`` reclaims) or the new one; the BAT never points at unwritten data and a sector bit
is never set before its data is on disk.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from hvcloud.storage import fileio
from hvcloud.storage.fileio import Buffer
from hvcloud.storage.vhd.errors import CorruptImage, OperationRefused, UnsupportedImage, VhdError
from hvcloud.storage.vhd.structs import (
    FOOTER_COOKIE,
    FOOTER_SIZE,
    HEADER_SIZE,
    MAX_SIZE,
    SECTOR,
    UNALLOCATED,
    VERSION,
    DiskType,
    DynamicHeader,
    Footer,
    bitmap_size,
    round_up,
)

#: a larger BAT cannot come from a sane disk (2040 GiB in 128 KiB blocks is 16 Mi entries)
MAX_BAT_ENTRIES = 16 * 1024 * 1024
MIN_BLOCK_SIZE = SECTOR
MAX_BLOCK_SIZE = 256 * 1024 * 1024


@dataclass(frozen=True)
class Run:
    """``count`` sectors from ``start``; ``present`` says whether this file holds them."""

    start: int
    count: int
    present: bool


def _fsync(fd: int, durable: bool) -> None:
    if durable:
        os.fsync(fd)


class VhdFile:
    """An open VHD file. Opening checks every structure a reader relies on and raises
    :class:`CorruptImage` naming the first problem; ``check`` reports the softer ones."""

    def __init__(self, path: str, *, writable: bool = False) -> None:
        self.path = path
        self.writable = writable
        #: descriptor for direct writes, opened on first use (-1: unavailable here)
        self._direct: int | None = None
        if os.path.isdir(path):
            raise VhdError(f"{path}: is a directory")
        try:
            self.fd = fileio.open_fd(path, (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise VhdError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise VhdError(f"{path}: is a directory") from None
        except PermissionError:
            raise VhdError(f"{path}: permission denied") from None
        try:
            self._load()
        except BaseException:
            os.close(self.fd)
            raise

    # -- parsing -----------------------------------------------------------------------------
    def _pread(self, n: int, at: int) -> bytes:
        return fileio.pread(self.fd, n, at)

    def _load(self) -> None:
        st = os.fstat(self.fd)
        self.file_size = st.st_size
        if self.file_size < FOOTER_SIZE:
            raise CorruptImage(f"{self.path}: truncated: {self.file_size} bytes, too short for a VHD footer")
        try:
            self.footer = Footer.unpack(
                self._pread(FOOTER_SIZE, self.file_size - FOOTER_SIZE),
                where=f"{self.path}: footer at end of file",
            )
        except CorruptImage:
            if self._pread(8, 0) == FOOTER_COOKIE:
                raise CorruptImage(
                    f"{self.path}: no valid footer at end of file although the copy at offset 0 exists: "
                    "the file is truncated or its end is damaged"
                ) from None
            raise
        f = self.footer
        if f.checksum != f.computed_checksum:
            raise CorruptImage(
                f"{self.path}: footer checksum mismatch (stored 0x{f.checksum:08x}, "
                f"computed 0x{f.computed_checksum:08x})"
            )
        if f.version >> 16 != VERSION >> 16:
            raise UnsupportedImage(f"{self.path}: unsupported VHD format version 0x{f.version:08x}")
        if f.current_size > MAX_SIZE:
            raise UnsupportedImage(
                f"{self.path}: absurd virtual size {f.current_size} bytes (VHD maximum is {MAX_SIZE})"
            )
        if f.current_size % SECTOR:
            raise UnsupportedImage(f"{self.path}: virtual size {f.current_size} is not a multiple of 512")
        self.header: DynamicHeader | None = None
        self.bat = array("I")
        self.block_size = 0
        self.data_end = self.file_size - FOOTER_SIZE
        if f.disk_type == DiskType.FIXED:
            if self.file_size - FOOTER_SIZE != f.current_size:
                what = "truncated" if self.file_size - FOOTER_SIZE < f.current_size else "has trailing data"
                raise CorruptImage(
                    f"{self.path}: fixed disk {what}: file holds "
                    f"{self.file_size - FOOTER_SIZE} data bytes, footer says {f.current_size}"
                )
            return
        self._load_dynamic()

    def _load_dynamic(self) -> None:
        f = self.footer
        min_len = FOOTER_SIZE * 2 + HEADER_SIZE
        if self.file_size < min_len:
            raise CorruptImage(
                f"{self.path}: truncated: {self.file_size} bytes, a dynamic disk needs at least {min_len}"
            )
        copy = Footer.unpack(self._pread(FOOTER_SIZE, 0), where=f"{self.path}: footer copy at offset 0")
        if copy.checksum != copy.computed_checksum:
            raise CorruptImage(
                f"{self.path}: footer copy at offset 0: checksum mismatch "
                f"(stored 0x{copy.checksum:08x}, computed 0x{copy.computed_checksum:08x})"
            )
        if copy != f:
            raise CorruptImage(f"{self.path}: footer copy at offset 0 differs from the footer at end of file")
        if (
            f.data_offset % SECTOR
            or f.data_offset < FOOTER_SIZE
            or f.data_offset + HEADER_SIZE > self.file_size - FOOTER_SIZE
        ):
            raise CorruptImage(f"{self.path}: dynamic header offset {f.data_offset} is outside the file")
        h = DynamicHeader.unpack(self._pread(HEADER_SIZE, f.data_offset))
        if h.checksum != h.computed_checksum:
            raise CorruptImage(
                f"{self.path}: dynamic header checksum mismatch (stored 0x{h.checksum:08x}, "
                f"computed 0x{h.computed_checksum:08x})"
            )
        if h.version >> 16 != VERSION >> 16:
            raise UnsupportedImage(f"{self.path}: unsupported dynamic header version 0x{h.version:08x}")
        bs = h.block_size
        if bs < MIN_BLOCK_SIZE or bs > MAX_BLOCK_SIZE or bs & (bs - 1):
            raise CorruptImage(
                f"{self.path}: invalid block size {bs} (must be a power of two, 512 B to 256 MiB)"
            )
        need = -(-f.current_size // bs)
        if h.max_table_entries < need:
            raise CorruptImage(
                f"{self.path}: BAT too small: {h.max_table_entries} entries of {bs} bytes "
                f"cannot hold {f.current_size} bytes"
            )
        if h.max_table_entries > MAX_BAT_ENTRIES:
            raise UnsupportedImage(f"{self.path}: absurd BAT size ({h.max_table_entries} entries)")
        bat_bytes = h.max_table_entries * 4
        if (
            h.table_offset % SECTOR
            or h.table_offset < FOOTER_SIZE
            or h.table_offset + bat_bytes > self.file_size - FOOTER_SIZE
        ):
            raise CorruptImage(
                f"{self.path}: BAT at offset {h.table_offset} ({bat_bytes} bytes) lies "
                f"outside the file ({self.file_size} bytes)"
            )
        if f.disk_type == DiskType.DIFFERENCING and h.parent_id.int == 0:
            raise CorruptImage(f"{self.path}: differencing disk without a parent id")
        self.header = h
        self.block_size = bs
        raw = self._pread(bat_bytes, h.table_offset)
        self.bat = array("I")
        self.bat.frombytes(raw)
        if sys.byteorder == "little":
            self.bat.byteswap()
        self.bitmap_bytes = bitmap_size(bs)
        self._check_layout()

    def metadata_regions(self) -> list[tuple[int, int, str]]:
        """(start, end, name) of every byte range that must not be used by a data block."""
        assert self.header is not None
        h = self.header
        regions = [
            (0, FOOTER_SIZE, "footer copy"),
            (self.footer.data_offset, self.footer.data_offset + HEADER_SIZE, "dynamic header"),
            (h.table_offset, h.table_offset + round_up(h.max_table_entries * 4), "BAT"),
        ]
        for i, loc in enumerate(h.locators):
            if loc.used and loc.data_length:
                regions.append(
                    (
                        loc.data_offset,
                        loc.data_offset + max(loc.space_bytes, loc.data_length),
                        f"parent locator {i}",
                    )
                )
        return regions

    def _check_layout(self) -> None:
        assert self.header is not None
        limit = self.file_size - FOOTER_SIZE
        for start, end, name in self.metadata_regions():
            if name.startswith("parent locator") and (start % SECTOR or end > limit):
                raise CorruptImage(f"{self.path}: {name} data at {start}..{end} lies outside the file")
        total = self.bitmap_bytes + self.block_size
        blocks = sorted((sec * SECTOR, i) for i, sec in enumerate(self.bat) if sec != UNALLOCATED)
        for start, idx in blocks:
            if start + total > limit:
                raise CorruptImage(
                    f"{self.path}: BAT entry {idx} points outside the file "
                    f"(block at {start}..{start + total}, data ends at {limit}): truncated?"
                )
        meta = sorted(self.metadata_regions())
        if blocks:
            for m_start, m_end, name in meta:
                # blocks are sorted, so only the ones starting before m_end can touch the region
                for start, idx in blocks:
                    if start >= m_end:
                        break
                    if start + total > m_start:
                        raise CorruptImage(
                            f"{self.path}: BAT entry {idx} (block at {start}) overlaps "
                            f"the {name} at {m_start}..{m_end}"
                        )
        for (a_start, a_idx), (b_start, b_idx) in itertools.pairwise(blocks):
            if b_start < a_start + total:
                raise CorruptImage(
                    f"{self.path}: blocks {a_idx} and {b_idx} overlap "
                    f"(at {a_start} and {b_start}, {total} bytes each)"
                )
        ends = [e for _, e, _ in meta]
        if blocks:
            ends.append(blocks[-1][0] + total)
        self.data_end = round_up(max(ends))

    # -- properties --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.footer.current_size

    @property
    def disk_type(self) -> DiskType:
        return self.footer.disk_type

    @property
    def sectors(self) -> int:
        return self.size // SECTOR

    @property
    def sectors_per_block(self) -> int:
        return self.block_size // SECTOR

    def allocated_blocks(self) -> int:
        return sum(1 for e in self.bat if e != UNALLOCATED)

    def close(self) -> None:
        if self._direct is not None and self._direct >= 0:
            os.close(self._direct)
        self._direct = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> VhdFile:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- mapping -----------------------------------------------------------------------------
    def read_bitmap(self, block: int) -> bytes:
        sec = self.bat[block]
        if sec == UNALLOCATED:
            return bytes(self.bitmap_bytes)
        return self._pread(self.bitmap_bytes, sec * SECTOR)

    def file_offset(self, sector: int) -> int:
        """Byte offset in this file of virtual ``sector``; the block must be allocated (or fixed)."""
        if self.header is None:
            return sector * SECTOR
        spb = self.sectors_per_block
        return self.bat[sector // spb] * SECTOR + self.bitmap_bytes + (sector % spb) * SECTOR

    def runs(self, start: int, count: int) -> list[Run]:
        """Which of ``count`` sectors from ``start`` this file holds, split at block boundaries.

        Fixed: all. Dynamic: allocated blocks (qemu ignores the bitmap too; never-written sectors
        are zero on disk). Differencing: the sector bitmap decides.
        """
        if self.header is None:
            return [Run(start, count, True)]
        out: list[Run] = []
        spb = self.sectors_per_block
        end = start + count
        s = start
        while s < end:
            block = s // spb
            block_end = min(end, (block + 1) * spb)
            if self.bat[block] == UNALLOCATED:
                out.append(Run(s, block_end - s, False))
            elif self.disk_type == DiskType.DYNAMIC:
                out.append(Run(s, block_end - s, True))
            else:
                base = block * spb
                for r_start, r_count, bit in bitmap_runs(self.read_bitmap(block), s - base, block_end - s):
                    out.append(Run(base + r_start, r_count, bit))
            s = block_end
        return _coalesce(out)

    def pieces(self, start: int, count: int) -> Iterator[tuple[int, int, int]]:
        """(sector, count, byte offset in this file) of present sectors, contiguous in the file."""
        if self.header is None:
            yield start, count, start * SECTOR
            return
        spb = self.sectors_per_block
        s, end = start, start + count
        while s < end:
            n = min(end, (s // spb + 1) * spb) - s
            yield s, n, self.file_offset(s)
            s += n

    def read_present(self, start: int, count: int) -> bytes:
        """Bytes of sectors that :meth:`runs` says are present."""
        return b"".join(self._pread(n * SECTOR, at) for _, n, at in self.pieces(start, count))

    # -- writing -----------------------------------------------------------------------------
    def write_sectors(
        self, extents: Sequence[tuple[int, Buffer]], *, durable: bool = True, direct: bool = False
    ) -> None:
        """Write whole sectors: ``extents`` are (first sector, data multiple of 512 bytes).

        Allocates blocks and sets bitmap bits as needed, following the protocol in the module
        docstring. Zero data is written like any other: in a differencing disk it must still
        mask the parent.

        ``direct``: bulk writers whose data lies in memory aligned for direct I/O
        (:func:`fileio.aligned_buffer`) let it bypass the page cache; the protocol is unchanged
        (each step still ends with its fsync). Refused alignments fall back to buffered writes.
        """
        if not self.writable:
            raise OperationRefused(f"{self.path}: opened read-only")
        for sector, data in extents:
            if len(data) % SECTOR or sector < 0 or sector + len(data) // SECTOR > self.sectors:
                raise VhdError(
                    f"{self.path}: write of {len(data)} bytes at sector {sector} is out of range "
                    f"or not sector-aligned"
                )
        if self.header is None:
            self._write_data(sorted((sector * SECTOR, data) for sector, data in extents), direct)
            _fsync(self.fd, durable)
            return
        spb = self.sectors_per_block
        stride = self.bitmap_bytes + self.block_size
        pieces: list[tuple[int, int, Buffer]] = []
        for sector, data in extents:
            s, off = sector, 0
            while off < len(data):
                block = s // spb
                n = min(len(data) - off, ((block + 1) * spb - s) * SECTOR)
                pieces.append((block, s, data[off : off + n]))
                off += n
                s += n // SECTOR
        new_blocks: dict[int, int] = {}
        alloc = self.data_end
        for block, _, _ in pieces:
            if self.bat[block] == UNALLOCATED and block not in new_blocks:
                new_blocks[block] = alloc
                alloc += stride
        old_len = self.file_size
        footer_at = max(alloc, old_len - FOOTER_SIZE)
        if footer_at > old_len - FOOTER_SIZE:
            fileio.pwrite(self.fd, self.footer.pack(), footer_at)
            self.file_size = footer_at + FOOTER_SIZE
            _fsync(self.fd, durable)
        scratch, first = fileio.aligned_buffer(len(new_blocks) * self.bitmap_bytes)
        fresh = memoryview(scratch)[first:]
        bitmaps: dict[int, bytearray | memoryview] = {}
        writes: list[tuple[int, Buffer]] = []
        for block, s, data in pieces:
            if block not in bitmaps:
                if block in new_blocks:
                    bitmaps[block], fresh = fresh[: self.bitmap_bytes], fresh[self.bitmap_bytes :]
                    writes.append((new_blocks[block], bitmaps[block]))
                else:
                    bitmaps[block] = bytearray(self.read_bitmap(block))
            set_bits(bitmaps[block], s - block * spb, len(data) // SECTOR)
            base = new_blocks[block] if block in new_blocks else self.bat[block] * SECTOR
            writes.append((base + self.bitmap_bytes + (s - block * spb) * SECTOR, data))
        writes.sort(key=lambda w: w[0])
        for at in new_blocks.values():
            # space below the old end may hold the old footer or leaked blocks: sectors of a new
            # block that this call does not write must read as zeros
            self._zero_gaps(at, min(at + stride, old_len), writes)
        self._write_data(writes, direct)
        _fsync(self.fd, durable)
        assert self.header is not None
        for block, at in new_blocks.items():
            self.bat[block] = at // SECTOR
        for first_block, end_block in _spans(sorted(new_blocks), gap=SECTOR // 4):
            self._write_bat(first_block, end_block)
        for block, bm in bitmaps.items():
            if block not in new_blocks:
                fileio.pwrite(self.fd, bytes(bm), self.bat[block] * SECTOR)
        _fsync(self.fd, durable)
        self.data_end = max(self.data_end, alloc)

    def _write_data(self, writes: Sequence[tuple[int, Buffer]], direct: bool) -> None:
        if direct:
            if self._direct is None:
                self._direct = fileio.open_direct(self.path) or -1
            if self._direct >= 0:
                try:
                    fileio.write_ranges(self._direct, writes)
                    return
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
        fileio.write_ranges(self.fd, writes)

    def _zero_gaps(self, start: int, end: int, writes: Sequence[tuple[int, Buffer]]) -> None:
        """Zero the bytes of ``start``..``end`` that none of the (sorted) ``writes`` covers."""
        at = start
        for offset, data in writes:
            if offset >= end:
                break
            if offset + len(data) <= at:
                continue
            self._zero(at, min(offset, end))
            at = max(at, offset + len(data))
        self._zero(at, end)

    def _write_bat(self, first: int, end: int) -> None:
        """BAT entries ``first``..``end`` from memory in one write; entries in between that did
        not change are rewritten with their own value, so a torn write leaves each entry old or new."""
        assert self.header is not None
        entries = self.bat[first:end]
        if sys.byteorder == "little":
            entries.byteswap()
        fileio.pwrite(self.fd, entries.tobytes(), self.header.table_offset + first * 4)

    def _zero(self, start: int, end: int) -> None:
        chunk = bytes(min(max(end - start, 0), 1 << 20))
        while start < end:
            n = min(len(chunk), end - start)
            fileio.pwrite(self.fd, chunk[:n], start)
            start += n


def _spans(indexes: list[int], *, gap: int) -> list[tuple[int, int]]:
    """Sorted ``indexes`` as (first, end) spans, joined across holes of up to ``gap`` indexes."""
    out: list[tuple[int, int]] = []
    for i in indexes:
        if out and i - out[-1][1] <= gap:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def _coalesce(runs: Iterable[Run]) -> list[Run]:
    out: list[Run] = []
    for r in runs:
        if out and out[-1].present == r.present and out[-1].start + out[-1].count == r.start:
            out[-1] = Run(out[-1].start, out[-1].count + r.count, r.present)
        else:
            out.append(r)
    return out


def bitmap_runs(bitmap: bytes, first: int, count: int) -> list[tuple[int, int, bool]]:
    """Runs of equal bits for sectors ``first``..``first+count`` of a block (MSB-first bitmap)."""
    out: list[tuple[int, int, bool]] = []
    i, end = first, first + count
    while i < end:
        byte_i = i >> 3
        if i & 7 == 0 and end - i >= 8:
            b = bitmap[byte_i]
            if b in (0, 0xFF):
                j = byte_i + 1
                last = end >> 3
                while j < last and bitmap[j] == b:
                    j += 1
                n = (j - byte_i) * 8
                _push(out, i, n, b == 0xFF)
                i += n
                continue
        bit = bool(bitmap[byte_i] & (0x80 >> (i & 7)))
        _push(out, i, 1, bit)
        i += 1
    return out


def _push(out: list[tuple[int, int, bool]], start: int, n: int, bit: bool) -> None:
    if out and out[-1][2] == bit and out[-1][0] + out[-1][1] == start:
        out[-1] = (out[-1][0], out[-1][1] + n, bit)
    else:
        out.append((start, n, bit))


def set_bits(bitmap: bytearray | memoryview, first: int, count: int) -> None:
    i, end = first, first + count
    while i < end:
        if i & 7 == 0 and end - i >= 8:
            n = (end - i) >> 3
            bitmap[i >> 3 : (i >> 3) + n] = b"\xff" * n
            i += n * 8
            continue
        bitmap[i >> 3] |= 0x80 >> (i & 7)
        i += 1
