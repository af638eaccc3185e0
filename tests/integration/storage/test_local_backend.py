"""LocalStorageBackend with real qemu-img on real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hvcloud.storage import qemu_img
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.errors import ChecksumMismatch, ImageError, PathOutsidePool, StorageError
from hvcloud.storage.local import LocalStorageBackend

MiB = 1 << 20


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def pool_files(pool: PoolRef) -> list[str]:
    root = Path(pool.path)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                  and ".hvcloud-locks" not in p.parts)


def test_template_is_copied_once_and_cached(backend: LocalStorageBackend, pool: PoolRef,
                                            local_store: StoreRef, images: Path) -> None:
    backend.attach_pool(pool)
    src = ImageOnStore(local_store, "tmpl.qcow2", "qcow2", checksum="{MD5}" + md5(images / "tmpl.qcow2"))
    progress: list[int] = []
    first = backend.template_to_pool(src, pool, "t-uuid", lambda done, total: progress.append(done))
    assert first.path == "t-uuid.qcow2" and first.virtual_size == 16 * MiB and first.backing_path is None
    assert progress and progress[-1] == (images / "tmpl.qcow2").stat().st_size
    (images / "tmpl.qcow2").unlink()  # the cache must not need the store again
    again = backend.template_to_pool(src, pool, "t-uuid")
    assert again == first
    assert pool_files(pool) == ["t-uuid.qcow2"]


def test_vhd_template_is_converted_to_qcow2(backend: LocalStorageBackend, pool: PoolRef,
                                            local_store: StoreRef, images: Path) -> None:
    res = backend.template_to_pool(ImageOnStore(local_store, "tmpl.vhd", "vhd"), pool, "v-uuid")
    assert res.format == "qcow2" and res.path == "v-uuid.qcow2"
    assert qemu_img.compare(str(Path(pool.path) / res.path), "qcow2", str(images / "tmpl.raw"), "raw")


def test_bad_checksum_leaves_nothing_in_the_pool(backend: LocalStorageBackend, pool: PoolRef,
                                                 local_store: StoreRef) -> None:
    src = ImageOnStore(local_store, "tmpl.qcow2", "qcow2", checksum="0" * 32)
    with pytest.raises(ChecksumMismatch):
        backend.template_to_pool(src, pool, "bad")
    assert pool_files(pool) == []


def test_linked_clone_has_a_relative_backing_file_and_the_template_content(
        backend: LocalStorageBackend, pool: PoolRef, local_store: StoreRef, images: Path) -> None:
    tmpl = backend.template_to_pool(ImageOnStore(local_store, "tmpl.qcow2", "qcow2"), pool, "t")
    vol = backend.volume_from_template(ImageInPool(pool, tmpl.path, tmpl.format), pool, "root-1",
                                       size=32 * MiB)
    assert vol.backing_path == "t.qcow2" and vol.virtual_size == 32 * MiB
    assert vol.physical_size < 1 * MiB
    path = backend.local_path(ImageInPool(pool, "root-1", "qcow2"))
    info = qemu_img.info(path, "qcow2")
    assert info.backing_file == "t.qcow2" and info.backing_format == "qcow2"
    # the clone starts with the template's bytes (compare on the template's size)
    small = Path(pool.path) / "cmp.qcow2"
    qemu_img.create(str(small), "qcow2", 16 * MiB, backing="root-1.qcow2", backing_fmt="qcow2")
    assert qemu_img.compare(str(small), "qcow2", str(images / "tmpl.raw"), "raw")
    # a second request for the same volume is idempotent
    assert backend.volume_from_template(ImageInPool(pool, tmpl.path, tmpl.format), pool, "root-1") == vol


def test_full_copy_has_no_backing_file(backend: LocalStorageBackend, pool: PoolRef,
                                       local_store: StoreRef, images: Path) -> None:
    tmpl = backend.template_to_pool(ImageOnStore(local_store, "tmpl.raw", "raw"), pool, "t")
    assert tmpl.path == "t.raw"
    vol = backend.volume_from_template(ImageInPool(pool, tmpl.path, "raw"), pool, "full", full_copy=True)
    assert vol.backing_path is None and vol.format == "qcow2"
    assert qemu_img.compare(backend.local_path(ImageInPool(pool, vol.path, "qcow2")), "qcow2",
                            str(images / "tmpl.raw"), "raw")


def test_blank_volumes_resize_and_delete(backend: LocalStorageBackend, pool: PoolRef) -> None:
    backend.attach_pool(pool)
    v = backend.create_volume(pool, "data-1", 8 * MiB)
    assert v.path == "data-1.qcow2" and v.virtual_size == 8 * MiB
    assert backend.create_volume(pool, "data-1", 8 * MiB) == v
    with pytest.raises(StorageError, match="another size"):
        backend.create_volume(pool, "data-1", 9 * MiB)
    raw = backend.create_volume(pool, "data-2", 4 * MiB, "raw")
    assert raw.path == "data-2.raw"
    img = ImageInPool(pool, "data-1", "qcow2")
    assert backend.resize_volume(img, 16 * MiB).virtual_size == 16 * MiB
    with pytest.raises(StorageError, match="shrink"):
        backend.resize_volume(img, 4 * MiB)
    assert backend.resize_volume(img, 4 * MiB, shrink_ok=True).virtual_size == 4 * MiB
    backend.delete_volume(img)
    backend.delete_volume(img)
    assert pool_files(pool) == ["data-2.raw"]
    (Path(pool.path) / ".data-3.qcow2.part").write_bytes(b"cut short")  # an agent killed mid-create
    backend.delete_volume(ImageInPool(pool, "data-3", "qcow2"))
    assert pool_files(pool) == ["data-2.raw"]
    with pytest.raises(ImageError):
        backend.create_volume(pool, "x", 0)


def test_shrinking_never_cuts_off_data(backend: LocalStorageBackend, pool: PoolRef, local_store: StoreRef) -> None:
    """The template holds data up to just past 15 MiB: a linked clone of it (data in the backing
    file) and a raw volume with data written at 6 MiB shrink only down to their last data."""
    tmpl = backend.template_to_pool(ImageOnStore(local_store, "tmpl.qcow2", "qcow2"), pool, "t")
    clone = backend.volume_from_template(ImageInPool(pool, tmpl.path, "qcow2"), pool, "root-1", 32 * MiB)
    img = ImageInPool(pool, clone.path, "qcow2")
    assert qemu_img.data_end(backend.local_path(img), "qcow2") > 15 * MiB
    with pytest.raises(StorageError, match="holds data up to byte"):
        backend.resize_volume(img, 15 * MiB, shrink_ok=True)
    assert backend.resize_volume(img, 20 * MiB, shrink_ok=True).virtual_size == 20 * MiB
    assert qemu_img.compare(backend.local_path(img), "qcow2", str(Path(local_store.url) / "tmpl.raw"), "raw"), \
        "the template's data is intact in the shrunk clone"
    raw = ImageInPool(pool, backend.create_volume(pool, "data-9", 8 * MiB, "raw").path, "raw")
    with open(backend.local_path(raw), "r+b") as f:
        f.seek(6 * MiB)
        f.write(b"keep me")
    with pytest.raises(StorageError, match="holds data"):
        backend.resize_volume(raw, 4 * MiB, shrink_ok=True)
    assert backend.resize_volume(raw, 7 * MiB, shrink_ok=True).virtual_size == 7 * MiB
    with open(backend.local_path(raw), "rb") as f:
        f.seek(6 * MiB)
        assert f.read(7) == b"keep me"
    with pytest.raises(ImageError):
        backend.resize_volume(raw, 0)


def test_volume_to_store_writes_template_properties(backend: LocalStorageBackend, pool: PoolRef,
                                                    local_store: StoreRef, images: Path) -> None:
    tmpl = backend.template_to_pool(ImageOnStore(local_store, "tmpl.qcow2", "qcow2"), pool, "t")
    vol = backend.volume_from_template(ImageInPool(pool, tmpl.path, "qcow2"), pool, "root-9")
    res = backend.volume_to_store(ImageInPool(pool, vol.path, "qcow2"), local_store,
                                  "template/tmpl/2/201", "new-tmpl")
    assert res.path == "template/tmpl/2/201/new-tmpl.qcow2"
    out = images / res.path
    assert qemu_img.info(str(out), "qcow2").backing_file is None  # flattened
    assert qemu_img.compare(str(out), "qcow2", str(images / "tmpl.raw"), "raw")
    props = dict(line.split("=", 1) for line in (out.parent / "template.properties").read_text().splitlines())
    assert props["id"] == "201" and props["filename"] == "new-tmpl.qcow2" and props["qcow2"] == "true"
    assert int(props["virtualsize"]) == 16 * MiB and int(props["size"]) == out.stat().st_size
    # and back: store → new independent volume
    back = backend.store_to_volume(ImageOnStore(local_store, res.path, "qcow2"), pool, "restored")
    assert back.backing_path is None and back.path == "restored.qcow2"


def test_iso_from_local_store_is_used_in_place(backend: LocalStorageBackend, local_store: StoreRef,
                                               images: Path) -> None:
    (images / "boot.iso").write_bytes(b"\x00" * 4096)
    assert backend.iso_path(ImageOnStore(local_store, "boot.iso", "iso")) == str((images / "boot.iso").resolve())
    with pytest.raises(PathOutsidePool):
        backend.iso_path(ImageOnStore(local_store, "../boot.iso", "iso"))


# ---------------------------------------------------------------- image safety (CVE-2024-45219 class)


def _refused(backend: LocalStorageBackend, pool: PoolRef, store: StoreRef, path: str, fmt: str) -> str:
    with pytest.raises(ImageError) as info:
        backend.template_to_pool(ImageOnStore(store, path, fmt), pool, "evil")  # type: ignore[arg-type]
    assert pool_files(pool) == []
    return str(info.value)


def test_qcow2_with_a_backing_file_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                              local_store: StoreRef, images: Path) -> None:
    qemu_img.create(str(images / "evil.qcow2"), "qcow2", backing="/etc/shadow", backing_fmt="raw")
    assert "backing file" in _refused(backend, pool, local_store, "evil.qcow2", "qcow2")


def test_qcow2_declared_as_raw_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                          local_store: StoreRef, images: Path) -> None:
    qemu_img.create(str(images / "evil.raw"), "qcow2", backing="/etc/shadow", backing_fmt="raw")
    assert "really qcow2" in _refused(backend, pool, local_store, "evil.raw", "raw")
    assert "really qcow2" in _refused(backend, pool, local_store, "tmpl.qcow2", "iso")


def test_qcow2_with_an_external_data_file_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                                     local_store: StoreRef, images: Path) -> None:
    qemu_img.create(str(images / "data.qcow2"), "qcow2", MiB, options=[f"data_file={images / 'ext.bin'}"])
    assert "data file" in _refused(backend, pool, local_store, "data.qcow2", "qcow2")


def test_format_mismatch_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                    local_store: StoreRef) -> None:
    assert "is really" in _refused(backend, pool, local_store, "tmpl.vhd", "raw")
    assert "really qcow2" in _refused(backend, pool, local_store, "tmpl.qcow2", "vhd")
    assert "not a qcow2" in _refused(backend, pool, local_store, "tmpl.raw", "qcow2")


def test_truncated_qcow2_is_refused(backend: LocalStorageBackend, pool: PoolRef, local_store: StoreRef,
                                    images: Path) -> None:
    (images / "cut.qcow2").write_bytes((images / "tmpl.qcow2").read_bytes()[:100])
    assert "not a valid qcow2" in _refused(backend, pool, local_store, "cut.qcow2", "qcow2")


# ---------------------------------------------------------------- path confinement


@pytest.mark.parametrize("path", ["../x.qcow2", "/etc/passwd", "a/../../x", "C:\\x.vhd"])
def test_hostile_paths_from_the_wire_are_refused(backend: LocalStorageBackend, pool: PoolRef,
                                                 local_store: StoreRef, path: str) -> None:
    with pytest.raises(PathOutsidePool):
        backend.local_path(ImageInPool(pool, path, "qcow2"))
    with pytest.raises(PathOutsidePool):
        backend.template_to_pool(ImageOnStore(local_store, path, "qcow2"), pool, "ok")
    with pytest.raises(PathOutsidePool):
        backend.template_to_pool(ImageOnStore(local_store, "tmpl.qcow2", "qcow2"), pool, path)
    with pytest.raises(PathOutsidePool):
        backend.delete_volume(ImageInPool(pool, path, "qcow2"))


def test_symlink_out_of_the_store_or_pool_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                                     local_store: StoreRef, images: Path,
                                                     tmp_path: Path) -> None:
    secret = tmp_path / "secret.qcow2"
    qemu_img.create(str(secret), "qcow2", MiB)
    os.symlink(secret, images / "link.qcow2")
    with pytest.raises(PathOutsidePool):
        backend.template_to_pool(ImageOnStore(local_store, "link.qcow2", "qcow2"), pool, "x")
    backend.attach_pool(pool)
    os.symlink(secret, Path(pool.path) / "vol.qcow2")
    with pytest.raises(PathOutsidePool):
        backend.delete_volume(ImageInPool(pool, "vol.qcow2", "qcow2"))
    assert secret.exists()
