import gzip

import pytest

from hvcloud.storage.guest_image import (
    CpioWriter,
    build_initramfs,
    module_depends,
    resolve_modules,
)
from hvcloud.storage.local import template_properties, with_ext


def parse_newc(data: bytes) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + i * 8: pos + 14 + i * 8], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


def test_cpio_newc_archive_is_well_formed() -> None:
    w = CpioWriter()
    w.dir("bin")
    w.file("bin/x", b"hello", 0o755)
    w.symlink("bin/sh", "x")
    w.chardev("dev/console", 5, 1)
    data = w.finish()
    assert len(data) % 512 == 0
    entries = parse_newc(data)
    assert entries["bin/x"] == (0o100755, b"hello")
    assert entries["bin/sh"] == (0o120777, b"x")
    assert entries["dev/console"][0] == 0o020600


def test_initramfs_holds_init_busybox_and_modules_in_order() -> None:
    img = build_initramfs(b"BB", [("virtio", b"m1"), ("virtio_net", b"m2")], init="#!/bin/sh\n")
    entries = parse_newc(gzip.decompress(img))
    assert entries["init"] == (0o100755, b"#!/bin/sh\n")
    assert entries["bin/busybox"][1] == b"BB"
    assert entries["lib/modules/load-order"][1] == b"virtio\nvirtio_net\n"


def test_initramfs_holds_the_network_scripts() -> None:
    from hvcloud.storage import guest_image

    entries = parse_newc(gzip.decompress(build_initramfs(b"BB", [])))
    assert entries["bin/hvcloud-net"] == (0o100755, guest_image.NET_SCRIPT.encode())
    assert entries["etc/udhcpc/default.script"] == (0o100755, guest_image.DHCP_SCRIPT.encode())
    # init starts the network part in the background, after the NIC-up marker, before the disk watch
    init = entries["init"][1].decode()
    assert init.index(guest_image.NICUP_MARKER) < init.index("/bin/hvcloud-net <") < init.index(
        guest_image.DISKS_MARKER)
    assert "/bin/hvcloud-net < /dev/null > /dev/null 2>&1 &" in init
    # every fetch is bounded (this busybox's wget has no timeout of its own), and no placeholder is left
    assert guest_image.NET_SCRIPT.count("wget -q") == guest_image.NET_SCRIPT.count("timeout 10 wget -q") == 7
    assert "@" not in guest_image.NET_SCRIPT.replace("A-Za-z0-9._:@/", "")
    assert "wget -T" not in guest_image.NET_SCRIPT


def test_module_dependencies_are_resolved_first(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "virtio_net.ko").write_bytes(b"\x00license=GPL\x00depends=virtio,net_failover\x00")
    (root / "net_failover.ko").write_bytes(b"\x00depends=failover\x00")
    (root / "failover.ko").write_bytes(b"\x00depends=\x00")
    (root / "virtio.ko").write_bytes(b"\x00x=y\x00")
    from hvcloud.storage.guest_image import _module_index

    order = [n for n, _ in resolve_modules(["virtio_net", "builtin_thing"], _module_index(root))]
    assert order == ["virtio", "failover", "net_failover", "virtio_net"]
    assert module_depends(b"garbage") == []


@pytest.mark.parametrize(("name", "fmt", "out"), [
    ("abc", "qcow2", "abc.qcow2"), ("abc.vhd", "qcow2", "abc.vhd"), ("d/x", "raw", "d/x.raw"),
    ("d.e/x", "iso", "d.e/x.iso"),
])
def test_cloudstack_file_name_rule(name: str, fmt: str, out: str) -> None:
    assert with_ext(name, fmt) == out


def test_template_properties_has_cloudstack_keys() -> None:
    text = template_properties("201", "tmpl-x", "tmpl-x.qcow2", "qcow2", 1000, 500)
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props == {"id": "201", "filename": "tmpl-x.qcow2", "qcow2.filename": "tmpl-x.qcow2",
                     "uniquename": "tmpl-x", "qcow2": "true", "virtualsize": "1000",
                     "qcow2.virtualsize": "1000", "size": "500", "qcow2.size": "500", "public": "false"}
