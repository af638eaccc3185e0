import os
from pathlib import Path

import pytest

from hvcloud.storage.backend import PoolRef
from hvcloud.storage.errors import PathOutsidePool, StorageError
from hvcloud.storage.pools import Pools, confine, is_mounted
from hvcloud.storage.s3_store import s3_key


@pytest.mark.parametrize("rel", [
    "", "/etc/passwd", "../x", "a/../../x", "a/..", "..", "\\\\host\\share", "C:\\Disks\\x.vhd",
    "c:x", "a\\..\\b", "a\x00b", "x" * 5000,
])
def test_hostile_paths_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(PathOutsidePool):
        confine(tmp_path, rel)


def test_plain_and_nested_paths_are_allowed(tmp_path: Path) -> None:
    assert confine(tmp_path, "a.qcow2") == tmp_path.resolve() / "a.qcow2"
    assert confine(tmp_path, "template/tmpl/2/201/x.qcow2") == tmp_path.resolve() / "template/tmpl/2/201/x.qcow2"


def test_symlinks_out_of_the_pool_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "pool"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("x")
    os.symlink(outside / "secret", root / "link.qcow2")
    os.symlink(outside, root / "dir")
    os.symlink("/", root / "rootlink")
    for rel in ("link.qcow2", "dir/secret", "rootlink/etc/passwd"):
        with pytest.raises(PathOutsidePool):
            confine(root, rel)
    os.symlink("inside.qcow2", root / "ok.qcow2")
    assert confine(root, "ok.qcow2") == root.resolve() / "inside.qcow2"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "./a", "a\\b", "a\x00", "k" * 2000])
def test_hostile_s3_keys_are_refused(key: str) -> None:
    with pytest.raises(PathOutsidePool):
        s3_key(key)


def test_pool_roots(tmp_path: Path) -> None:
    pools = Pools(tmp_path, runner=lambda args: "")
    assert pools.root(PoolRef("u1", "Filesystem", "/srv/pool")) == Path("/srv/pool")
    assert pools.root(PoolRef("u2", "NetworkFilesystem", "/export", host="10.0.0.2")) == tmp_path / "pools/u2"
    with pytest.raises(StorageError):
        pools.root(PoolRef("u3", "Filesystem", "relative"))
    with pytest.raises(StorageError):
        pools.root(PoolRef("u4", "SMB", "/share", host="h"))
    with pytest.raises(PathOutsidePool):
        pools.root(PoolRef("../escape", "NetworkFilesystem", "/export", host="h"))


def test_nfs_attach_mounts_with_an_argument_list(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    pools = Pools(tmp_path, runner=lambda args: calls.append(list(args)) or "")
    pool = PoolRef("p1", "NetworkFilesystem", "/export/primary", host="10.0.0.2")
    stats = pools.attach(pool)
    assert calls == [["mount", "-t", "nfs", "-o", pools.nfs_options, "10.0.0.2:/export/primary",
                      str(tmp_path / "pools/p1")]]
    assert stats.capacity_bytes > 0
    with pytest.raises(StorageError):
        pools.attach(PoolRef("p2", "NetworkFilesystem", "/x", host="h;reboot"))


def test_is_mounted_reads_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("36 35 98:0 / /mnt/my\\040pool rw,noatime master:1 - ext3 /dev/root rw\n")
    assert is_mounted(Path("/mnt/my pool"), info)
    assert not is_mounted(Path("/mnt/other"), info)
