"""Windows paths on Hyper-V pools and stores: hostile names, UNC building, mapping, confinement."""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

import pytest

from hvcloud.storage.backend import ImageInPool, PoolRef
from hvcloud.storage.errors import PathOutsidePool, StorageError
from hvcloud.storage.hyperv import HyperVStorageBackend, PathMap
from hvcloud.storage.hyperv.winpath import (
    confine_win,
    pool_root,
    relative_parts,
    relpath,
    unc_from_cifs,
)
from hvcloud.storage.path_policy import PathPolicy

ROOT = PureWindowsPath("E:\\Disks")

HOSTILE = [
    "..\\secret.vhd", "../secret.vhd", "a/../../b.vhd", "a\\..\\..\\b", "..", ".",
    "C:\\Windows\\System32\\config\\SAM", "C:secret.vhd", "c:/x.vhd",
    "\\\\evil\\share\\x.vhd", "//evil/share/x.vhd", "\\\\?\\C:\\x.vhd", "\\\\.\\PhysicalDrive0",
    "\\x.vhd", "/x.vhd",
    "x.vhd:hidden", "x.vhd::$DATA", "dir:stream\\x.vhd",
    "CON", "con.vhd", "NUL.vhdx", "aux", "PRN.txt", "COM1.vhd", "lpt9", "COM\u00b9.vhd", "CONIN$",
    "nul .vhd", "x.vhd.", "x.vhd ", "dir.\\x.vhd", "dir \\x.vhd",
    "a//b.vhd", "a\\\\b.vhd", "", "x\x00.vhd", "x\x1f.vhd",
    "a<b.vhd", "a>b.vhd", 'a"b.vhd', "a|b.vhd", "a?b.vhd", "a*b.vhd",
    "a" * 256, "d/" * 20000 + "x",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(PathOutsidePool):
        confine_win(ROOT, name)


@pytest.mark.parametrize(("name", "expected"), [
    ("19ae8e67-cd7d-4ab5-a3f6-7b1b3e4e7a10.vhdx", "E:\\Disks\\19ae8e67-cd7d-4ab5-a3f6-7b1b3e4e7a10.vhdx"),
    ("template/tmpl/2/201/t.vhd", "E:\\Disks\\template\\tmpl\\2\\201\\t.vhd"),
    ("template\\tmpl/2\\x.vhd", "E:\\Disks\\template\\tmpl\\2\\x.vhd"),
    ("my disk.v1.vhd", "E:\\Disks\\my disk.v1.vhd"),
    ("CONSOLE.vhd", "E:\\Disks\\CONSOLE.vhd"),
    ("COM10.vhd", "E:\\Disks\\COM10.vhd"),
])
def test_ordinary_names_map_below_the_root(name: str, expected: str) -> None:
    assert str(confine_win(ROOT, name)) == expected


def test_relative_parts_accept_both_separators() -> None:
    assert relative_parts("a/b\\c.vhd") == ["a", "b", "c.vhd"]


@pytest.mark.parametrize(("pool", "expected"), [
    (PoolRef("p", "Filesystem", "E:\\Disks"), "E:\\Disks"),
    (PoolRef("p", "Filesystem", "E:/Disks/sub"), "E:\\Disks\\sub"),
    (PoolRef("p", "Filesystem", "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks"),
     "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual Hard Disks"),
    (PoolRef("p", "SMB", "/share/pool1", host="srv"), "\\\\srv\\share\\pool1"),
    (PoolRef("p", "SMB", "\\\\srv\\share\\pool1", host="srv"), "\\\\srv\\share\\pool1"),
    (PoolRef("p", "NetworkFilesystem", "/share", host="10.0.0.7"), "\\\\10.0.0.7\\share"),
])
def test_pool_roots(pool: PoolRef, expected: str) -> None:
    assert pool_root(pool) == PureWindowsPath(expected)


@pytest.mark.parametrize("pool", [
    PoolRef("p", "Filesystem", "Disks"),
    PoolRef("p", "Filesystem", "\\Disks"),
    PoolRef("p", "Filesystem", "/var/lib/disks"),
    PoolRef("p", "Filesystem", "\\\\srv\\share"),
    PoolRef("p", "Filesystem", "E:\\Disks\\..\\Windows"),
    PoolRef("p", "Filesystem", "E:\\Disks\\CON"),
    PoolRef("p", "SMB", "/share", host=""),
    PoolRef("p", "SMB", "/", host="srv"),
    PoolRef("p", "SMB", "/share", host="srv\\other"),
    PoolRef("p", "SMB", "/share", host="srv/other"),
    PoolRef("p", "SMB", "/share", host="-srv"),
    PoolRef("p", "SMB", "/share", host="a" * 300),
    PoolRef("p", "SMB", "/share/../x", host="srv"),
    PoolRef("p", "SMB", "/C$/Windows", host="srv"),
    PoolRef("p", "SMB", "\\\\other\\share", host="srv"),
    PoolRef("p", "SMB", "\\\\?\\C:\\x", host=""),
    PoolRef("p", "RBD", "/pool", host="srv"),  # type: ignore[arg-type]
])
def test_bad_pools_are_refused(pool: PoolRef) -> None:
    with pytest.raises(StorageError):
        pool_root(pool)


def test_cifs_url_becomes_unc_and_credentials_are_dropped() -> None:
    url = "cifs://10.0.0.2/secondary/dir?user=administrator&password=secret"
    unc = unc_from_cifs(url)
    assert str(unc) == "\\\\10.0.0.2\\secondary\\dir"
    assert "secret" not in str(unc) and "administrator" not in str(unc)
    assert unc_from_cifs("smb://nas.example.org/share%20name") == PureWindowsPath("\\\\nas.example.org\\share name")


@pytest.mark.parametrize("url", [
    "nfs://10.0.0.2/export", "cifs://user:pw@10.0.0.2/share", "cifs://10.0.0.2/", "cifs:///share",
    "cifs://10.0.0.2/share/../../x", "cifs://10.0.0.2/share/CON", "http://10.0.0.2/share",
])
def test_bad_cifs_urls(url: str) -> None:
    with pytest.raises(StorageError):
        unc_from_cifs(url)


def test_relpath_like_hyper_v_writes_it() -> None:
    assert relpath(PureWindowsPath("E:\\D\\t.vhd"), PureWindowsPath("E:\\D")) == ".\\t.vhd"
    assert relpath(PureWindowsPath("E:\\T\\t.vhd"), PureWindowsPath("E:\\D")) == "..\\T\\t.vhd"
    assert relpath(PureWindowsPath("F:\\t.vhd"), PureWindowsPath("E:\\D")) is None
    assert relpath(PureWindowsPath("\\\\a\\s\\t.vhd"), PureWindowsPath("E:\\D")) is None


def test_path_map_longest_prefix_and_case(tmp_path: Path) -> None:
    m = PathMap({"E:\\": tmp_path / "e", "E:\\Disks\\fast": tmp_path / "fast",
                 "\\\\srv\\share": tmp_path / "s"})
    assert m.local(PureWindowsPath("e:\\disks\\X.vhd")) == tmp_path / "e" / "disks" / "X.vhd"
    assert m.local(PureWindowsPath("E:\\DISKS\\FAST\\x.vhd")) == tmp_path / "fast" / "x.vhd"
    assert m.local(PureWindowsPath("\\\\SRV\\Share\\p\\x.vhd")) == tmp_path / "s" / "p" / "x.vhd"
    with pytest.raises(StorageError):
        m.local(PureWindowsPath("F:\\x.vhd"))
    with pytest.raises(StorageError):
        m.local(PureWindowsPath("\\\\srv\\othershare\\x.vhd"))


def test_symlink_out_of_the_pool_is_refused(tmp_path: Path) -> None:
    (tmp_path / "e" / "Disks").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "e" / "Disks" / "link")
    m = PathMap({"E:\\": tmp_path / "e"})
    with pytest.raises(PathOutsidePool):
        m.local_confined(ROOT, "link\\x.vhd")
    win, local = m.local_confined(ROOT, "sub\\x.vhd")
    assert str(win) == "E:\\Disks\\sub\\x.vhd"
    assert local == tmp_path / "e" / "Disks" / "sub" / "x.vhd"


def _confined_backend(tmp_path: Path, **policy: list[Path]) -> HyperVStorageBackend:
    for d in ("e", "d", "outside"):
        (tmp_path / d).mkdir()
    paths = PathMap({"E:\\": tmp_path / "e", "D:\\": tmp_path / "d", "F:\\": tmp_path / "outside"})
    return HyperVStorageBackend(tmp_path / "d" / "hvcloud" / "storage", paths=paths, native_vhd=True,
                                policy=PathPolicy(protected=[tmp_path / "d" / "hvcloud"], **policy))


def test_a_hyperv_pool_must_be_attached_first(tmp_path: Path) -> None:
    """Windows pool paths from the wire (backslashes or slashes) reach only attached pools."""
    storage = _confined_backend(tmp_path)
    for path in ("E:\\Disks", "E:/Disks", "e:\\disks"):
        pool = PoolRef(uuid="p1", pool_type="Filesystem", path=path)
        with pytest.raises(PathOutsidePool, match="not attached"):
            storage.delete_volume(ImageInPool(pool, "x.vhdx", "vhdx"))
    assert not (tmp_path / "e" / "Disks").exists()
    storage.attach_pool(PoolRef(uuid="p1", pool_type="Filesystem", path="E:\\Disks"))
    victim = tmp_path / "e" / "Disks" / "vol.vhdx"
    victim.write_bytes(b"x")
    storage.delete_volume(ImageInPool(PoolRef(uuid="p1", pool_type="Filesystem", path="E:/Disks"), "vol.vhdx", "vhdx"))
    assert not victim.exists()
    storage.detach_pool(PoolRef(uuid="p1", pool_type="Filesystem", path="E:\\Disks"))
    with pytest.raises(PathOutsidePool):
        storage.local_path(ImageInPool(PoolRef(uuid="p1", pool_type="Filesystem", path="E:\\Disks"), "v", "vhdx"))


@pytest.mark.parametrize("path", ["D:\\", "D:\\hvcloud", "F:\\anything"])
def test_hyperv_pools_outside_the_roots_or_over_the_agent_data_are_refused(tmp_path: Path, path: str) -> None:
    storage = _confined_backend(tmp_path, pool_roots=[tmp_path / "e", tmp_path / "d"])
    with pytest.raises(PathOutsidePool):
        storage.attach_pool(PoolRef(uuid="p2", pool_type="Filesystem", path=path))
