"""``hvcloud guest build``: the test template from Debian packages (cached by content)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hvcloud.cli.main import app
from hvcloud.storage import guest_image, qemu_img

pytestmark = pytest.mark.skipif(not (shutil.which("apt-get") and shutil.which("syslinux")
                                     and shutil.which("mcopy") and shutil.which("mkfs.fat")),
                                reason="apt-get, syslinux, mtools and dosfstools are needed (scripts/setup)")


def test_cli_builds_raw_qcow2_and_vhd_of_the_same_disk(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["guest", "build", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "linux-image-" in result.output
    raw, qcow2, vhd = tmp_path / "guest.raw", tmp_path / "guest.qcow2", tmp_path / "guest.vhd"
    assert qemu_img.info(str(qcow2), "qcow2").backing_file is None
    assert qemu_img.info(str(vhd), "vhd").virtual_size >= guest_image.DISK_SIZE
    assert qemu_img.compare(str(qcow2), "qcow2", str(raw), "raw")
    # a FAT volume with syslinux's boot sector signature
    head = raw.read_bytes()[:512]
    assert head[510:512] == b"\x55\xaa" and b"FAT16" in head


def test_second_build_reuses_the_cache() -> None:
    first = guest_image.build()
    stamp = first.qcow2.stat().st_mtime_ns
    again = guest_image.build()
    assert again == first and again.qcow2.stat().st_mtime_ns == stamp
