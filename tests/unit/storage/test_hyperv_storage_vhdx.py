"""The minimal VHDX reader/writer: cross-checked with qemu-img and libvhdi, and hostile files."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest

from hvcloud.storage import qemu_img, vhdx
from hvcloud.storage.errors import ImageError
from hvcloud.storage.hyperv.checks import inspect_hyperv_image

MiB = 1024 * 1024


def test_crc32c_known_vector() -> None:
    assert vhdx.crc32c(b"123456789") == 0xE3069283


def test_dynamic_vhdx_is_read_by_qemu_img(tmp_path: Path) -> None:
    if not qemu_img.available():
        pytest.skip("qemu-img is not installed")
    path = tmp_path / "d.vhdx"
    vhdx.create_dynamic(path, 3 * 1024 * MiB)
    info = qemu_img.info(str(path), "vhdx")
    assert info.virtual_size == 3 * 1024 * MiB
    qemu_img.check(str(path), "vhdx")
    vhdx.set_virtual_size(path, 5 * 1024 * MiB)
    assert qemu_img.info(str(path), "vhdx").virtual_size == 5 * 1024 * MiB


def test_qemu_made_vhdx_is_read_by_us(tmp_path: Path) -> None:
    if not qemu_img.available():
        pytest.skip("qemu-img is not installed")
    path = tmp_path / "q.vhdx"
    qemu_img.create(str(path), "vhdx", 7 * MiB)
    info = vhdx.read_info(path)
    assert info.virtual_size == 7 * MiB and not info.has_parent
    assert inspect_hyperv_image(path, "vhdx") == 7 * MiB


def test_differencing_vhdx_is_linked_by_libvhdi(tmp_path: Path) -> None:
    pyvhdi = pytest.importorskip("pyvhdi", reason="libvhdi-python is not installed")
    parent, child = tmp_path / "p.vhdx", tmp_path / "c.vhdx"
    vhdx.create_dynamic(parent, 64 * MiB)
    vhdx.create_differencing(child, parent, absolute_win32_path="E:\\D\\p.vhdx", relative_path=".\\p.vhdx")
    f = pyvhdi.file()
    f.open(str(child))
    p = pyvhdi.file()
    p.open(str(parent))
    assert str(f.parent_identifier) == str(p.identifier)
    f.set_parent(p)
    f.seek(0)
    assert f.read_buffer(4096) == bytes(4096)
    other = tmp_path / "o.vhdx"
    vhdx.create_dynamic(other, 64 * MiB)
    o = pyvhdi.file()
    o.open(str(other))
    g = pyvhdi.file()
    g.open(str(child))
    with pytest.raises(OSError, match="identifier"):
        g.set_parent(o)


def _corrupt(path: Path, at: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(data)


def _fix_checksum(path: Path, at: int, length: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        buf = bytearray(f.read(length))
        struct.pack_into("<I", buf, 4, 0)
        struct.pack_into("<I", buf, 4, vhdx.crc32c(bytes(buf)))
        f.seek(at)
        f.write(buf)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    path = tmp_path / "d.vhdx"
    vhdx.create_dynamic(path, 16 * MiB)
    return path


def test_one_damaged_header_is_tolerated(disk: Path) -> None:
    _corrupt(disk, 64 * 1024 + 100, b"\xff")
    assert vhdx.read_info(disk).virtual_size == 16 * MiB


@pytest.mark.parametrize("damage", [
    "truncated", "signature", "both-headers", "both-regions", "log-pending", "version",
    "unknown-required-region", "metadata-signature", "metadata-count", "block-size",
    "size-zero", "size-huge", "item-outside", "bat-too-small",
])
def test_damaged_vhdx_is_refused(disk: Path, damage: str) -> None:
    h1, h2, r1, r2, meta = 64 * 1024, 128 * 1024, 192 * 1024, 256 * 1024, 2 * MiB
    items_at = meta + 64 * 1024
    if damage == "truncated":
        with open(disk, "r+b") as f:
            f.truncate(MiB)
    elif damage == "signature":
        _corrupt(disk, 0, b"vhdxfilX")
    elif damage == "both-headers":
        _corrupt(disk, h1 + 100, b"\xff")
        _corrupt(disk, h2 + 100, b"\xff")
    elif damage == "both-regions":
        _corrupt(disk, r1 + 100, b"\xff")
        _corrupt(disk, r2 + 100, b"\xff")
    elif damage in ("log-pending", "version"):
        for h in (h1, h2):
            if damage == "log-pending":
                _corrupt(disk, h + 48, uuid.uuid4().bytes_le)
            else:
                _corrupt(disk, h + 66, struct.pack("<H", 2))
            _fix_checksum(disk, h, 4096)
    elif damage == "unknown-required-region":
        for r in (r1, r2):
            _corrupt(disk, r + 8, struct.pack("<I", 3))
            _corrupt(disk, r + 80, uuid.uuid4().bytes_le + struct.pack("<QII", 4 * MiB, MiB, 1))
            _fix_checksum(disk, r, 64 * 1024)
    elif damage == "metadata-signature":
        _corrupt(disk, meta, b"metadatX")
    elif damage == "metadata-count":
        _corrupt(disk, meta + 10, struct.pack("<H", 65535))
    elif damage == "block-size":
        _corrupt(disk, items_at, struct.pack("<I", 3 * MiB))
    elif damage == "size-zero":
        _corrupt(disk, items_at + 4096, struct.pack("<Q", 0))
    elif damage == "size-huge":
        _corrupt(disk, items_at + 4096, struct.pack("<Q", 1 << 62))
    elif damage == "item-outside":
        _corrupt(disk, meta + 32 + 16, struct.pack("<I", 2 * MiB))
    elif damage == "bat-too-small":
        for r in (r1, r2):
            _corrupt(disk, r + 32 + 8, struct.pack("<I", 8))
            _fix_checksum(disk, r, 64 * 1024)
        _corrupt(disk, items_at + 4096, struct.pack("<Q", 60 * 1024**4))
    with pytest.raises(ImageError):
        vhdx.read_info(disk)
    with pytest.raises(ImageError):
        inspect_hyperv_image(disk, "vhdx")


def test_hostile_parent_locator(tmp_path: Path) -> None:
    parent = tmp_path / "p.vhdx"
    vhdx.create_dynamic(parent, 16 * MiB)
    child = tmp_path / "c.vhdx"
    vhdx.create_differencing(child, parent, absolute_win32_path="C:\\x.vhdx")
    assert vhdx.read_info(child).parent["absolute_win32_path"] == "C:\\x.vhdx"
    locator_at = 2 * MiB + 64 * 1024 + 5 * 4096
    _corrupt(child, locator_at + 20, struct.pack("<IIHH", 0xFFFFFF, 0, 10, 10))
    with pytest.raises(ImageError, match="outside"):
        vhdx.read_info(child)


def test_set_virtual_size_refuses_shrink(disk: Path) -> None:
    with pytest.raises(ImageError):
        vhdx.set_virtual_size(disk, MiB)
