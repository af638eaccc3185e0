"""Attach/detach through the real tools: a marker-file round trip on a FAT file system made on
the attached device. Skips cleanly without root, loop devices and either nbd or FUSE."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcloud.storage.vhd import Chain, create_differencing, create_dynamic, create_fixed
from hvcloud.storage.vhd import mount as mount_mod

MiB = 1024 * 1024

needs = pytest.mark.skipif(
    not (
        mount_mod.loop_available()
        and (mount_mod.nbd_available() or mount_mod.fuse_available())
        and shutil.which("mkfs.fat")
        and shutil.which("mcopy")
    ),
    reason="needs root, loop devices, nbd or FUSE (qemu-storage-daemon), mkfs.fat and mtools",
)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mount_mod, "STATE_DIR", tmp_path / "state")


def _sh(*cmd: str) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout  # noqa: S603


def _missing_for_fuse() -> str:
    """What this host lacks for the FUSE export path ('' when it has everything)."""
    missing = [
        what
        for what, ok in (
            ("root", os.geteuid() == 0),
            ("losetup and /dev/loop-control", mount_mod.loop_available()),
            ("qemu-storage-daemon", shutil.which("qemu-storage-daemon") is not None),
            ("/dev/fuse", os.path.exists("/dev/fuse")),
            ("mkfs.fat", shutil.which("mkfs.fat") is not None),
            ("mtools", shutil.which("mcopy") is not None),
        )
        if not ok
    ]
    return ", ".join(missing)


needs_fuse = pytest.mark.skipif(bool(_missing_for_fuse()), reason=f"FUSE path needs: {_missing_for_fuse()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@needs
@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
def test_marker_round_trip(tmp_path: Path, kind: str) -> None:
    disk = tmp_path / "d.vhd"
    (create_dynamic if kind == "dynamic" else create_fixed)(str(disk), 32 * MiB)
    marker = tmp_path / "MARKER.TXT"
    marker.write_text("written through the attached device\n")
    att = mount_mod.mount(str(disk))
    if kind == "fixed":
        assert att.method == "loop"
    else:
        assert att.method == ("nbd" if mount_mod.nbd_available() else "fuse+loop")
    try:
        _sh("mkfs.fat", att.device)
        _sh("mcopy", "-i", att.device, str(marker), "::MARKER.TXT")
    finally:
        mount_mod.unmount(str(disk))
    assert mount_mod.attachments() == []
    att = mount_mod.mount(str(disk), read_only=True)
    try:
        assert _sh("mtype", "-i", att.device, "::MARKER.TXT") == marker.read_text()
    finally:
        mount_mod.unmount(att.device)
    if kind == "dynamic":
        assert any(Chain(str(disk)).read(0, 512))


@needs
def test_differencing_is_flattened_and_read_only(tmp_path: Path) -> None:
    base, child = tmp_path / "b.vhd", tmp_path / "c.vhd"
    create_dynamic(str(base), 8 * MiB)
    with Chain(str(base), writable=True) as c:
        c.write(0, b"\xaa" * 4096)
    create_differencing(str(child), str(base))
    with Chain(str(child), writable=True) as c:
        c.write(4096, b"\xbb" * 4096)
    with pytest.raises(mount_mod.MountError, match="read-only"):
        mount_mod.mount(str(child))
    att = mount_mod.mount(str(child), read_only=True)
    try:
        assert att.method == "flatten+loop"
        with open(att.device, "rb") as dev:
            assert dev.read(8192) == b"\xaa" * 4096 + b"\xbb" * 4096
    finally:
        mount_mod.unmount(str(child))
    assert att.temp_raw and not os.path.exists(att.temp_raw)


def test_unmount_of_unknown_disk(tmp_path: Path) -> None:
    with pytest.raises(mount_mod.MountError, match="not attached"):
        mount_mod.unmount(str(tmp_path / "nothing.vhd"))


@needs_fuse
@pytest.mark.parametrize("read_only", [False, True])
def test_fuse_export_behind_a_loop_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: bool) -> None:
    """The path taken where the nbd module is missing (as on the development VM), forced here
    even where nbd exists: a qemu-storage-daemon FUSE export of the VHD as a raw file, behind a
    loop device. The file name has a comma, which QEMU option strings would otherwise split."""
    monkeypatch.setattr(mount_mod, "nbd_available", lambda: False)
    disk = tmp_path / "a,b.vhd"
    create_dynamic(str(disk), 16 * MiB)
    with Chain(str(disk), writable=True) as c:
        c.write(MiB, b"\x3c" * 4096)
    att = mount_mod.mount(str(disk), read_only=read_only)
    try:
        assert att.method == "fuse+loop" and att.daemon_pid and att.fuse_file
        assert _alive(att.daemon_pid)
        assert _sh("blockdev", "--getsize64", att.device).strip() == str(16 * MiB)
        with open(att.device, "rb") as dev:
            dev.seek(MiB)
            assert dev.read(4096) == b"\x3c" * 4096
        if read_only:
            with pytest.raises(OSError), open(att.device, "r+b") as dev:
                dev.write(b"x" * 512)
                os.fsync(dev.fileno())
        else:
            with open(att.device, "r+b") as dev:
                dev.seek(2 * MiB)
                dev.write(b"\x7e" * 4096)
                os.fsync(dev.fileno())
    finally:
        mount_mod.unmount(str(disk))
    assert not _alive(att.daemon_pid) and not os.path.exists(att.fuse_file)
    assert mount_mod.attachments() == []
    with Chain(str(disk)) as c:
        assert c.read(2 * MiB, 4096) == (bytes(4096) if read_only else b"\x7e" * 4096)
