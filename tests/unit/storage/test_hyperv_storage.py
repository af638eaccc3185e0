"""HyperVStorageBackend on Linux: E:\\ and \\\\srv\\share mapped onto temp directories, VHDs made
and read by the native library and cross-checked by libvhdi, VHDX through the strict WMI model."""

from __future__ import annotations

import bz2
import hashlib
import shutil
from pathlib import Path, PureWindowsPath

import pytest

from hvcloud.hypervisor.driver import NotSupported
from hvcloud.storage import qemu_img, vhd, vhdx
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, StoreRef
from hvcloud.storage.errors import ChecksumMismatch, ImageError, PathOutsidePool, StorageError
from hvcloud.storage.vhd.chain import find_parent, read_locator_data
from hvcloud.storage.vhd.locators import decode_locator
from tests.unit.storage.hyperv_env import HyperVHost, make_host, write_vhd_template

pyvhdi = pytest.importorskip("pyvhdi", reason="libvhdi-python is not installed")

MiB = 1024 * 1024
SIZE = 64 * MiB
POOL = PoolRef("5fe2bad3-d785-394e-9949-89786b8a63d2", "Filesystem", "E:\\Disks")
SMB_POOL = PoolRef("0a1b2c3d-smb", "SMB", "/share/pool1", host="srv")
STORE = StoreRef("cifs", "cifs://10.1.1.1/secondary")
TMPL_PATH = "template/tmpl/2/201/61d5316a.vhd"


@pytest.fixture
def host(tmp_path: Path) -> HyperVHost:
    return make_host(tmp_path)


@pytest.fixture
def template(host: HyperVHost) -> bytes:
    path = host.root / "secondary" / TMPL_PATH
    path.parent.mkdir(parents=True)
    return write_vhd_template(path, SIZE)


def _store_image(path: str = TMPL_PATH, fmt: str = "vhd", checksum: str | None = None) -> ImageOnStore:
    return ImageOnStore(STORE, path, fmt, checksum=checksum)  # type: ignore[arg-type]


def _libvhdi_read(child: Path, parent: Path | None) -> bytes:
    f = pyvhdi.file()
    f.open(str(child))
    keep = [f]
    if parent is not None:
        p = pyvhdi.file()
        p.open(str(parent))
        f.set_parent(p)  # libvhdi refuses a parent whose identifier differs from the child's record
        keep.append(p)
    f.seek(0)
    data: bytes = f.read_buffer(f.media_size)
    return data


# ------------------------------------------------------------------------- pools


@pytest.mark.parametrize("pool", [POOL, SMB_POOL])
def test_attach_pool_and_stats(host: HyperVHost, pool: PoolRef) -> None:
    stats = host.storage.attach_pool(pool)
    expected_local = host.root / ("e/Disks" if pool is POOL else "share/pool1")
    assert expected_local.is_dir()
    usage = shutil.disk_usage(expected_local)
    assert stats.capacity_bytes == usage.total and 0 < stats.available_bytes <= usage.total
    assert PureWindowsPath(stats.path) == PureWindowsPath("E:\\Disks" if pool is POOL else "\\\\srv\\share\\pool1")
    host.storage.detach_pool(pool)
    assert expected_local.is_dir()


def test_unmapped_pool_is_refused(host: HyperVHost) -> None:
    with pytest.raises(StorageError, match="not reachable"):
        host.storage.attach_pool(PoolRef("x", "Filesystem", "F:\\Disks"))


def test_heartbeat_on_smb_pool(host: HyperVHost) -> None:
    host.storage.write_heartbeat(SMB_POOL, "10.0.0.5", when=1_700_000_000)
    assert (host.root / "share/pool1/hb-10.0.0.5").read_text() == "2023-11-14@22:13:20"
    assert host.storage.read_heartbeat(SMB_POOL, "10.0.0.5") == 1_700_000_000
    assert host.storage.read_heartbeat(SMB_POOL, "10.0.0.6") is None


@pytest.mark.parametrize("name", ["..\\x", "x.vhd:ads", "CON", "C:\\x.vhd", "\\\\evil\\s\\x.vhd", "x.vhd."])
def test_hostile_volume_names_never_touch_files(host: HyperVHost, name: str) -> None:
    with pytest.raises(PathOutsidePool):
        host.storage.create_volume(POOL, name, MiB, "vhd")
    with pytest.raises(PathOutsidePool):
        host.storage.delete_volume(ImageInPool(POOL, name, "vhd"))
    assert sorted(p.name for p in (host.root / "e/Disks").iterdir()) == []


# ------------------------------------------------------------------------- templates


def test_template_from_cifs_store_is_cached_once(host: HyperVHost, template: bytes,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sha = hashlib.sha256((host.root / "secondary" / TMPL_PATH).read_bytes()).hexdigest()
    res = host.storage.template_to_pool(_store_image(checksum="{SHA-256}" + sha), POOL, "7e4c5b0a")
    assert res.path == "7e4c5b0a.vhd" and res.format == "vhd" and res.virtual_size == SIZE
    cached = host.root / "e/Disks/7e4c5b0a.vhd"
    with vhd.Chain(str(cached)) as c:
        assert c.read(0, SIZE) == template
    fetches: list[str] = []
    monkeypatch.setattr(host.storage, "_fetch", lambda *a: fetches.append("fetch"))
    again = host.storage.template_to_pool(_store_image(), POOL, "7e4c5b0a")
    assert fetches == [] and again.path == res.path
    assert host.storage.local_path(ImageInPool(POOL, "7e4c5b0a", "vhd")) == "E:\\Disks\\7e4c5b0a.vhd"
    leftovers = [p.name for p in (host.root / "e/Disks").iterdir() if p.name.startswith(".hvcloud-dl")]
    assert leftovers == []


def test_template_checksum_mismatch_leaves_nothing(host: HyperVHost, template: bytes) -> None:
    with pytest.raises(ChecksumMismatch):
        host.storage.template_to_pool(_store_image(checksum="{MD5}" + "0" * 32), POOL, "bad")
    assert not (host.root / "e/Disks/bad.vhd").exists()


def test_qcow2_template_is_refused(host: HyperVHost) -> None:
    if not qemu_img.available():
        pytest.skip("qemu-img is not installed")
    src = host.root / "secondary/t.qcow2"
    qemu_img.create(str(src), "qcow2", MiB)
    with pytest.raises(ImageError, match="VHD and VHDX"):
        host.storage.template_to_pool(_store_image("t.qcow2", "qcow2"), POOL, "q")


def test_differencing_vhd_template_is_refused(host: HyperVHost, template: bytes) -> None:
    evil = host.root / "secondary/evil.vhd"
    vhd.create_differencing(str(evil), str(host.root / "secondary" / TMPL_PATH))
    with pytest.raises(ImageError, match="differencing"):
        host.storage.template_to_pool(_store_image("evil.vhd"), POOL, "evil")
    assert not (host.root / "e/Disks/evil.vhd").exists()


def test_format_mismatch_is_refused(host: HyperVHost, template: bytes) -> None:
    with pytest.raises(ImageError, match="mismatch"):
        host.storage.template_to_pool(_store_image(TMPL_PATH, "vhdx"), POOL, "m")
    with pytest.raises(ImageError, match="mismatch"):
        host.storage.template_to_pool(_store_image(TMPL_PATH, "raw"), POOL, "m")


def test_raw_template_becomes_dynamic_vhd(host: HyperVHost) -> None:
    raw = host.root / "secondary/disk.raw"
    data = bytearray(8 * MiB)
    data[:4] = b"BOOT"
    data[5 * MiB:5 * MiB + 3] = b"mid"
    raw.write_bytes(bytes(data))
    res = host.storage.template_to_pool(_store_image("disk.raw", "raw"), POOL, "rawt")
    assert res.format == "vhd" and res.virtual_size == 8 * MiB
    with vhd.VhdFile(str(host.root / "e/Disks/rawt.vhd")) as vf:
        assert vf.disk_type == vhd.DiskType.DYNAMIC
    assert _libvhdi_read(host.root / "e/Disks/rawt.vhd", None) == bytes(data)


def test_bz2_template_is_unpacked(host: HyperVHost, template: bytes) -> None:
    src = host.root / "secondary" / TMPL_PATH
    packed = host.root / "secondary/t.vhd.bz2"
    packed.write_bytes(bz2.compress(src.read_bytes()))
    res = host.storage.template_to_pool(_store_image("t.vhd.bz2"), POOL, "bz")
    assert res.virtual_size == SIZE
    with vhd.Chain(str(host.root / "e/Disks/bz.vhd")) as c:
        assert c.read(0, SIZE) == template


def test_missing_template_on_store(host: HyperVHost) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        host.storage.template_to_pool(_store_image("nope.vhd"), POOL, "n")
    with pytest.raises(PathOutsidePool):
        host.storage.template_to_pool(_store_image("..\\..\\e\\Disks\\x.vhd"), POOL, "n")


# ------------------------------------------------------------------------- linked clones


@pytest.mark.parametrize("fixed", [False, True])
def test_linked_clone_is_a_differencing_vhd_of_the_template(host: HyperVHost, fixed: bool) -> None:
    src = host.root / "secondary/t.vhd"
    content = write_vhd_template(src, SIZE, fixed=fixed)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    res = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhd"), POOL, "vol1")
    assert res.path == "vol1.vhd" and res.virtual_size == SIZE
    assert res.backing_path == "E:\\Disks\\tmpl.vhd"
    child, parent = host.root / "e/Disks/vol1.vhd", host.root / "e/Disks/tmpl.vhd"
    assert child.stat().st_size < 2 * MiB
    with vhd.VhdFile(str(child)) as vf, vhd.VhdFile(str(parent)) as pf:
        assert vf.disk_type == vhd.DiskType.DIFFERENCING
        assert vf.header is not None and vf.header.parent_id == pf.footer.unique_id
        assert vf.header.parent_name == "tmpl.vhd"
        locs = {loc.platform: decode_locator(loc.platform, data)
                for loc, data in zip(vf.header.locators, read_locator_data(vf).values(), strict=False)}
        assert locs[b"W2ru"] == ".\\tmpl.vhd" and locs[b"W2ku"] == "E:\\Disks\\tmpl.vhd"
        assert find_parent(vf)[0] == str(parent)
    assert vhd.check(str(child)).ok
    with vhd.Chain(str(child)) as c:
        assert len(c.layers) == 2 and c.read(0, SIZE) == content
    assert _libvhdi_read(child, parent) == content
    # a guest write lands in the child only
    with vhd.Chain(str(child), writable=True) as c:
        c.write(MiB, b"guest" * 1000)
    with vhd.Chain(str(parent)) as c:
        assert c.read(MiB, 5) == content[MiB:MiB + 5]
    assert _libvhdi_read(child, parent)[MiB:MiB + 5] == b"guest"


def test_libvhdi_rejects_the_clone_over_another_parent(host: HyperVHost) -> None:
    write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhd"), POOL, "vol1")
    impostor = host.root / "e/Disks/impostor.vhd"
    vhd.create_dynamic(str(impostor), SIZE)
    with pytest.raises(OSError, match="identifier"):
        _libvhdi_read(host.root / "e/Disks/vol1.vhd", impostor)


def test_linked_clone_on_smb_pool_names_unc_parent(host: HyperVHost) -> None:
    content = write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), SMB_POOL, "tmpl")
    res = host.storage.volume_from_template(ImageInPool(SMB_POOL, cached.path, "vhd"), SMB_POOL, "v")
    assert res.backing_path == "\\\\srv\\share\\pool1\\tmpl.vhd"
    assert host.storage.local_path(ImageInPool(SMB_POOL, "v", "vhd")) == "\\\\srv\\share\\pool1\\v.vhd"
    child = host.root / "share/pool1/v.vhd"
    with vhd.VhdFile(str(child)) as vf:
        data = read_locator_data(vf)
        paths = [decode_locator(loc.platform, data[i]) for i, loc in enumerate(vf.header.locators)  # type: ignore[union-attr]
                 if loc.used]
    assert paths == [".\\tmpl.vhd", "\\\\srv\\share\\pool1\\tmpl.vhd"]
    assert _libvhdi_read(child, host.root / "share/pool1/tmpl.vhd") == content


def test_full_copy_and_grown_clone_are_independent(host: HyperVHost) -> None:
    content = write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    tmpl = ImageInPool(POOL, cached.path, "vhd")
    full = host.storage.volume_from_template(tmpl, POOL, "full", full_copy=True)
    grown = host.storage.volume_from_template(tmpl, POOL, "grown", size=SIZE + 16 * MiB)
    assert full.backing_path is None and grown.backing_path is None
    assert grown.virtual_size == SIZE + 16 * MiB
    for name in ("full", "grown"):
        path = host.root / f"e/Disks/{name}.vhd"
        with vhd.VhdFile(str(path)) as vf:
            assert vf.disk_type == vhd.DiskType.DYNAMIC
        assert _libvhdi_read(path, None)[:SIZE] == content


def test_clone_of_missing_template(host: HyperVHost) -> None:
    with pytest.raises(StorageError, match="not in pool"):
        host.storage.volume_from_template(ImageInPool(POOL, "ghost", "vhd"), POOL, "v")


def test_template_of_unknown_format_is_found_by_extension(host: HyperVHost) -> None:
    write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    res = host.storage.volume_from_template(ImageInPool(POOL, "tmpl", "qcow2"), POOL, "v")
    assert res.path == "v.vhd" and res.backing_path == "E:\\Disks\\tmpl.vhd"


# ------------------------------------------------------------------------- VHDX through IMS


def _vhdx_template(host: HyperVHost) -> Path:
    src = host.root / "secondary/t.vhdx"
    vhdx.create_dynamic(src, SIZE)
    return src


def test_vhdx_linked_clone_through_image_management_service(host: HyperVHost) -> None:
    _vhdx_template(host)
    cached = host.storage.template_to_pool(_store_image("t.vhdx", "vhdx"), POOL, "tmplx")
    res = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhdx"), POOL, "vx")
    assert res.format == "vhdx" and res.virtual_size == SIZE
    assert res.backing_path == "E:\\Disks\\tmplx.vhdx"
    assert "Msvm_ImageManagementService.CreateVirtualHardDisk" in host.model.calls
    disk = host.model.virtual_disks["e:\\disks\\vx.vhdx"]
    assert disk["Type"] == 4 and disk["Format"] == 3 and disk["ParentPath"] == "E:\\Disks\\tmplx.vhdx"
    info = vhdx.read_info(host.root / "e/Disks/vx.vhdx")
    parent = vhdx.read_info(host.root / "e/Disks/tmplx.vhdx")
    assert info.has_parent and info.parent["parent_linkage"] == "{" + str(parent.data_write_guid) + "}"
    f = pyvhdi.file()
    f.open(str(host.root / "e/Disks/vx.vhdx"))
    p = pyvhdi.file()
    p.open(str(host.root / "e/Disks/tmplx.vhdx"))
    f.set_parent(p)
    assert f.parent_filename == "E:\\Disks\\tmplx.vhdx"


def test_grown_vhdx_clone_is_a_full_copy_as_hyperv_never_resizes_a_differencing_disk(
        host: HyperVHost) -> None:
    """#20 item 4: the old backend made a differencing child and resized it, which the host (and
    now the model) refuses."""
    _vhdx_template(host)
    cached = host.storage.template_to_pool(_store_image("t.vhdx", "vhdx"), POOL, "tmplx")
    res = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhdx"), POOL, "vg",
                                            size=SIZE + 16 * MiB)
    assert res.backing_path is None and res.virtual_size == SIZE + 16 * MiB
    assert not vhdx.read_info(host.root / "e/Disks/vg.vhdx").has_parent
    assert host.model.virtual_disks["e:\\disks\\vg.vhdx"]["MaxInternalSize"] == SIZE + 16 * MiB
    linked = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhdx"), POOL, "vl")
    with pytest.raises(NotSupported, match="differencing"):
        host.storage.resize_volume(ImageInPool(POOL, linked.path, "vhdx"), SIZE + 16 * MiB)


def test_vhdx_clone_without_ims_is_a_full_copy(tmp_path: Path) -> None:
    host = make_host(tmp_path, with_ims=False)
    _vhdx_template(host)
    cached = host.storage.template_to_pool(_store_image("t.vhdx", "vhdx"), POOL, "tmplx")
    res = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhdx"), POOL, "vx")
    assert res.backing_path is None and not vhdx.read_info(host.root / "e/Disks/vx.vhdx").has_parent
    assert host.model.calls == []


def test_differencing_vhdx_template_is_refused(host: HyperVHost) -> None:
    parent = _vhdx_template(host)
    vhdx.create_differencing(host.root / "secondary/evil.vhdx", parent,
                             absolute_win32_path="C:\\Windows\\System32\\config\\SAM")
    with pytest.raises(ImageError, match="differencing"):
        host.storage.template_to_pool(_store_image("evil.vhdx", "vhdx"), POOL, "evil")


# ------------------------------------------------------------------------- blank volumes


def test_blank_volume_is_dynamic_vhdx_through_ims(host: HyperVHost) -> None:
    res = host.storage.create_volume(POOL, "19ae8e67", 100 * MiB, "qcow2")
    assert res.path == "19ae8e67.vhdx" and res.format == "vhdx" and res.virtual_size == 100 * MiB
    assert host.model.virtual_disks["e:\\disks\\19ae8e67.vhdx"]["Type"] == 3
    if qemu_img.available():
        assert qemu_img.info(str(host.root / "e/Disks/19ae8e67.vhdx"), "vhdx").virtual_size == 100 * MiB
    again = host.storage.create_volume(POOL, "19ae8e67", 100 * MiB, "vhdx")
    assert again.path == res.path
    with pytest.raises(StorageError, match="another size"):
        host.storage.create_volume(POOL, "19ae8e67", 200 * MiB, "vhdx")
    grown = host.storage.resize_volume(ImageInPool(POOL, "19ae8e67", "vhdx"), 300 * MiB)
    assert grown.virtual_size == 300 * MiB
    assert "Msvm_ImageManagementService.ResizeVirtualHardDisk" in host.model.calls


def test_blank_volume_without_ims_is_dynamic_vhd(tmp_path: Path) -> None:
    host = make_host(tmp_path, with_ims=False)
    res = host.storage.create_volume(POOL, "data1", 10 * MiB + 1)
    assert res.format == "vhd" and res.virtual_size == 11 * MiB
    path = host.root / "e/Disks/data1.vhd"
    assert vhd.check(str(path)).ok
    assert _libvhdi_read(path, None) == bytes(11 * MiB)
    grown = host.storage.resize_volume(ImageInPool(POOL, "data1", "vhd"), 20 * MiB)
    assert grown.virtual_size == 20 * MiB
    with pytest.raises(StorageError, match="shrinking"):
        host.storage.resize_volume(ImageInPool(POOL, "data1", "vhd"), MiB)
    with pytest.raises(ImageError):
        host.storage.create_volume(POOL, "bad", 0)


def test_delete_volume(host: HyperVHost) -> None:
    host.storage.create_volume(POOL, "gone", MiB, "vhd")
    path = host.root / "e/Disks/gone.vhd"
    assert path.exists()
    host.storage.delete_volume(ImageInPool(POOL, "gone", "qcow2"))
    assert not path.exists()
    host.storage.delete_volume(ImageInPool(POOL, "gone", "vhd"))


# ------------------------------------------------------------------------- volume → store


def test_volume_to_cifs_store_flattens_and_writes_template_properties(host: HyperVHost) -> None:
    content = write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhd"), POOL, "root1")
    with vhd.Chain(str(host.root / "e/Disks/root1.vhd"), writable=True) as c:
        c.write(2 * MiB, b"written-by-guest")
    res = host.storage.volume_to_store(ImageInPool(POOL, "root1", "vhd"), STORE,
                                       "template/tmpl/2/301", "abc-301")
    assert res.path == "template/tmpl/2/301/abc-301.vhd" and res.virtual_size == SIZE
    out = host.root / "secondary/template/tmpl/2/301/abc-301.vhd"
    with vhd.VhdFile(str(out)) as vf:
        assert vf.disk_type == vhd.DiskType.DYNAMIC
    expected = bytearray(content)
    expected[2 * MiB:2 * MiB + 16] = b"written-by-guest"
    assert _libvhdi_read(out, None) == bytes(expected)
    props = dict(line.split("=", 1) for line in
                 (out.parent / "template.properties").read_text().splitlines())
    assert props == {"id": "301", "filename": "abc-301.vhd", "vhd.filename": "abc-301.vhd",
                     "uniquename": "abc-301", "vhd": "true", "virtualsize": str(SIZE),
                     "vhd.virtualsize": str(SIZE), "size": str(out.stat().st_size),
                     "vhd.size": str(out.stat().st_size), "public": "false"}


def test_store_to_volume_and_iso_path(host: HyperVHost, template: bytes) -> None:
    res = host.storage.store_to_volume(_store_image(), POOL, "restored")
    assert res.path == "restored.vhd"
    with pytest.raises(StorageError, match="already exists"):
        host.storage.store_to_volume(_store_image(), POOL, "restored")
    iso = host.root / "secondary/iso/tiny.iso"
    iso.parent.mkdir()
    data = bytearray(64 * 1024)
    data[0x8001:0x8006] = b"CD001"
    iso.write_bytes(bytes(data))
    path = host.storage.iso_path(ImageOnStore(StoreRef("cifs", "cifs://10.1.1.1/secondary?user=a&password=b"),
                                              "iso/tiny.iso", "iso"))
    assert path == "\\\\10.1.1.1\\secondary\\iso\\tiny.iso"
    with pytest.raises(StorageError):
        host.storage.iso_path(ImageOnStore(STORE, "iso/none.iso", "iso"))


def test_template_properties_for_vhdx(host: HyperVHost) -> None:
    _vhdx_template(host)
    host.storage.template_to_pool(_store_image("t.vhdx", "vhdx"), POOL, "tx")
    res = host.storage.volume_to_store(ImageInPool(POOL, "tx", "vhdx"), STORE, "template/tmpl/1/9", "n")
    assert res.format == "vhdx" and res.virtual_size == SIZE
    text = (host.root / "secondary/template/tmpl/1/9/template.properties").read_text()
    assert "vhdx.filename=n.vhdx" in text and "vhdx=true" in text


# ------------------------------------------------------------------------- without the native library


def test_without_native_vhd_library_hyper_v_makes_the_vhds(tmp_path: Path) -> None:
    """What the backend does on Windows, where the native VHD library cannot run (os.pread):
    VHDs are created and resized by IMS (Format 2) and checked by their footer."""
    host = make_host(tmp_path, native_vhd=False)
    content = write_vhd_template(host.root / "secondary/t.vhd", SIZE)
    cached = host.storage.template_to_pool(_store_image("t.vhd"), POOL, "tmpl")
    assert cached.virtual_size == SIZE
    res = host.storage.volume_from_template(ImageInPool(POOL, cached.path, "vhd"), POOL, "v")
    assert res.backing_path == "E:\\Disks\\tmpl.vhd"
    disk = host.model.virtual_disks["e:\\disks\\v.vhd"]
    assert (disk["Type"], disk["Format"], disk["ParentPath"]) == (4, 2, "E:\\Disks\\tmpl.vhd")
    assert _libvhdi_read(host.root / "e/Disks/v.vhd", host.root / "e/Disks/tmpl.vhd") == content
    blank = host.storage.create_volume(POOL, "b", 8 * MiB, "vhd")
    assert blank.virtual_size == 8 * MiB and host.model.virtual_disks["e:\\disks\\b.vhd"]["Format"] == 2
    assert host.storage.resize_volume(ImageInPool(POOL, "b", "vhd"), 16 * MiB).virtual_size == 16 * MiB
    with pytest.raises(ImageError, match="flattening"):
        host.storage.volume_to_store(ImageInPool(POOL, "v", "vhd"), STORE, "t/1", "x")
    vhd.create_differencing(str(host.root / "secondary/evil.vhd"), str(host.root / "secondary/t.vhd"))
    with pytest.raises(ImageError, match="differencing"):
        host.storage.template_to_pool(_store_image("evil.vhd"), POOL, "evil")
    (host.root / "secondary/d.raw").write_bytes(bytes(MiB))
    with pytest.raises(ImageError, match="raw"):
        host.storage.template_to_pool(_store_image("d.raw", "raw"), POOL, "r")
    damaged = host.root / "secondary/damaged.vhd"
    raw = bytearray((host.root / "secondary/t.vhd").read_bytes())
    raw[-512 + 48] ^= 0xFF  # the footer's current size: its checksum no longer matches
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ImageError):
        host.storage.template_to_pool(_store_image("damaged.vhd"), POOL, "d")


def test_without_ims_or_native_library_vhds_are_refused(tmp_path: Path) -> None:
    host = make_host(tmp_path, with_ims=False, native_vhd=False)
    with pytest.raises(StorageError, match="image management service"):
        host.storage.create_volume(POOL, "b", MiB)
