"""Positional file I/O that works on every platform the agent runs on.

The VHD/VHDX code reads and writes at offsets with ``pread``/``pwrite``, which Windows lacks. There
the same calls are made with ``lseek`` + ``read``/``write`` under a per-process lock (the descriptors
are not shared between threads mid-call), and every descriptor is opened in binary mode.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import threading
from collections.abc import Sequence

#: what the vectored calls accept
Buffer = bytes | bytearray | memoryview

#: add to every ``os.open`` flag set: binary mode on Windows, nothing elsewhere
BINARY = getattr(os, "O_BINARY", 0)
_LOCK = threading.Lock()


def open_fd(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
    return os.open(path, flags | BINARY, mode)


def seek_pread(fd: int, length: int, offset: int) -> bytes:
    """``pread`` for platforms without it: moves the shared offset, so calls are serialised."""
    with _LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)


def seek_pwrite(fd: int, data: Buffer, offset: int) -> int:
    with _LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.write(fd, data)


pread = os.pread if hasattr(os, "pread") else seek_pread
pwrite = os.pwrite if hasattr(os, "pwrite") else seek_pwrite
#: ``writev`` takes at most this many buffers per call (Linux IOV_MAX)
IOV_MAX = 1024


def seek_preadv(fd: int, view: memoryview, offset: int) -> int:
    data = seek_pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def seek_pwritev(fd: int, buffers: Sequence[Buffer], offset: int) -> int:
    return seek_pwrite(fd, b"".join(buffers), offset)


def _native_preadv(fd: int, view: memoryview, offset: int) -> int:
    return os.preadv(fd, [view], offset)


def _native_pwritev(fd: int, buffers: Sequence[Buffer], offset: int) -> int:
    return os.pwritev(fd, buffers, offset)


_preadv = _native_preadv if hasattr(os, "preadv") else seek_preadv
_pwritev = _native_pwritev if hasattr(os, "pwritev") else seek_pwritev


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from file ``offset`` without allocating; returns the bytes read, fewer than
    ``len(view)`` only at end of file."""
    done = 0
    while done < len(view):
        n = _preadv(fd, view[done:], offset + done)
        if n <= 0:
            break
        done += n
    return done


def pwrite_all(fd: int, buffers: Sequence[Buffer], offset: int) -> None:
    """Write ``buffers`` back to back from ``offset``, in as few system calls as the kernel allows
    (short writes are resumed)."""
    views = [memoryview(b).cast("B") for b in buffers if len(b)]
    i = 0
    while i < len(views):
        n = _pwritev(fd, views[i : i + IOV_MAX], offset)
        if n <= 0:
            raise OSError(f"write at offset {offset} made no progress")
        offset += n
        while i < len(views) and n >= len(views[i]):
            n -= len(views[i])
            i += 1
        if n:
            views[i] = views[i][n:]


def write_ranges(fd: int, writes: Sequence[tuple[int, Buffer]]) -> list[tuple[int, int]]:
    """Write (offset, data) pairs, each run of adjacent ranges (in the order given) with one
    vectored call; returns the (start, end) of every run."""
    runs: list[tuple[int, int]] = []
    group: list[Buffer] = []
    start = end = 0
    for offset, data in writes:
        if group and offset != end:
            pwrite_all(fd, group, start)
            runs.append((start, end))
            group = []
        if not group:
            start = end = offset
        group.append(data)
        end += len(data)
    if group:
        pwrite_all(fd, group, start)
        runs.append((start, end))
    return runs


def open_direct(path: str) -> int | None:
    """A second, write-only descriptor on ``path`` that bypasses the page cache (``O_DIRECT``),
    or None where the platform or the file system has none.

    Writes through it must be aligned to the device's logical block size in offset, length and
    memory address (see :func:`aligned_buffer`); a misaligned one fails with EINVAL before
    writing anything, so callers fall back to their ordinary descriptor on EINVAL."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        return os.open(path, os.O_WRONLY | flag | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


def aligned_buffer(size: int, align: int = mmap.PAGESIZE) -> tuple[bytearray, int]:
    """A zeroed bytearray and the offset in it at which ``size`` bytes aligned to ``align`` start
    (direct I/O needs aligned memory). The array must never be resized."""
    raw = bytearray(size + align)
    address = ctypes.addressof((ctypes.c_char * 1).from_buffer(raw))
    return raw, -address % align


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a just-written range to disk now and let its pages go once clean
    (``POSIX_FADV_DONTNEED`` starts asynchronous writeback of dirty pages and drops clean ones;
    it never discards data). A no-op where the call does not exist.

    For files written once and not read back: the copy overlaps with the disk instead of leaving
    everything to the final fsync, and the page cache is not filled with the copy. Only whole
    pages inside the range are touched: a partly written edge page is usually completed by the
    next write, and dropping it would make that write read it back from disk first."""
    first = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (offset + length) // mmap.PAGESIZE * mmap.PAGESIZE
    if end > first and hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, first, end - first, os.POSIX_FADV_DONTNEED)


def fsync_dir(path: str) -> None:
    """Make a rename durable: fsync the directory (POSIX only; NTFS has no directory handles here)."""
    if os.name != "posix":
        return
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
