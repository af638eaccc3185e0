"""Streaming copies (flatten, convert, raw -> VHD) and the merge loop: zero blocks stay out, direct
I/O and its fallbacks give the same disk, failures leave no target, memory stays bounded."""

from __future__ import annotations

import errno
import fcntl
import importlib
import os
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from hvcloud.storage import fileio
from hvcloud.storage.vhd import (
    Chain,
    CorruptImage,
    DiskType,
    VhdFile,
    chain_to_raw,
    chain_to_vhd,
    check,
    create_differencing,
    create_dynamic,
    merge,
    raw_to_vhd,
)
from hvcloud.storage.vhd import flatten as flatten_mod
from hvcloud.storage.vhd.image import _spans
from hvcloud.storage.vhd.structs import UNALLOCATED

merge_mod = importlib.import_module("hvcloud.storage.vhd.merge")

KiB = 1024
MiB = 1024 * KiB
BS = 512 * KiB
UNIT_BYTES = flatten_mod.UNIT


def _read_all(path: Path) -> bytes:
    with Chain(str(path)) as c:
        return c.read(0, c.size)


def _allocated(path: Path) -> list[int]:
    with VhdFile(str(path)) as vf:
        return [i for i, e in enumerate(vf.bat) if e != UNALLOCATED]


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """8 MiB in 512 KiB blocks. Parent: data in block 0, an allocated all-zero block 1, data in
    block 5. Child: zeros over all of block 0 (masking the parent), a partial write in block 3."""
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 8 * MiB, block_size=BS)
    with Chain(str(base), writable=True) as c:
        c.write(0, b"\x5a" * BS)
        c.write(BS, bytes(BS))
        c.write(5 * BS + 4096, os.urandom(100_000))
    create_differencing(str(child), str(base))
    with Chain(str(child), writable=True) as c:
        c.write(0, bytes(BS))
        c.write(3 * BS + 1000, b"\xc3" * 5000)
    return child


def test_flatten_leaves_all_zero_blocks_out(chain: Path, tmp_path: Path) -> None:
    out = tmp_path / "flat.vhd"
    chain_to_vhd(str(chain), str(out), DiskType.DYNAMIC)
    assert check(str(out)).ok
    assert _read_all(out) == _read_all(chain)
    assert _allocated(out) == [3, 5]


def test_raw_targets_stay_sparse(chain: Path, tmp_path: Path) -> None:
    raw = tmp_path / "flat.raw"
    chain_to_raw(str(chain), str(raw))
    assert raw.read_bytes() == _read_all(chain)
    assert os.stat(raw).st_blocks * 512 <= 2 * UNIT_BYTES
    back = tmp_path / "back.vhd"
    raw_to_vhd(str(raw), str(back), DiskType.DYNAMIC, block_size=BS)
    assert _read_all(back) == raw.read_bytes()
    assert _allocated(back) == [3, 5]
    fixed = tmp_path / "fixed.vhd"
    raw_to_vhd(str(raw), str(fixed), DiskType.FIXED)
    assert _read_all(fixed) == raw.read_bytes()
    assert os.path.getsize(fixed) == 8 * MiB + 512


@pytest.mark.parametrize("block_size", [4 * KiB, BS, 32 * MiB])
def test_flatten_block_sizes_match(chain: Path, tmp_path: Path, block_size: int) -> None:
    """Units never cross a block, whether blocks are smaller or larger than the write buffer."""
    out = tmp_path / "flat.vhd"
    chain_to_vhd(str(chain), str(out), DiskType.DYNAMIC, block_size=block_size)
    assert check(str(out)).ok
    assert _read_all(out) == _read_all(chain)


def _is_direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))


def test_buffered_fallback_gives_the_same_disk(chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    direct = tmp_path / "direct.vhd"
    chain_to_vhd(str(chain), str(direct), DiskType.DYNAMIC)
    monkeypatch.setattr(fileio, "open_direct", lambda path: None)
    buffered = tmp_path / "buffered.vhd"
    chain_to_vhd(str(chain), str(buffered), DiskType.DYNAMIC)
    assert _read_all(buffered) == _read_all(direct)
    assert _allocated(buffered) == _allocated(direct)
    with VhdFile(str(buffered)) as a, VhdFile(str(direct)) as b:
        assert list(a.bat) == list(b.bat)


def test_direct_io_refusing_the_alignment_falls_back(
    chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 KiB-sector device refuses 512-byte-aligned direct writes with EINVAL: the batch is
    written again through the ordinary descriptor and the rest of the copy stays buffered."""
    real = fileio.write_ranges
    refused: list[int] = []

    def write_ranges(fd: int, writes: Sequence[tuple[int, fileio.Buffer]]) -> list[tuple[int, int]]:
        if _is_direct(fd):
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, writes)

    monkeypatch.setattr(fileio, "write_ranges", write_ranges)
    out = tmp_path / "flat.vhd"
    chain_to_vhd(str(chain), str(out), DiskType.DYNAMIC)
    assert _read_all(out) == _read_all(chain)
    if hasattr(os, "O_DIRECT"):
        assert len(refused) == 1


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_write_failure_leaves_no_target(
    chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def write_ranges(fd: int, writes: Sequence[tuple[int, fileio.Buffer]]) -> list[tuple[int, int]]:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fileio, "write_ranges", write_ranges)
    before = sorted(os.listdir(tmp_path))
    for target, run in (
        ("flat.vhd", lambda p: chain_to_vhd(str(chain), p, DiskType.DYNAMIC)),
        ("fixed.vhd", lambda p: chain_to_vhd(str(chain), p, DiskType.FIXED, sparse=True)),
        ("flat.raw", lambda p: chain_to_raw(str(chain), p)),
    ):
        with pytest.raises(OSError) as exc:
            run(str(tmp_path / target))
        assert exc.value.errno == code
    assert sorted(os.listdir(tmp_path)) == before


def test_existing_target_is_kept_when_flatten_fails(
    chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "flat.vhd"
    out.write_bytes(b"previous contents")

    def write_ranges(fd: int, writes: Sequence[tuple[int, fileio.Buffer]]) -> list[tuple[int, int]]:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(fileio, "write_ranges", write_ranges)
    with pytest.raises(OSError):
        chain_to_vhd(str(chain), str(out), DiskType.DYNAMIC, overwrite=True)
    assert out.read_bytes() == b"previous contents"


def test_source_truncated_under_the_reader(tmp_path: Path) -> None:
    base = tmp_path / "base.vhd"
    create_dynamic(str(base), 4 * MiB, block_size=BS)
    with Chain(str(base), writable=True) as c:
        c.write(3 * BS, b"\x01" * BS)
    with Chain(str(base)) as c:
        os.truncate(base, os.path.getsize(base) - BS)
        view = memoryview(bytearray(BS))
        with pytest.raises(CorruptImage, match="past the end"):
            c.read_into(3 * BS // 512, view)


def test_read_into_leaves_the_view_alone_for_unallocated_sectors(chain: Path) -> None:
    buf = bytearray(b"\xaa" * BS)
    with Chain(str(chain)) as c:
        assert c.read_into(2 * BS // 512, memoryview(buf)) is False
        assert buf == b"\xaa" * BS
        assert c.read_into(3 * BS // 512, memoryview(buf)) is True
        assert buf == c.read(3 * BS, BS)


def test_progress_is_monotonic_and_complete(chain: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    chain_to_vhd(str(chain), str(tmp_path / "f.vhd"), DiskType.DYNAMIC, progress=lambda d, t: seen.append((d, t)))
    done = [d for d, _ in seen]
    assert done == sorted(done) and seen[-1] == (8 * MiB, 8 * MiB)


def test_memory_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Flatten, convert and merge of a 96 MiB chain (48 MiB in the child) allocate at most their
    fixed buffers, each smaller than the data they copy."""
    monkeypatch.setattr(merge_mod, "MERGE_BATCH", 4 * MiB)
    size = 96 * MiB
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), size)
    chunk = os.urandom(4 * MiB)
    with VhdFile(str(base), writable=True) as vf:
        vf.write_sectors([(off // 512, chunk) for off in range(0, size, 8 * MiB)])
    create_differencing(str(child), str(base))
    with VhdFile(str(child), writable=True) as vf:
        vf.write_sectors([(off // 512, chunk) for off in range(4 * MiB, size, 8 * MiB)])
    expected = _read_all(child)
    tracemalloc.start()
    try:
        chain_to_vhd(str(child), str(tmp_path / "flat.vhd"), DiskType.DYNAMIC)
        chain_to_raw(str(child), str(tmp_path / "flat.raw"))
        _, flatten_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        merge(str(child))
        _, merge_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert flatten_peak < 3 * flatten_mod.BATCH + 8 * MiB  # two buffers and the zero pattern
    assert merge_peak < 2 * merge_mod.MERGE_BATCH + 8 * MiB  # two batch buffers
    assert _read_all(base) == expected == _read_all(tmp_path / "flat.vhd")
    assert (tmp_path / "flat.raw").read_bytes() == expected


def test_merge_in_batches_smaller_than_an_extent(chain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _read_all(chain)
    monkeypatch.setattr(merge_mod, "MERGE_BATCH", 8 * KiB)
    dest = merge(str(chain))
    assert check(dest).ok
    assert _read_all(Path(dest)) == expected


def test_bat_spans() -> None:
    assert _spans([], gap=128) == []
    assert _spans([7], gap=128) == [(7, 8)]
    assert _spans([1, 3, 130, 300, 301], gap=128) == [(1, 131), (300, 302)]


def test_merge_without_direct_io_gives_the_same_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for name, direct in (("d", True), ("b", False)):
        d = tmp_path / name
        d.mkdir()
        base, child = d / "base.vhd", d / "child.vhd"
        create_dynamic(str(base), 4 * MiB, block_size=BS)
        with Chain(str(base), writable=True) as c:
            c.write(BS, b"\x11" * 3000)
        create_differencing(str(child), str(base))
        with Chain(str(child), writable=True) as c:
            c.write(100, b"\x22" * 70_000)
            c.write(3 * BS - 512, b"\x33" * 1024)
        if not direct:
            monkeypatch.setattr(fileio, "open_direct", lambda path: None)
        expected = _read_all(child)
        merge(str(child))
        assert check(str(base)).ok
        assert _read_all(base) == expected
        results.append((_allocated(base), expected))
    assert results[0] == results[1]


def test_merge_falls_back_when_direct_io_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB, block_size=BS)
    create_differencing(str(child), str(base))
    with Chain(str(child), writable=True) as c:
        c.write(0, os.urandom(3 * BS))
    expected = _read_all(child)
    real = fileio.write_ranges

    def write_ranges(fd: int, writes: Sequence[tuple[int, fileio.Buffer]]) -> list[tuple[int, int]]:
        if _is_direct(fd):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, writes)

    monkeypatch.setattr(fileio, "write_ranges", write_ranges)
    merge(str(child))
    assert check(str(base)).ok and _read_all(base) == expected


def test_new_block_over_leaked_space_reads_zeros_where_unwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that failed before its BAT update leaves its data in unreferenced space; the next
    allocation reuses that space, and its sectors that the new write does not cover must read as
    zeros, not as the old data."""
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 2 * MiB, block_size=BS)
    real = fileio.write_ranges
    with VhdFile(str(p), writable=True) as vf:
        vf.write_sectors([(0, b"\x99" * BS)])  # block 0: the next allocation goes after it

    def fail_after_data(fd: int, writes: Sequence[tuple[int, fileio.Buffer]]) -> list[tuple[int, int]]:
        real(fd, writes)
        raise OSError(errno.EIO, "injected after the data reached the file")

    with VhdFile(str(p), writable=True) as vf:
        monkeypatch.setattr(fileio, "write_ranges", fail_after_data)
        with pytest.raises(OSError):
            vf.write_sectors([(BS // 512, b"\xee" * BS)], direct=True)
        monkeypatch.setattr(fileio, "write_ranges", real)
    assert check(str(p)).ok
    with VhdFile(str(p), writable=True) as vf:
        vf.write_sectors([(2 * BS // 512 + 8, b"\x01" * 1024)], direct=True)
    data = _read_all(p)
    assert data[:BS] == b"\x99" * BS
    assert data[BS : 2 * BS] == bytes(BS)
    block2 = data[2 * BS : 3 * BS]
    assert block2[4096 : 4096 + 1024] == b"\x01" * 1024
    assert block2.count(0) == BS - 1024
