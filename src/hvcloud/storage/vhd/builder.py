"""Writers of *new* VHD files, always into a temporary file beside the target that is fsynced
and renamed over it: a crash or an error leaves the old file (or no file), never half a disk."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import uuid
from array import array
from types import TracebackType

from hvcloud.storage import fileio
from hvcloud.storage.fileio import Buffer
from hvcloud.storage.vhd.errors import UnsupportedImage, VhdError
from hvcloud.storage.vhd.locators import LOCATOR_SPACE
from hvcloud.storage.vhd.structs import (
    DEFAULT_BLOCK_SIZE,
    EMPTY_LOCATOR,
    FOOTER_SIZE,
    HEADER_SIZE,
    MAX_SIZE,
    SECTOR,
    UNALLOCATED,
    DiskType,
    DynamicHeader,
    Footer,
    ParentLocator,
    bitmap_size,
    new_footer,
    round_up,
)

TABLE_OFFSET = FOOTER_SIZE + HEADER_SIZE


def check_size(size: int) -> None:
    if size <= 0 or size % SECTOR:
        raise UnsupportedImage(f"disk size {size} must be a positive multiple of 512 bytes")
    if size > MAX_SIZE:
        raise UnsupportedImage(f"disk size {size} exceeds the VHD maximum of {MAX_SIZE} bytes (2040 GiB)")


def check_block_size(block_size: int) -> None:
    if block_size < SECTOR or block_size > 256 * 1024 * 1024 or block_size & (block_size - 1):
        raise UnsupportedImage(f"block size {block_size} must be a power of two between 512 B and 256 MiB")


class _TempTarget:
    def __init__(self, path: str, *, overwrite: bool) -> None:
        if not overwrite and os.path.lexists(path):
            raise VhdError(f"{path}: already exists")
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise VhdError(f"{directory}: no such directory")
        self.fd, self.tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory
        )
        self.done = False

    def commit(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)
        os.replace(self.tmp, self.path)
        with contextlib.suppress(OSError):
            fileio.fsync_dir(os.path.dirname(os.path.abspath(self.path)))
        self.done = True

    def abort(self) -> None:
        if not self.done:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)
            self.done = True


class FixedBuilder:
    """A fixed disk: data written at its offsets, the footer appended on :meth:`commit`.

    ``sparse=False`` (the default) allocates every data byte, because Windows refuses sparse
    fixed VHDs."""

    def __init__(
        self,
        path: str,
        size: int,
        *,
        footer: Footer | None = None,
        sparse: bool = False,
        overwrite: bool = False,
    ) -> None:
        check_size(size)
        self.footer = footer or new_footer(DiskType.FIXED, size)
        self.size = size
        self._t = _TempTarget(path, overwrite=overwrite)
        self.fd = self._t.fd
        self.tmp = self._t.tmp
        try:
            os.ftruncate(self.fd, size)
            if not sparse:
                os.posix_fallocate(self.fd, 0, size)
        except OSError as exc:
            self._t.abort()
            raise VhdError(f"{path}: cannot allocate {size} bytes: {exc.strerror}") from None

    def write(self, offset: int, data: bytes) -> None:
        fileio.pwrite(self.fd, data, offset)

    def commit(self) -> None:
        fileio.pwrite(self.fd, self.footer.pack(), self.size)
        self._t.commit()

    def abort(self) -> None:
        self._t.abort()

    def __enter__(self) -> FixedBuilder:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if e is None:
            self.commit()
        else:
            self.abort()


class DynamicBuilder:
    """A dynamic or differencing disk written front to back: footer copy, header, BAT, locator
    data, then blocks in the order added, the BAT and footer completed on :meth:`commit`."""

    def __init__(
        self,
        path: str,
        footer: Footer,
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        parent_id: uuid.UUID | None = None,
        parent_timestamp: int = 0,
        parent_name: str = "",
        locators: list[tuple[bytes, bytes]] | None = None,
        overwrite: bool = False,
    ) -> None:
        check_size(footer.current_size)
        check_block_size(block_size)
        self.footer = footer
        self.block_size = block_size
        self.bitmap_bytes = bitmap_size(block_size)
        self.full_bitmap = b"\xff" * self.bitmap_bytes
        entries = -(-footer.current_size // block_size)
        self.bat = array("I", [UNALLOCATED]) * entries
        bat_end = TABLE_OFFSET + round_up(entries * 4)
        locs: list[ParentLocator] = []
        self._locator_data: list[tuple[int, bytes]] = []
        at = bat_end
        for platform, data in locators or []:
            space = max(LOCATOR_SPACE, round_up(len(data)))
            locs.append(ParentLocator(platform, space, len(data), at))
            self._locator_data.append((at, data))
            at += space
        locs += [EMPTY_LOCATOR] * (8 - len(locs))
        self.header = DynamicHeader(
            table_offset=TABLE_OFFSET,
            max_table_entries=entries,
            block_size=block_size,
            parent_id=parent_id or uuid.UUID(int=0),
            parent_timestamp=parent_timestamp,
            parent_name=parent_name,
            locators=tuple(locs),
        )
        self._t = _TempTarget(path, overwrite=overwrite)
        self.fd = self._t.fd
        self.tmp = self._t.tmp
        self.next = at

    def allocate(self, index: int) -> int:
        """Place block ``index`` at the end of the file and return the offset of its bitmap; the
        caller writes the bitmap and the data (any part left unwritten reads as zeros)."""
        if self.bat[index] != UNALLOCATED:
            raise VhdError(f"block {index} written twice")
        at = self.next
        self.bat[index] = at // SECTOR
        self.next += self.bitmap_bytes + self.block_size
        return at

    def add_block(self, index: int, data: Buffer, bitmap: bytes | None = None) -> None:
        """Append block ``index``; ``data`` may be shorter than a block (the rest reads as zero)."""
        at = self.allocate(index)
        fileio.pwrite_all(self.fd, [self.full_bitmap if bitmap is None else bitmap, data], at)

    def commit(self) -> None:
        try:
            for at, data in self._locator_data:
                fileio.pwrite(self.fd, data, at)
            fileio.pwrite(self.fd, self.footer.pack(), 0)
            fileio.pwrite(self.fd, self.header.pack(), FOOTER_SIZE)
            bat = array("I", self.bat)
            if sys.byteorder == "little":
                bat.byteswap()
            raw = bat.tobytes()
            fileio.pwrite(self.fd, raw + b"\xff" * (round_up(len(raw)) - len(raw)), TABLE_OFFSET)
            fileio.pwrite(self.fd, self.footer.pack(), self.next)
            os.ftruncate(self.fd, self.next + FOOTER_SIZE)
        except BaseException:
            self._t.abort()
            raise
        self._t.commit()

    def abort(self) -> None:
        self._t.abort()

    def __enter__(self) -> DynamicBuilder:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if e is None:
            self.commit()
        else:
            self.abort()
