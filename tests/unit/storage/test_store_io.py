"""Files on directory image stores, as the management server and the agents both reach them:
confined paths, bounded and verified reads, writes that appear whole or not at all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hvcloud.storage.errors import ChecksumMismatch, PathOutsidePool, SizeLimitExceeded, StoreError
from hvcloud.storage.store_io import DirectoryStore
from hvcloud.storage.transfer import parse_checksum, part_file, replace_atomically
from tests.unit.storage.store_checks import assert_hostile_paths_refused

DATA = b"template bytes " * 10_000
REL = "template/tmpl/2/201/201.qcow2"


@pytest.fixture
def store(tmp_path: Path) -> DirectoryStore:
    root = tmp_path / "store"
    root.mkdir()
    return DirectoryStore(root, max_bytes=len(DATA))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.part"))


def test_put_get_delete_round_trip(store: DirectoryStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(DATA)
    store.put(src, REL)
    assert (store.root / REL).read_bytes() == DATA and leftovers(store.root) == []
    seen: list[tuple[int, int | None]] = []
    got = tmp_path / "got"
    got.write_bytes(b"stale bytes of an earlier attempt that are longer than nothing")
    size = store.get(REL, got, checksum=parse_checksum(hashlib.md5(DATA).hexdigest()),
                     progress=lambda done, total: seen.append((done, total)))
    assert size == len(DATA) and got.read_bytes() == DATA and seen[-1] == (len(DATA), len(DATA))
    store.put_bytes(b"id=201\n", "template/tmpl/2/201/template.properties")
    store.delete(REL)
    assert not (store.root / REL).exists() and (store.root / "template/tmpl/2/201").is_dir()
    store.delete("template/tmpl/2/201/template.properties")
    assert list(store.root.iterdir()) == [] and store.root.is_dir()
    store.delete(REL)


def test_put_replaces_a_file_whole(store: DirectoryStore, tmp_path: Path) -> None:
    store.put_bytes(b"old", REL)
    with pytest.raises(FileNotFoundError):
        store.put(tmp_path / "missing", REL)
    assert (store.root / REL).read_bytes() == b"old" and leftovers(store.root) == []
    store.put_bytes(b"new", REL)
    assert (store.root / REL).read_bytes() == b"new"


def test_delete_takes_a_leftover_part_file_too(store: DirectoryStore) -> None:
    store.put_bytes(b"x", REL)
    part_file(store.root / REL).write_bytes(b"half")
    store.delete(REL)
    assert list(store.root.iterdir()) == []


def test_reads_are_bounded_and_verified(store: DirectoryStore, tmp_path: Path) -> None:
    store.put_bytes(DATA + b"!", "big.raw")
    with pytest.raises(SizeLimitExceeded, match="larger than the size limit"):
        store.get("big.raw", tmp_path / "got")
    store.put_bytes(DATA, "ok.raw")
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        store.get("ok.raw", tmp_path / "got", checksum=parse_checksum("{SHA-256}" + "0" * 64))
    with pytest.raises(StoreError, match="does not exist on the image store"):
        store.get("missing.raw", tmp_path / "got")


def test_hostile_paths_never_touch_files(store: DirectoryStore, tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"outside")
    assert_hostile_paths_refused(store, tmp_path / "x", extra=("C:/x",))
    assert (tmp_path / "x").read_bytes() == b"outside" and list(store.root.iterdir()) == []


def test_symlinks_out_of_the_store_are_refused(store: DirectoryStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"host file")
    os.symlink(outside, store.root / "template")
    os.symlink(outside / "secret", store.root / "t.raw")
    for rel in ("template/secret", "t.raw"):
        with pytest.raises(PathOutsidePool):
            store.get(rel, tmp_path / "got")
    with pytest.raises(PathOutsidePool):
        store.put_bytes(b"evil", "template/new")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_missing_store_directory_is_not_created(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "unmounted")
    with pytest.raises(StoreError, match="not available on this host"):
        store.put_bytes(b"x", REL)
    assert not (tmp_path / "unmounted").exists()


def test_replace_atomically_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "f"
    dest.write_bytes(b"old")
    with pytest.raises(IsADirectoryError):
        replace_atomically(dest, tmp_path)
    assert dest.read_bytes() == b"old" and not part_file(dest).exists()
    replace_atomically(dest, b"new")
    assert dest.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_files_written_to_a_store_are_private(store: DirectoryStore, tmp_path: Path) -> None:
    """Uploads and templates the server or an agent writes are tenants' images: owner-only, whatever
    the process umask, and also when an older file of the same name was world-readable."""
    src = tmp_path / "upload"
    src.write_bytes(DATA)
    old = os.umask(0o022)
    try:
        (store.root / "template").mkdir()
        (store.root / "template" / "old.qcow2").write_bytes(b"x")
        (store.root / "template" / "old.qcow2").chmod(0o644)
        store.put(src, REL)
        store.put_bytes(b"id=1\n", "template/old.qcow2")
    finally:
        os.umask(old)
    for rel in (REL, "template/old.qcow2"):
        assert (store.root / rel).stat().st_mode & 0o777 == 0o600, rel
