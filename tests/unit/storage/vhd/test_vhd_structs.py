"""Codecs against the real Virtual PC differencing footer/header from libvhdi, and the spec's
CHS and checksum rules."""

from __future__ import annotations

import datetime
import itertools
import struct
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hvcloud.storage.vhd.errors import CorruptImage
from hvcloud.storage.vhd.image import bitmap_runs, set_bits
from hvcloud.storage.vhd.locators import decode_locator, encode_locators, relative_windows_path
from hvcloud.storage.vhd.structs import (
    MACX,
    W2KU,
    W2RU,
    DiskType,
    DynamicHeader,
    Footer,
    bitmap_size,
    checksum,
    chs_geometry,
    new_footer,
    unix_time,
)


def _utc(stamp: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(unix_time(stamp), tz=datetime.UTC)


def test_virtual_pc_differencing_footer(libvhdi_dir: Path) -> None:
    raw = (libvhdi_dir / "file_footer.1").read_bytes()
    f = Footer.unpack(raw)
    assert f.disk_type == DiskType.DIFFERENCING
    assert (f.current_size, f.original_size) == (536870912, 536870912)
    assert (f.cylinders, f.heads, f.sectors_per_track) == (1040, 16, 63)
    assert f.chs_size == 536739840
    assert f.creator_app == b"vpc " and f.creator_host == b"Wi2k"
    assert f.unique_id == uuid.UUID("40d56d36-9ab8-4fe4-a31a-121fe2bf15eb")
    assert _utc(f.timestamp) == datetime.datetime(2013, 5, 12, 8, 57, 20, tzinfo=datetime.UTC)
    assert f.checksum == 0xFFFFF023 == f.computed_checksum
    assert f.pack() == raw


def test_virtual_pc_differencing_header(libvhdi_dir: Path) -> None:
    raw = (libvhdi_dir / "dynamic_disk_header.1").read_bytes()
    h = DynamicHeader.unpack(raw)
    assert h.table_offset == 0x600
    assert h.max_table_entries == 256
    assert h.block_size == 2 * 1024 * 1024
    assert h.checksum == 0xFFFFE1C1 == h.computed_checksum
    assert h.parent_id == uuid.UUID("d49c5c80-350a-4a89-898a-5ad6d10f6578")
    assert _utc(h.parent_timestamp) == datetime.datetime(2013, 5, 12, 7, 55, 40, tzinfo=datetime.UTC)
    assert h.parent_name == "dynamic.vhd"
    used = [
        (loc.platform, loc.data_offset, loc.data_length, loc.space_bytes) for loc in h.locators if loc.used
    ]
    assert sorted(used, key=lambda u: u[1]) == [
        (b"Wi2r", 0xC00, 13, 512),
        (b"Wi2k", 0xE00, 21, 512),
        (b"W2ru", 0x1000, 26, 512),
        (b"W2ku", 0x1200, 42, 512),
    ]
    assert h.pack() == raw


def test_footer_checksum_flags_a_flipped_byte(libvhdi_dir: Path) -> None:
    raw = bytearray((libvhdi_dir / "file_footer.1").read_bytes())
    raw[50] ^= 0x01
    f = Footer.unpack(bytes(raw))
    assert f.checksum != f.computed_checksum


@pytest.mark.parametrize("raw", [b"", b"conectix", b"x" * 511, b"NOTAVHD!" + bytes(504)])
def test_footer_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(CorruptImage):
        Footer.unpack(raw)


def test_footer_rejects_unknown_disk_type(libvhdi_dir: Path) -> None:
    raw = bytearray((libvhdi_dir / "file_footer.1").read_bytes())
    struct.pack_into(">I", raw, 60, 7)
    with pytest.raises(CorruptImage, match="unknown disk type 7"):
        Footer.unpack(bytes(raw))


def test_header_rejects_wrong_magic() -> None:
    with pytest.raises(CorruptImage, match="wrong magic"):
        DynamicHeader.unpack(b"cxsparsX" + bytes(1016))


@pytest.mark.parametrize(
    ("size", "chs"),
    [
        (104857600, (1003, 12, 17)),
        (1073741824, (2080, 16, 63)),
        (8 * 964 * 17 * 512, (964, 8, 17)),
        (16 * 65535 * 255 * 512, (65535, 16, 255)),
        (0xFF000000 * 512, (65535, 16, 255)),
    ],
)
def test_chs_geometry(size: int, chs: tuple[int, int, int]) -> None:
    assert chs_geometry(size) == chs


@pytest.mark.parametrize(
    "qemu_size", [1079296, 10514432, 104865792, 1073995776, 4295467008, 42951106560, 136365219840]
)
def test_chs_of_qemu_rounded_sizes_is_exact(qemu_size: int) -> None:
    c, h, s = chs_geometry(qemu_size)
    assert c * h * s * 512 == qemu_size


@given(st.integers(min_value=1, max_value=0xFF000000))
def test_chs_is_a_floor(sectors: int) -> None:
    c, h, s = chs_geometry(sectors * 512)
    assert c * h * s <= sectors
    assert h <= 16 and s <= 255 and c <= 65535


def test_new_footer_round_trips() -> None:
    f = new_footer(DiskType.DYNAMIC, 10 * 1024**3)
    g = Footer.unpack(f.pack())
    assert g == f and g.checksum == g.computed_checksum
    assert g.creator_app == b"win " and g.features == 2 and g.data_offset == 512


def test_checksum_is_ones_complement_of_byte_sum() -> None:
    data = bytes(range(256)) * 2
    assert checksum(data, 64) == ~(sum(data) - sum(data[64:68])) & 0xFFFFFFFF


def test_bitmap_size() -> None:
    assert bitmap_size(2 * 1024 * 1024) == 512
    assert bitmap_size(512 * 1024) == 512
    assert bitmap_size(64 * 1024 * 1024) == 16384


@given(
    st.lists(st.tuples(st.integers(0, 4095), st.integers(1, 300)), max_size=20),
    st.integers(0, 4095),
    st.integers(1, 4096),
)
def test_bitmap_runs_match_bit_by_bit(writes: list[tuple[int, int]], first: int, count: int) -> None:
    bm = bytearray(512)
    for s, n in writes:
        set_bits(bm, s, min(n, 4096 - s))
    count = min(count, 4096 - first)
    runs = bitmap_runs(bytes(bm), first, count)
    expanded = [bit for _, n, bit in runs for _ in range(n)]
    assert expanded == [bool(bm[i >> 3] & (0x80 >> (i & 7))) for i in range(first, first + count)]
    assert all(a[2] != b[2] for a, b in itertools.pairwise(runs))


def test_locators_round_trip(tmp_path: Path) -> None:
    parent = tmp_path / "base" / "parent disk.vhd"
    child = tmp_path / "kids" / "child.vhd"
    locs = dict(encode_locators(str(parent), str(child)))
    assert decode_locator(W2RU, locs[W2RU]) == "..\\base\\parent disk.vhd"
    assert decode_locator(W2KU, locs[W2KU]) == str(parent).replace("/", "\\")
    assert decode_locator(MACX, locs[MACX]) == str(parent)
    assert relative_windows_path(str(tmp_path / "p.vhd"), str(tmp_path)) == ".\\p.vhd"


@pytest.mark.parametrize("data", [b"\xff\xfe\xfd", b"http://example.com/x", b""])
def test_undecodable_locators_give_none(data: bytes) -> None:
    assert decode_locator(MACX, data) is None
