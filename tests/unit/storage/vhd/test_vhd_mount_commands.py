"""The qemu-nbd and qemu-storage-daemon command lines that ``mount`` runs, checked against the real
tools. The NBD path itself needs the nbd kernel module; without it, qemu-nbd is still run up to
the point where it opens the device: option parsing, the ``vpc`` driver and the image are real."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hvcloud.storage.vhd import create_dynamic
from hvcloud.storage.vhd import mount as mount_mod

MiB = 1024 * 1024

needs_qemu_nbd = pytest.mark.skipif(shutil.which("qemu-nbd") is None, reason="qemu-nbd is not installed")


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603


def _long_options(help_text: str) -> set[str]:
    return set(re.findall(r"(--[a-z][a-z-]*)", help_text))


@needs_qemu_nbd
@pytest.mark.parametrize("read_only", [False, True])
def test_nbd_commands_use_only_options_qemu_nbd_lists(read_only: bool) -> None:
    known = _long_options(_run(["qemu-nbd", "--help"]).stdout)
    assert {"--connect", "--disconnect", "--format", "--read-only"} <= known
    for cmd in (
        mount_mod.nbd_connect_command("/dev/nbd3", "/srv/disks/a.vhd", read_only=read_only),
        mount_mod.nbd_disconnect_command("/dev/nbd3"),
    ):
        assert cmd[0] == "qemu-nbd"
        assert {a for a in cmd if a.startswith("--")} <= known


@needs_qemu_nbd
@pytest.mark.parametrize("read_only", [False, True])
def test_qemu_nbd_accepts_the_command_up_to_the_device(tmp_path: Path, read_only: bool) -> None:
    """qemu-nbd opens the image before the device: failing on a device that does not exist
    proves that it parsed the options and opened the VHD with the vpc driver."""
    disk = tmp_path / "d,isk.vhd"
    create_dynamic(str(disk), 8 * MiB)
    device = str(tmp_path / "no-such-nbd")
    proc = _run(mount_mod.nbd_connect_command(device, str(disk), read_only=read_only))
    assert proc.returncode != 0
    assert f"Failed to open {device}" in proc.stderr, proc.stderr
    # the same command with a wrong driver fails at the image instead: the order is as assumed
    wrong = [
        ("nosuchfmt" if a == "vpc" else a)
        for a in mount_mod.nbd_connect_command(device, str(disk), read_only=read_only)
    ]
    assert "Unknown driver 'nosuchfmt'" in _run(wrong).stderr
    missing = mount_mod.nbd_connect_command(device, str(tmp_path / "missing.vhd"), read_only=read_only)
    assert "Could not open" in _run(missing).stderr


@needs_qemu_nbd
def test_qemu_nbd_accepts_the_disconnect_command(tmp_path: Path) -> None:
    device = str(tmp_path / "no-such-nbd")
    proc = _run(mount_mod.nbd_disconnect_command(device))
    assert proc.returncode != 0 and f"Cannot open {device}" in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", ["plain.vhd", "with,comma.vhd", "evil,driver=raw,x.vhd", "trailing,", "sp ace.vhd"])
def test_fuse_export_keeps_a_hostile_file_name_one_value(name: str) -> None:
    path = f"/srv/disks/{name}"
    cmd = mount_mod.fuse_export_command(path, "/run/x.fuse", "/run/x.pid", read_only=True)
    file_opt = cmd[cmd.index("--blockdev") + 1]
    # split the way QEMU does: a doubled comma is a literal comma, a single one separates keys
    parts = [p.replace("\0", ",") for p in file_opt.replace(",,", "\0").split(",")]
    assert parts == ["driver=file", "node-name=file0", f"filename={path}", "read-only=on"]
    assert cmd[-3:] == ["--pidfile", "/run/x.pid", "--daemonize"]
    export = cmd[cmd.index("--export") + 1]
    assert export.endswith(",writable=off") and "mountpoint=/run/x.fuse," in export


def test_fuse_export_writable_flags() -> None:
    cmd = mount_mod.fuse_export_command("/d.vhd", "/f", "/p", read_only=False)
    assert "read-only=off" in cmd[2] and "read-only=off" in cmd[4] and cmd[6].endswith("writable=on")
