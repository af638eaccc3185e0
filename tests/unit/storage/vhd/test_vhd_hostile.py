"""Malformed and hostile files: a clear error naming the problem, and the file left untouched."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from hvcloud.storage.vhd import (
    Chain,
    VhdError,
    check,
    create_differencing,
    create_dynamic,
    create_fixed,
    info,
)
from hvcloud.storage.vhd.image import VhdFile
from hvcloud.storage.vhd.structs import FOOTER_SIZE, DynamicHeader, Footer
from tests.unit.storage.vhd.conftest import digest

MiB = 1024 * 1024


def rewrite_footer(path: Path, **changes: object) -> None:
    """Rewrite both footers with valid checksums, so only the changed fields are wrong."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size - FOOTER_SIZE)
        old = Footer.unpack(f.read(FOOTER_SIZE))
        footer = replace(old, **changes)  # type: ignore[arg-type]
        f.seek(size - FOOTER_SIZE)
        f.write(footer.pack())
        if old.data_offset == 512:
            f.seek(0)
            f.write(footer.pack())


def rewrite_header(path: Path, **changes: object) -> None:
    with open(path, "r+b") as f:
        f.seek(512)
        header = replace(DynamicHeader.unpack(f.read(1024)), **changes)  # type: ignore[arg-type]
        f.seek(512)
        f.write(header.pack())


def poke(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset if offset >= 0 else path.stat().st_size + offset)
        f.write(data)


def bat_offset(path: Path) -> int:
    with VhdFile(str(path)) as vf:
        assert vf.header is not None
        return vf.header.table_offset


@pytest.fixture
def dyn(tmp_path: Path) -> Path:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 8 * MiB, block_size=512 * 1024)
    with Chain(str(p), writable=True) as c:
        c.write(0, b"\x11" * 4096)
        c.write(3 * MiB, b"\x22" * 4096)
    return p


def _truncate(n: int) -> Callable[[Path], None]:
    def f(p: Path) -> None:
        os.truncate(p, p.stat().st_size - n)

    return f


def _drop_last_block(p: Path) -> None:
    with open(p, "rb") as f:
        f.seek(-FOOTER_SIZE, os.SEEK_END)
        footer = f.read()
    os.truncate(p, p.stat().st_size - FOOTER_SIZE - 512 * 1024)
    with open(p, "ab") as f:
        f.write(footer)


def _bat(index: int, value: int) -> Callable[[Path], None]:
    def f(p: Path) -> None:
        poke(p, bat_offset(p) + 4 * index, struct.pack(">I", value))

    return f


def _overlap(p: Path) -> None:
    with VhdFile(str(p)) as vf:
        first = vf.bat[0]
    _bat(1, first + 1)(p)


def _resized_copy(p: Path) -> None:
    poke(p, 0, Footer.unpack(p.read_bytes()[:512]).with_size(4 * MiB).pack())


def _unmagic_both(p: Path) -> None:
    poke(p, -FOOTER_SIZE, b"NOTAVHD!")
    poke(p, 0, b"NOTAVHD!")


CORRUPTIONS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated": (_truncate(1000), "truncated"),
    "truncated-tail-footer": (_truncate(1), "truncated"),
    "last block cut, footer kept": (_drop_last_block, "points outside the file"),
    "eof footer checksum": (lambda p: poke(p, -FOOTER_SIZE + 64, b"\0\0\0\1"), "footer checksum mismatch"),
    "footer copy checksum": (lambda p: poke(p, 64, b"\0\0\0\1"), "offset 0: checksum mismatch"),
    "footer copy differs": (_resized_copy, "differs"),
    "header checksum": (lambda p: poke(p, 512 + 36, b"\0\0\0\1"), "dynamic header checksum mismatch"),
    "header magic": (lambda p: rewrite_header(p, cookie=b"cxsparsX"), "wrong magic"),
    "footer magic": (lambda p: poke(p, -FOOTER_SIZE, b"NOTAVHD!"), "no valid footer at end of file"),
    "both footers' magic": (_unmagic_both, "wrong magic"),
    "BAT entry outside file": (_bat(0, 0x7FFFFFF0), "BAT entry 0 points outside the file"),
    "BAT entry over header": (_bat(2, 1), "overlaps the dynamic header"),
    "overlapping blocks": (_overlap, "overlap"),
    "absurd size": (lambda p: rewrite_footer(p, current_size=1 << 60), "absurd virtual size"),
    "absurd BAT": (lambda p: rewrite_header(p, max_table_entries=0xFFFFFFFF), "absurd BAT"),
    "BAT past end of file": (lambda p: rewrite_header(p, max_table_entries=1 << 20), "outside the file"),
    "BAT too small": (lambda p: rewrite_header(p, max_table_entries=2), "BAT too small"),
    "block size not power of two": (
        lambda p: rewrite_header(p, block_size=3 * 512 * 1024),
        "invalid block size",
    ),
    "header offset outside": (lambda p: rewrite_footer(p, data_offset=1 << 40), "outside the file"),
    "BAT offset unaligned": (lambda p: rewrite_header(p, table_offset=1537), "outside the file"),
    "size not sector multiple": (lambda p: rewrite_footer(p, current_size=8 * MiB - 1), "multiple of 512"),
    "future version": (lambda p: rewrite_footer(p, version=0x00020000), "version"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_named_and_file_untouched(dyn: Path, name: str) -> None:
    corrupt, expected = CORRUPTIONS[name]
    corrupt(dyn)
    before = digest(dyn)
    mtime = dyn.stat().st_mtime_ns
    with pytest.raises(VhdError, match=expected):
        VhdFile(str(dyn))
    with pytest.raises(VhdError, match=expected):
        info(str(dyn))
    with pytest.raises(VhdError, match=expected):
        Chain(str(dyn), writable=True)
    report = check(str(dyn))
    assert not report.ok
    assert any(expected in e for e in report.errors), report.errors
    assert digest(dyn) == before
    assert dyn.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("content", [b"", b"x" * 100, b"\0" * 4096, b"conectix" + bytes(600)])
def test_not_a_vhd(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "junk.vhd"
    p.write_bytes(content)
    with pytest.raises(VhdError):
        VhdFile(str(p))
    assert not check(str(p)).ok
    assert p.read_bytes() == content


def test_fixed_truncated_and_padded(tmp_path: Path) -> None:
    p = tmp_path / "f.vhd"
    create_fixed(str(p), MiB, sparse=True)
    data = p.read_bytes()
    p.write_bytes(data[:4096] + data[-512:])
    with pytest.raises(VhdError, match="fixed disk truncated"):
        VhdFile(str(p))
    p.write_bytes(data[:-512] + bytes(512) + data[-512:])
    with pytest.raises(VhdError, match="trailing data"):
        VhdFile(str(p))


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(VhdError, match="no such file"):
        VhdFile(str(tmp_path / "nope.vhd"))
    with pytest.raises(VhdError, match="is a directory"):
        VhdFile(str(tmp_path))


def test_parent_loop(tmp_path: Path) -> None:
    base, c1, c2 = tmp_path / "base.vhd", tmp_path / "c1.vhd", tmp_path / "c2.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_differencing(str(c1), str(base))
    create_differencing(str(c2), str(c1))
    with VhdFile(str(c2)) as vf:
        c2_id = vf.footer.unique_id
    os.unlink(base)
    os.rename(c2, base)
    rewrite_header(c1, parent_id=c2_id)
    before = digest(c1)
    with pytest.raises(VhdError, match="loops"):
        Chain(str(c1))
    report = check(str(c1))
    assert any("loops" in e for e in report.errors)
    assert digest(c1) == before


def test_parent_missing_and_mismatched(tmp_path: Path) -> None:
    base, other, child = tmp_path / "base.vhd", tmp_path / "other.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_dynamic(str(other), 4 * MiB)
    create_differencing(str(child), str(base))
    os.rename(base, tmp_path / "moved.vhd")
    with pytest.raises(VhdError, match="not found"):
        Chain(str(child))
    os.rename(other, base)
    with pytest.raises(VhdError, match="has id"):
        Chain(str(child))
    assert any("has id" in e for e in check(str(child)).errors)


def test_parent_of_other_size(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB)
    create_differencing(str(child), str(base))
    rewrite_footer(base, current_size=3 * MiB)
    with pytest.raises(VhdError, match="differs from parent"):
        Chain(str(child))


def test_absurd_sizes_refused_at_create(tmp_path: Path) -> None:
    for size in (0, -512, 1000, 2041 * 1024**3):
        with pytest.raises(VhdError):
            create_dynamic(str(tmp_path / "x.vhd"), size)
    with pytest.raises(VhdError, match="block size"):
        create_dynamic(str(tmp_path / "x.vhd"), MiB, block_size=3000)
    assert not (tmp_path / "x.vhd").exists()
    assert os.listdir(tmp_path) == []


def test_out_of_range_io(dyn: Path) -> None:
    with Chain(str(dyn), writable=True) as c:
        with pytest.raises(VhdError, match="outside"):
            c.write(8 * MiB - 2, b"abc")
        with pytest.raises(VhdError):
            c.read(-1, 5)
        assert c.read(8 * MiB - 2, 100) == b"\0\0"
    with Chain(str(dyn)) as c, pytest.raises(VhdError, match="read-only"):
        c.write(0, b"x" * 512)
