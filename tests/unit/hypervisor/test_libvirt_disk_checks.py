import struct
from pathlib import Path

import pytest

from hvcloud.hypervisor.driver import DiskSpec
from hvcloud.hypervisor.libvirt.disk_checks import check_disk_file, vhd_disk_type
from hvcloud.hypervisor.libvirt.domain_xml import InvalidSpec


def vhd_with_type(path: Path, disk_type: int) -> None:
    footer = bytearray(512)
    footer[:8] = b"conectix"
    footer[60:64] = struct.pack(">I", disk_type)
    path.write_bytes(bytes(1024) + bytes(footer))


def test_differencing_vhd_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "child.vhd"
    vhd_with_type(p, 4)
    assert vhd_disk_type(str(p)) == 4
    with pytest.raises(InvalidSpec, match="differencing"):
        check_disk_file(DiskSpec(slot=0, path=str(p), format="vhd"))


def test_fixed_vhd_is_accepted_and_non_vhd_refused(tmp_path: Path) -> None:
    p = tmp_path / "fixed.vhd"
    vhd_with_type(p, 2)
    check_disk_file(DiskSpec(slot=0, path=str(p), format="vhd"))
    q = tmp_path / "not.vhd"
    q.write_bytes(b"x" * 2048)
    with pytest.raises(InvalidSpec, match="not a VHD"):
        check_disk_file(DiskSpec(slot=0, path=str(q), format="vhd"))
    with pytest.raises(InvalidSpec, match="cannot read"):
        check_disk_file(DiskSpec(slot=0, path=str(tmp_path / "missing.vhd"), format="vhd"))
