"""Streaming a disk out: a chain to a raw file or to a new fixed or dynamic VHD (flatten), and a
raw image to a new VHD.

Every path reads into reused buffers (no allocation per block), leaves out units that are all
zero (the target stays sparse; a dynamic target leaves such blocks unallocated) and writes runs of
adjacent ranges with one vectored call each (:class:`BatchWriter`). Targets are new files built beside the destination
and fsynced once before the rename (:mod:`hvcloud.storage.vhd.builder`): nothing references a new
file until it is complete, so a crash leaves no target or the old one and no per-block fsync is
needed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from hvcloud.storage import fileio
from hvcloud.storage.fileio import Buffer
from hvcloud.storage.vhd.builder import DynamicBuilder, FixedBuilder, _TempTarget
from hvcloud.storage.vhd.chain import Chain, Progress
from hvcloud.storage.vhd.errors import VhdError
from hvcloud.storage.vhd.structs import DEFAULT_BLOCK_SIZE, SECTOR, UNALLOCATED, DiskType, new_footer

#: bytes held between vectored writes; bounds the memory of every streaming copy
BATCH = 16 * 1024 * 1024
#: granularity of zero detection for raw and fixed targets
UNIT = 2 * 1024 * 1024

#: fills a view with guest sectors from the given one; False when the source holds none of them
Filler = Callable[[int, memoryview], bool]
#: where ``count`` guest sectors from ``start`` go in the target (allocating space if the format
#: needs to), and the bytes that must be written just before them (a new block's bitmap)
Placer = Callable[[int, int], tuple[int, bytes]]


class BatchWriter:
    """Positional writes of slices of a reused buffer, issued when it fills as one vectored write
    per run of adjacent file ranges.

    The target is a new file nobody reads until it is committed, so the data bypasses the page
    cache (``O_DIRECT`` through a second descriptor on ``path``, from page-aligned buffers): on a
    busy host, writing back gigabytes of dirty pages before the closing fsync cost several times
    what the copy did (``bench/vhd.py`` measures it). Where direct I/O is unavailable or refuses
    an alignment (EINVAL, e.g. a 4 KiB-sector device), the writes go through ``fd`` and each
    run's writeback is started at once (:func:`fileio.start_writeback`).

    There are two buffers: while one is being written by a worker thread, the caller fills the
    other, so reading the source overlaps with the disk. One write is in flight at most; its
    error surfaces at the next flush or at :meth:`close`."""

    def __init__(self, fd: int, path: str | None = None, *, size: int = BATCH) -> None:
        self.fd = fd
        self._direct = fileio.open_direct(path) if path else None
        self._buffers = [fileio.aligned_buffer(size), fileio.aligned_buffer(size)]
        self._size = size
        self._turn = 0
        self._raw, self._base = self._buffers[0]
        self._view = memoryview(self._raw)[self._base : self._base + size]
        self._zero = memoryview(bytes(size))
        self._used = 0
        self._queue: list[tuple[int, Buffer]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vhd-writer")
        self._pending: Future[None] | None = None

    @property
    def direct(self) -> bool:
        return self._direct is not None

    def space(self, n: int) -> memoryview:
        """The next ``n`` free bytes of the buffer (flushing first if they do not fit)."""
        if n > self._size:
            raise VhdError(f"unit of {n} bytes exceeds the {self._size}-byte write buffer")
        if self._used + n > self._size:
            self.flush()
        return self._view[self._used : self._used + n]

    def is_zero(self, first: int, n: int) -> bool:
        """Whether bytes ``first``..``first+n`` of the last :meth:`space` are all zero."""
        return self._raw.startswith(self._zero[:n], self._base + self._used + first)

    def take(self, offset: int, first: int, n: int) -> None:
        """Queue bytes ``first``..``first+n`` of the last :meth:`space` for writing at ``offset``;
        the space up to their end is used."""
        at = self._used + first
        self._queue.append((offset, self._view[at : at + n]))
        self._used = at + n

    def flush(self) -> None:
        """Hand what is queued to the worker (after the previous write has finished) and switch
        to the other buffer."""
        self._wait()
        if self._queue:
            self._pending = self._pool.submit(self._write, self._queue)
            self._queue = []
            self._turn ^= 1
            self._raw, self._base = self._buffers[self._turn]
            self._view = memoryview(self._raw)[self._base : self._base + self._size]
        self._used = 0

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _write(self, queue: list[tuple[int, Buffer]]) -> None:
        if self._direct is not None:
            try:
                fileio.write_ranges(self._direct, queue)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._close_direct()
        for start, end in fileio.write_ranges(self.fd, queue):
            fileio.start_writeback(self.fd, start, end - start)

    def _close_direct(self) -> None:
        if self._direct is not None:
            os.close(self._direct)
            self._direct = None

    def close(self) -> None:
        """Write what is queued, wait for it, and release the worker and the direct descriptor."""
        try:
            self.flush()
            self._wait()
        finally:
            self._pool.shutdown(wait=True)
            self._close_direct()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if e is None:
            self.close()
        else:
            self._pool.shutdown(wait=True)
            self._close_direct()


def stream(
    fill: Filler,
    sectors: int,
    unit: int,
    writer: BatchWriter,
    place: Placer,
    progress: Progress | None = None,
    *,
    room: int = 0,
) -> None:
    """Copy ``sectors`` guest sectors ``unit`` bytes at a time; all-zero units are not written.

    ``room`` bytes are kept free in front of every unit for what ``place`` asks to be written
    just before it, so that both go out in one piece from aligned memory."""
    step = unit // SECTOR
    for start in range(0, sectors, step):
        n = min(step, sectors - start)
        view = writer.space(room + n * SECTOR)
        if fill(start, view[room:]) and not writer.is_zero(room, n * SECTOR):
            offset, prefix = place(start, n)
            first = room - len(prefix)
            view[first:room] = prefix
            writer.take(offset - len(prefix), first, len(prefix) + n * SECTOR)
        if progress:
            progress((start + n) * SECTOR, sectors * SECTOR)


def _linear(start: int, count: int) -> tuple[int, bytes]:
    return start * SECTOR, b""


def _dynamic_placer(db: DynamicBuilder) -> Placer:
    """Allocates a block of the new disk the first time one of its units holds data."""
    spb = db.block_size // SECTOR

    def place(start: int, count: int) -> tuple[int, bytes]:
        block = start // spb
        bitmap = b""
        if db.bat[block] == UNALLOCATED:
            db.allocate(block)
            bitmap = db.full_bitmap
        return db.bat[block] * SECTOR + db.bitmap_bytes + (start - block * spb) * SECTOR, bitmap

    return place


def _raw_filler(fd: int) -> Filler:
    """Reads a raw file; ranges the file system reports as holes are not read."""

    def fill(start: int, view: memoryview) -> bool:
        offset = start * SECTOR
        seek_data = getattr(os, "SEEK_DATA", None)
        if seek_data is not None:
            try:
                if os.lseek(fd, offset, seek_data) >= offset + len(view):
                    return False
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    return False
        n = fileio.pread_into(fd, view, offset)
        if n < len(view):
            view[n:] = bytes(len(view) - n)
        return True

    return fill


def _to_new_disk(
    fill: Filler,
    size: int,
    dst: str,
    disk_type: DiskType,
    *,
    block_size: int,
    progress: Progress | None,
    overwrite: bool,
    sparse: bool,
) -> None:
    if disk_type == DiskType.FIXED:
        fb = FixedBuilder(dst, size, sparse=sparse, overwrite=overwrite)
        try:
            with BatchWriter(fb.fd, fb.tmp) as writer:
                stream(fill, size // SECTOR, UNIT, writer, _linear, progress)
            fb.commit()
        except BaseException:
            fb.abort()
            raise
        return
    if disk_type != DiskType.DYNAMIC:
        raise VhdError("flattening produces a fixed or dynamic disk, not a differencing one")
    db = DynamicBuilder(dst, new_footer(DiskType.DYNAMIC, size), block_size=block_size, overwrite=overwrite)
    try:
        with BatchWriter(db.fd, db.tmp) as writer:
            unit = min(block_size, BATCH // 2)
            stream(fill, size // SECTOR, unit, writer, _dynamic_placer(db), progress, room=db.bitmap_bytes)
        db.commit()
    except BaseException:
        db.abort()
        raise


def chain_to_raw(src: str, dst: str, *, progress: Progress | None = None, overwrite: bool = False) -> None:
    """The guest-visible contents of VHD ``src`` (any type, chain resolved) as sparse raw ``dst``."""
    with Chain(src) as chain:
        target = _TempTarget(dst, overwrite=overwrite)
        try:
            os.ftruncate(target.fd, chain.size)
            with BatchWriter(target.fd, target.tmp) as writer:
                stream(chain.read_into, chain.top.sectors, UNIT, writer, _linear, progress)
            target.commit()
        except BaseException:
            target.abort()
            raise


def chain_to_vhd(
    src: str,
    dst: str,
    disk_type: DiskType,
    *,
    block_size: int | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    sparse: bool = False,
) -> None:
    """Flatten ``src`` into a new fixed or dynamic disk ``dst`` (all-zero blocks left out)."""
    if disk_type == DiskType.DIFFERENCING:
        raise VhdError("flattening produces a fixed or dynamic disk, not a differencing one")
    with Chain(src) as chain:
        bs = block_size or chain.layers[-1].block_size or chain.top.block_size or DEFAULT_BLOCK_SIZE
        _to_new_disk(
            chain.read_into,
            chain.size,
            dst,
            disk_type,
            block_size=bs,
            progress=progress,
            overwrite=overwrite,
            sparse=sparse,
        )


def raw_to_vhd(
    src: str,
    dst: str,
    disk_type: DiskType,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: Progress | None = None,
    overwrite: bool = False,
    sparse: bool = False,
) -> None:
    """A raw image as a new fixed or dynamic VHD; holes and zero blocks stay unallocated."""
    fd = fileio.open_fd(src, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size % SECTOR:
            raise VhdError(f"{src}: raw image size {size} is not a multiple of 512")
        _to_new_disk(
            _raw_filler(fd),
            size,
            dst,
            disk_type,
            block_size=block_size,
            progress=progress,
            overwrite=overwrite,
            sparse=sparse,
        )
    finally:
        os.close(fd)
