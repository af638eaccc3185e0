"""The positional I/O the VHD library uses, including the fallback Windows takes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from hvcloud.storage import fileio


@pytest.mark.parametrize("read,write", [(fileio.pread, fileio.pwrite), (fileio.seek_pread, fileio.seek_pwrite)])
def test_positional_reads_and_writes(tmp_path: Path, read: object, write: object) -> None:
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert write(fd, b"abcdef", 10) == 6  # type: ignore[operator]
        assert write(fd, b"XY", 12) == 2  # type: ignore[operator]
        assert read(fd, 6, 10) == b"abXYef"  # type: ignore[operator]
        assert read(fd, 4, 0) == b"\0\0\0\0"  # type: ignore[operator]
        assert read(fd, 10, 14) == b"ef"  # type: ignore[operator]
    finally:
        os.close(fd)


def test_fsync_dir(tmp_path: Path) -> None:
    fileio.fsync_dir(str(tmp_path))
    with pytest.raises(OSError):
        fileio.fsync_dir(str(tmp_path / "missing"))


def test_pread_into_fills_and_stops_at_end_of_file(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"0123456789")
    fd = fileio.open_fd(p, os.O_RDONLY)
    try:
        buf = bytearray(b"." * 8)
        assert fileio.pread_into(fd, memoryview(buf), 4) == 6
        assert buf == b"456789.."
        assert fileio.pread_into(fd, memoryview(buf)[:3], 100) == 0
        assert fileio.seek_preadv(fd, memoryview(buf)[:2], 0) == 2 and buf[:2] == b"01"
    finally:
        os.close(fd)


def test_pwrite_all_resumes_short_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel may write less than asked; every byte must still land, in order."""
    real = fileio._pwritev
    calls = {"n": 0}

    def stingy(fd: int, buffers: Sequence[fileio.Buffer], offset: int) -> int:
        calls["n"] += 1
        first = memoryview(buffers[0]).cast("B")
        return real(fd, [first[:3]], offset)

    monkeypatch.setattr(fileio, "_pwritev", stingy)
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fileio.pwrite_all(fd, [b"abcdefg", b"", bytearray(b"hi"), memoryview(b"jklmnop")[2:]], 5)
        assert fileio.pread(fd, 100, 0) == b"\0" * 5 + b"abcdefghilmnop"
        assert calls["n"] == 6
    finally:
        os.close(fd)


def test_pwrite_all_refuses_a_write_that_makes_no_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileio, "_pwritev", lambda fd, buffers, offset: 0)
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="no progress"):
            fileio.pwrite_all(fd, [b"x"], 0)
    finally:
        os.close(fd)


def test_pwrite_all_beyond_the_vector_limit(tmp_path: Path) -> None:
    parts = [bytes([i % 251]) * 3 for i in range(fileio.IOV_MAX * 2 + 7)]
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fileio.pwrite_all(fd, parts, 0)
        assert fileio.pread(fd, 10**6, 0) == b"".join(parts)
        assert fileio.seek_pwritev(fd, [b"AB", b"C"], 1) == 3
        assert fileio.pread(fd, 4, 0) == b"\0ABC"
    finally:
        os.close(fd)


def test_write_ranges_groups_adjacent_writes(tmp_path: Path) -> None:
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        runs = fileio.write_ranges(fd, [(0, b"abc"), (3, b"def"), (10, b"xy"), (12, b"z"), (20, b"!")])
        assert runs == [(0, 6), (10, 13), (20, 21)]
        assert fileio.pread(fd, 21, 0) == b"abcdef\0\0\0\0xyz" + b"\0" * 7 + b"!"
        assert fileio.write_ranges(fd, []) == []
    finally:
        os.close(fd)


def test_start_writeback_never_loses_data(tmp_path: Path) -> None:
    fd = fileio.open_fd(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        data = os.urandom(3 * 4096 + 700)
        fileio.pwrite(fd, data, 100)
        for offset, length in ((100, len(data)), (0, 10), (4096, 0), (5000, 4096 * 2)):
            fileio.start_writeback(fd, offset, length)
        assert fileio.pread(fd, len(data), 100) == data
    finally:
        os.close(fd)


def test_aligned_buffer_and_direct_descriptor(tmp_path: Path) -> None:
    import ctypes

    raw, start = fileio.aligned_buffer(8192)
    address = ctypes.addressof((ctypes.c_char * 1).from_buffer(raw))
    assert (address + start) % 4096 == 0 and len(raw) - start >= 8192 and not any(raw)
    assert fileio.open_direct(str(tmp_path / "missing" / "f")) is None
    (tmp_path / "f").write_bytes(b"")
    fd = fileio.open_direct(str(tmp_path / "f"))
    if fd is not None:  # None where the platform or file system has no direct I/O
        os.close(fd)
