"""Independent readers agree with our disks: qemu-img (fixed/dynamic only — it misreads
differencing VHDs) and libvhdi (all three types, with the parent identity check)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcloud.storage import qemu_img
from hvcloud.storage.vhd import (
    Chain,
    VhdError,
    check,
    convert,
    create_differencing,
    create_dynamic,
    create_fixed,
)

pytestmark = pytest.mark.skipif(not qemu_img.available(), reason="qemu-img is not installed")
pyvhdi = pytest.importorskip("pyvhdi", reason="libvhdi-python is not installed")

MiB = 1024 * 1024


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ours(path: Path) -> bytes:
    with Chain(str(path)) as c:
        return c.read(0, c.size)


def _libvhdi(path: Path, parent: Path | None = None) -> tuple[bytes, object]:
    f = pyvhdi.file()
    f.open(str(path))
    keep = [f]
    if parent is not None:
        p = pyvhdi.file()
        p.open(str(parent))
        f.set_parent(p)
        keep.append(p)
    f.seek(0)
    return f.read_buffer(f.media_size), keep


def _fill(path: Path, writes: list[tuple[int, bytes]]) -> None:
    with Chain(str(path), writable=True) as c:
        for off, data in writes:
            c.write(off, data)


WRITES = [(0, b"\x11" * 8192), (3 * MiB + 4096, b"\xa5" * 65536), (10 * MiB - 4096, b"end!" * 1024)]


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
@pytest.mark.parametrize("size", [10 * MiB, 8 * 964 * 17 * 512, 1073741824 // 64 + 512])
def test_qemu_and_libvhdi_read_what_we_write(tmp_path: Path, kind: str, size: int) -> None:
    p = tmp_path / f"{kind}.vhd"
    if kind == "fixed":
        create_fixed(str(p), size)
    else:
        create_dynamic(str(p), size, block_size=512 * 1024)
    _fill(p, [(off, data) for off, data in WRITES if off + len(data) <= size])
    ours = _ours(p)
    qi = qemu_img.info(str(p), "vhd")
    assert qi.virtual_size == size
    raw = tmp_path / "q.raw"
    qemu_img.convert(str(p), "vhd", str(raw), "raw")
    assert _sha(raw.read_bytes()) == _sha(ours)
    data, _ = _libvhdi(p)
    assert _sha(data) == _sha(ours)
    assert qemu_img.compare(str(p), "vhd", str(raw), "raw")


def test_we_read_what_qemu_writes(tmp_path: Path) -> None:
    src = tmp_path / "src.raw"
    src.write_bytes(b"".join(bytes([i]) * 4096 for i in range(256)) + bytes(MiB))
    for sub in ("dynamic", "fixed"):
        p = tmp_path / f"q-{sub}.vhd"
        qemu_img.convert(str(src), "raw", str(p), "vhd", options=[f"subformat={sub}", "force_size=on"])
        assert check(str(p)).ok, check(str(p)).errors
        assert _ours(p) == src.read_bytes()


def test_qemu_writes_into_our_dynamic_disk(tmp_path: Path) -> None:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed")
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 16 * MiB, block_size=512 * 1024)
    cmd = ["qemu-io", "-f", "vpc", "-c", "write -P 0x5c 1M 64k", str(p)]
    subprocess.run(cmd, check=True, capture_output=True)  # noqa: S603
    assert check(str(p)).ok
    assert _ours(p)[MiB : MiB + 65536] == b"\x5c" * 65536
    data, _ = _libvhdi(p)
    assert data[MiB : MiB + 65536] == b"\x5c" * 65536


def test_libvhdi_reads_our_differencing_chain(tmp_path: Path) -> None:
    base, child, other = tmp_path / "base.vhd", tmp_path / "child.vhd", tmp_path / "other.vhd"
    create_dynamic(str(base), 8 * MiB)
    _fill(base, [(0, b"\xaa" * MiB), (5 * MiB, b"\xbb" * 8192)])
    create_differencing(str(child), str(base))
    _fill(child, [(4096, b"\xcc" * 8192), (5 * MiB + 4096, bytes(4096)), (7 * MiB, b"\xdd" * 4096)])
    ours = _ours(child)
    assert ours[:4096] == b"\xaa" * 4096 and ours[4096:12288] == b"\xcc" * 8192
    assert ours[5 * MiB : 5 * MiB + 4096] == b"\xbb" * 4096 and ours[
        5 * MiB + 4096 : 5 * MiB + 8192
    ] == bytes(4096)
    data, keep = _libvhdi(child, base)
    f = keep[0]
    assert f.disk_type == 4
    assert f.parent_filename == "base.vhd"
    assert _sha(data) == _sha(ours)
    create_dynamic(str(other), 8 * MiB)
    g = pyvhdi.file()
    g.open(str(child))
    o = pyvhdi.file()
    o.open(str(other))
    with pytest.raises(OSError):
        g.set_parent(o)


def test_qemu_never_sees_a_differencing_disk(tmp_path: Path) -> None:
    base, child = tmp_path / "base.vhd", tmp_path / "child.vhd"
    create_dynamic(str(base), 4 * MiB)
    _fill(base, [(0, b"\xaa" * MiB)])
    create_differencing(str(child), str(base))
    _fill(child, [(MiB, b"\xee" * 4096)])
    expected = _ours(child)
    for fmt in ("qcow2", "vhdx"):
        out = tmp_path / f"out.{fmt}"
        convert(str(child), str(out))
        raw = tmp_path / f"{fmt}.raw"
        qemu_img.convert(str(out), fmt, str(raw), "raw")
        assert raw.read_bytes() == expected


@pytest.mark.parametrize("fmt", ["qcow2", "vhdx", "raw"])
@pytest.mark.parametrize("vhd_type", ["fixed", "dynamic"])
def test_round_trip_through_other_formats(tmp_path: Path, fmt: str, vhd_type: str) -> None:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 10 * MiB)
    _fill(p, WRITES)
    mid = tmp_path / f"mid.{fmt}"
    convert(str(p), str(mid))
    back = tmp_path / "back.vhd"
    convert(str(mid), str(back), vhd_type=vhd_type)
    assert _ours(back) == _ours(p)
    assert qemu_img.compare(str(back), "vhd", str(p), "vhd")
    assert check(str(back)).ok


def test_qemu_img_check_has_no_vpc_support_so_ours_is_needed(tmp_path: Path) -> None:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 4 * MiB)
    with pytest.raises(qemu_img.QemuImgError):
        qemu_img.check(str(p), "vhd")
    assert check(str(p)).ok


def test_convert_refuses_to_clobber(tmp_path: Path) -> None:
    p = tmp_path / "d.vhd"
    create_dynamic(str(p), 4 * MiB)
    (tmp_path / "x.qcow2").write_bytes(b"keep")
    with pytest.raises(VhdError, match="exists"):
        convert(str(p), str(tmp_path / "x.qcow2"))
    assert (tmp_path / "x.qcow2").read_bytes() == b"keep"
