"""Expand, set-parent, compact, merge guards, the metadata journal and interrupted writes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from hvcloud.storage import fileio
from hvcloud.storage.vhd import (
    Chain,
    OperationRefused,
    ParentMismatch,
    VhdError,
    VhdFile,
    check,
    compact,
    create_differencing,
    create_dynamic,
    create_fixed,
    expand,
    info,
    journal,
    merge,
    set_parent,
)
from tests.unit.storage.vhd.conftest import digest

MiB = 1024 * 1024


def _read_all(path: Path | str) -> bytes:
    with Chain(str(path)) as c:
        return c.read(0, c.size)


def _pattern(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def test_expand_dynamic_in_place_and_by_rebuild(tmp_path: Path) -> None:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 4 * MiB, block_size=512 * 1024)
    with Chain(str(p), writable=True) as c:
        c.write(MiB, _pattern(70000, 1))
    old = _read_all(p)
    with VhdFile(str(p)) as vf:
        uid = vf.footer.unique_id
    # 8 entries -> 64 fit in the BAT's sector padding
    assert expand(str(p), 32 * MiB) is True
    new = _read_all(p)
    assert new[: len(old)] == old and new[len(old) :] == bytes(28 * MiB)
    # 64 entries -> 4096 do not fit before the first block: the file is rebuilt
    assert expand(str(p), 2048 * MiB) is False
    with Chain(str(p), writable=True) as c:
        assert c.size == 2048 * MiB
        assert c.read(0, 4 * MiB) == old
        c.write(2047 * MiB, b"tail" * 128)
        assert c.read(2047 * MiB, 4) == b"tail"
    with VhdFile(str(p)) as vf:
        assert vf.footer.unique_id == uid and vf.footer.original_size == 4 * MiB
    assert check(str(p)).ok


def test_expand_fixed(tmp_path: Path) -> None:
    p = tmp_path / "f.vhd"
    create_fixed(str(p), MiB)
    with Chain(str(p), writable=True) as c:
        c.write(MiB - 3, b"end")
    expand(str(p), 3 * MiB)
    assert p.stat().st_size == 3 * MiB + 512
    data = _read_all(p)
    assert data[MiB - 3 : MiB] == b"end" and data[MiB:] == bytes(2 * MiB)
    assert os.stat(p).st_blocks * 512 >= 3 * MiB
    assert check(str(p)).ok


def test_expand_refusals(tmp_path: Path) -> None:
    p, c = tmp_path / "d.vhd", tmp_path / "c.vhd"
    create_dynamic(str(p), 4 * MiB)
    create_differencing(str(c), str(p))
    before = digest(p)
    with pytest.raises(OperationRefused, match="shrink"):
        expand(str(p), 2 * MiB)
    with pytest.raises(OperationRefused, match="differencing"):
        expand(str(c), 8 * MiB)
    with pytest.raises(VhdError, match="maximum"):
        expand(str(p), 4096 * 1024 * MiB)
    assert digest(p) == before


def test_set_parent_after_move(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "kids" / "child.vhd"
    child.parent.mkdir()
    create_dynamic(str(base), 4 * MiB)
    with Chain(str(base), writable=True) as c:
        c.write(0, b"parent" * 100)
    create_differencing(str(child), str(base))
    expected = _read_all(child)
    moved = tmp_path / "store" / "renamed.vhd"
    moved.parent.mkdir()
    os.rename(base, moved)
    with pytest.raises(VhdError, match="not found"):
        _read_all(child)
    assert set_parent(str(child), str(moved)) is True
    assert _read_all(child) == expected
    parent = info(str(child))["parent"]
    assert parent["name"] == "renamed.vhd"
    assert os.path.samefile(parent["path"], moved)
    assert any(loc["path"] == "..\\store\\renamed.vhd" for loc in parent["locators"])
    # found from another working directory, through the relative locator
    cwd = os.getcwd()
    try:
        os.chdir("/")
        assert _read_all(child) == expected
    finally:
        os.chdir(cwd)


def test_set_parent_identity_and_force(tmp_path: Path) -> None:
    base, other, child = tmp_path / "base.vhd", tmp_path / "other.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_dynamic(str(other), 4 * MiB)
    create_differencing(str(child), str(base))
    before = digest(child)
    with pytest.raises(ParentMismatch, match="force"):
        set_parent(str(child), str(other))
    assert digest(child) == before
    set_parent(str(child), str(other), force=True)
    with Chain(str(child)) as c:
        assert c.layers[1].path == str(other)
    assert not journal.pending(str(child))


def test_set_parent_refuses_loops_and_self(tmp_path: Path) -> None:
    base, c1, c2 = tmp_path / "base.vhd", tmp_path / "c1.vhd", tmp_path / "c2.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_differencing(str(c1), str(base))
    create_differencing(str(c2), str(c1))
    before = digest(c1)
    with pytest.raises(OperationRefused, match="loop"):
        set_parent(str(c1), str(c2), force=True)
    with pytest.raises(VhdError, match="own parent"):
        set_parent(str(c1), str(c1), force=True)
    assert digest(c1) == before


def test_compact_keeps_identity_and_contents(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 8 * MiB, block_size=512 * 1024)
    with Chain(str(base), writable=True) as c:
        c.write(0, b"\x01" * MiB)
        c.write(4 * MiB, bytes(MiB))
    create_differencing(str(child), str(base))
    st_before = base.stat()
    content = _read_all(child)
    saved = compact(str(base))
    assert saved == 2 * (512 * 1024 + 512)
    assert base.stat().st_mtime_ns == st_before.st_mtime_ns
    assert _read_all(child) == content
    assert check(str(child)).ok


def test_compact_keeps_zero_blocks_that_mask_the_parent(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB)
    with Chain(str(base), writable=True) as c:
        c.write(0, b"\xaa" * MiB)
    create_differencing(str(child), str(base))
    with Chain(str(child), writable=True) as c:
        c.write(0, bytes(4096))
    compact(str(child))
    assert _read_all(child)[:8192] == bytes(4096) + b"\xaa" * 4096


def test_fixed_cannot_be_compacted(tmp_path: Path) -> None:
    p = tmp_path / "f.vhd"
    create_fixed(str(p), MiB, sparse=True)
    with pytest.raises(OperationRefused, match="fixed"):
        compact(str(p))


def test_merge_refuses_when_parent_has_other_children(tmp_path: Path) -> None:
    base, a, b = tmp_path / "base.vhd", tmp_path / "a.vhd", tmp_path / "b.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_differencing(str(a), str(base))
    create_differencing(str(b), str(base))
    with Chain(str(a), writable=True) as c:
        c.write(0, b"A" * 512)
    before = digest(base)
    with pytest.raises(OperationRefused, match="other children"):
        merge(str(a))
    assert digest(base) == before and a.exists()
    merge(str(a), force=True)
    assert _read_all(base)[:1] == b"A"
    with pytest.raises(OperationRefused, match="differencing"):
        merge(str(base))


def test_merge_into_fixed_parent(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_fixed(str(base), 2 * MiB)
    create_differencing(str(child), str(base))
    with Chain(str(child), writable=True) as c:
        c.write(MiB - 100, b"x" * 300)
        expected = c.read(0, c.size)
    merge(str(child), keep=True)
    assert _read_all(base) == expected and child.exists()


def test_journal_replays_a_complete_record_and_drops_a_torn_one(tmp_path: Path) -> None:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 4 * MiB)
    original = p.read_bytes()
    jp = Path(journal.journal_path(str(p)))
    # complete record, crash before it was applied
    jp.write_bytes(journal._encode([(4096, b"\x01" * 16)], None))
    assert not check(str(p)).ok
    assert journal.recover(str(p)) == "replayed an interrupted metadata update"
    assert p.read_bytes()[4096:4112] == b"\x01" * 16 and not jp.exists()
    # torn record: the disk is left alone
    p.write_bytes(original)
    jp.write_bytes(journal._encode([(4096, b"\x02" * 16)], None)[:-5])
    assert "discarded" in (journal.recover(str(p)) or "")
    assert p.read_bytes() == original


def test_interrupted_writes_leave_old_or_new(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the Nth write system call of a multi-block allocation: the file must stay a valid
    disk whose contents are, per written range, the old or the new data."""
    template = tmp_path / "t.vhd"
    create_dynamic(str(template), 4 * MiB, block_size=512 * 1024)
    with Chain(str(template), writable=True) as c:
        c.write(0, b"\x11" * 700_000)
    old = _read_all(template)
    new_data = b"\x77" * 900_000
    real_pwrite, real_pwritev = fileio.pwrite, fileio._pwritev
    interrupted = 0
    for fail_at in range(0, 16):
        p = tmp_path / f"c{fail_at}.vhd"
        shutil.copy(template, p)
        calls = {"n": 0}

        def tick(_f: int = fail_at, _c: dict[str, int] = calls) -> None:
            if _c["n"] == _f:
                raise OSError(5, "injected I/O error")
            _c["n"] += 1

        def pwrite(fd: int, data: fileio.Buffer, off: int) -> int:
            tick()
            return real_pwrite(fd, data, off)

        def pwritev(fd: int, buffers: Sequence[fileio.Buffer], off: int) -> int:
            tick()
            return real_pwritev(fd, buffers, off)

        monkeypatch.setattr(fileio, "pwrite", pwrite)
        monkeypatch.setattr(fileio, "_pwritev", pwritev)
        try:
            with Chain(str(p), writable=True) as c:
                c.write(300_000, new_data)
            completed = True
        except OSError:
            completed = False
            interrupted += 1
        monkeypatch.setattr(fileio, "pwrite", real_pwrite)
        monkeypatch.setattr(fileio, "_pwritev", real_pwritev)
        report = check(str(p))
        assert report.ok, (fail_at, report.errors)
        got = _read_all(p)
        want_new = old[:300_000] + new_data + old[1_200_000:]
        if completed:
            assert got == want_new
            continue
        assert got[:300_000] == old[:300_000] and got[1_200_000:] == old[1_200_000:]
        # sectors of newly allocated blocks are all-old or all-new per block
        for lo in range(300_000, 1_200_000, 512 * 1024):
            hi = min(1_200_000, (lo // (512 * 1024) + 1) * 512 * 1024)
            assert got[lo:hi] in (old[lo:hi], want_new[lo:hi]), (fail_at, lo)
    # every write system call of the transaction was failed once, and the last runs completed
    assert 3 <= interrupted < 16
