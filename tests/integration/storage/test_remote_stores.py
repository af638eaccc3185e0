"""Image stores over the network: HTTP servers and an S3 server (moto) on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from hvcloud.storage import qemu_img
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, S3Location, StoreRef
from hvcloud.storage.errors import ChecksumMismatch, ImageError, PathOutsidePool, StoreError, UnsafeUrl
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.local import LocalStorageBackend

HttpServer = Callable[..., str]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- HTTP


def test_http_template_download_with_checksum(backend: LocalStorageBackend, pool: PoolRef, images: Path,
                                              http_server: HttpServer) -> None:
    base = http_server(images)
    store = StoreRef(kind="http", url=base)
    src = ImageOnStore(store, f"{base}/tmpl.qcow2", "qcow2", checksum="{SHA-256}" + sha256(images / "tmpl.qcow2"))
    res = backend.template_to_pool(src, pool, "http-t")
    assert qemu_img.compare(str(Path(pool.path) / res.path), "qcow2", str(images / "tmpl.raw"), "raw")
    relative = backend.template_to_pool(ImageOnStore(store, "tmpl.raw", "raw"), pool, "http-r")
    assert relative.path == "http-r.raw"


def test_http_redirect_on_the_same_host_is_followed(backend: LocalStorageBackend, pool: PoolRef,
                                                    images: Path, http_server: HttpServer) -> None:
    redirects: dict[str, str] = {"/old.qcow2": "/tmpl.qcow2"}
    base = http_server(images, redirects)
    res = backend.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/old.qcow2", "qcow2"), pool, "r")
    assert res.virtual_size == 16 << 20


def test_http_redirect_to_another_host_is_refused(backend: LocalStorageBackend, pool: PoolRef,
                                                  images: Path, http_server: HttpServer,
                                                  tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    (other_dir / "x.qcow2").write_bytes((images / "tmpl.qcow2").read_bytes())
    other = http_server(other_dir)
    redirects: dict[str, str] = {"/x.qcow2": f"{other}/x.qcow2",
                                 "/y.qcow2": other.replace("127.0.0.1", "localhost") + "/x.qcow2"}
    base = http_server(images, redirects)
    for name in ("x.qcow2", "y.qcow2"):
        with pytest.raises(StoreError, match="another host"):
            backend.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/{name}", "qcow2"), pool, "x")
    assert not list(Path(pool.path).glob("*.qcow2"))


def test_http_oversize_is_refused_with_and_without_content_length(pool: PoolRef, images: Path,
                                                                  http_server: HttpServer,
                                                                  tmp_path: Path) -> None:
    small = LocalStorageBackend(tmp_path / "d2", limits=StoreLimits(max_image_bytes=100_000))
    base = http_server(images)
    with pytest.raises(StoreError, match="larger than the size limit"):
        small.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/tmpl.qcow2", "qcow2"), pool, "o")
    with pytest.raises(StoreError, match="larger than the size limit"):
        small.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/stream/tmpl.qcow2", "qcow2"),
                               pool, "o")
    assert not list(Path(pool.path).glob("*.qcow2"))


def test_http_errors_are_clear(backend: LocalStorageBackend, pool: PoolRef, images: Path,
                               http_server: HttpServer) -> None:
    base = http_server(images)
    with pytest.raises(StoreError, match="HTTP 404"):
        backend.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/missing", "qcow2"), pool, "m")
    with pytest.raises(StoreError, match="failed"):
        backend.template_to_pool(ImageOnStore(StoreRef("http", "http://127.0.0.1:1"), "http://127.0.0.1:1/x",
                                              "qcow2"), pool, "m")
    with pytest.raises(StoreError, match="scheme"):
        backend.template_to_pool(ImageOnStore(StoreRef("http", base), "file:///etc/passwd", "raw"), pool, "m")
    with pytest.raises(ChecksumMismatch):
        backend.template_to_pool(ImageOnStore(StoreRef("http", base), f"{base}/tmpl.qcow2", "qcow2",
                                              checksum="{MD5}" + "0" * 32), pool, "m")


def test_http_stores_follow_the_shared_url_rules(backend: LocalStorageBackend, pool: PoolRef) -> None:
    for url, fragment in (("http://169.254.169.254/latest/meta-data", "link-local"),
                          ("http://user:pw@127.0.0.1:1/x.raw", "credentials"),
                          ("http://0.0.0.0:1/x.raw", "reserved")):
        with pytest.raises(UnsafeUrl, match=fragment):
            backend.template_to_pool(ImageOnStore(StoreRef("http", "http://127.0.0.1:1"), url, "raw"), pool, "u")
    assert not list(Path(pool.path).glob("*.raw"))


def test_http_iso_is_cached_locally(backend: LocalStorageBackend, images: Path, http_server: HttpServer) -> None:
    (images / "x.iso").write_bytes(b"CD001" * 1000)
    base = http_server(images)
    iso = ImageOnStore(StoreRef("http", base), f"{base}/x.iso", "iso")
    path = backend.iso_path(iso)
    assert Path(path).read_bytes() == b"CD001" * 1000
    (images / "x.iso").unlink()
    assert backend.iso_path(iso) == path


# ---------------------------------------------------------------- S3


def _put(store: StoreRef, key: str, path: Path) -> None:
    assert store.s3 is not None
    boto3.client("s3", endpoint_url=f"http://{store.s3.endpoint}", aws_access_key_id="AK",
                 aws_secret_access_key="SK", region_name="us-east-1").upload_file(str(path), store.s3.bucket, key)


def test_s3_template_to_pool_and_linked_clone(backend: LocalStorageBackend, pool: PoolRef, images: Path,
                                              s3_store: StoreRef) -> None:
    _put(s3_store, "template/tmpl/1/5/t.vhd", images / "tmpl.vhd")
    src = ImageOnStore(s3_store, "template/tmpl/1/5/t.vhd", "vhd",
                       checksum=hashlib.md5((images / "tmpl.vhd").read_bytes()).hexdigest())
    res = backend.template_to_pool(src, pool, "s3-t")
    assert res.format == "qcow2"
    vol = backend.volume_from_template(ImageInPool(pool, res.path, res.format), pool, "s3-root")
    assert vol.backing_path == "s3-t.qcow2"
    assert qemu_img.compare(backend.local_path(ImageInPool(pool, "s3-root", "qcow2")), "qcow2",
                            str(images / "tmpl.raw"), "raw")


def test_s3_volume_to_store_and_back(backend: LocalStorageBackend, pool: PoolRef, images: Path,
                                     s3_store: StoreRef) -> None:
    _put(s3_store, "t.qcow2", images / "tmpl.qcow2")
    t = backend.template_to_pool(ImageOnStore(s3_store, "t.qcow2", "qcow2"), pool, "t")
    res = backend.volume_to_store(ImageInPool(pool, t.path, "qcow2"), s3_store, "template/tmpl/2/77", "snap")
    assert res.path == "template/tmpl/2/77/snap.qcow2"
    assert s3_store.s3 is not None
    client = boto3.client("s3", endpoint_url=f"http://{s3_store.s3.endpoint}", aws_access_key_id="AK",
                          aws_secret_access_key="SK", region_name="us-east-1")
    props = client.get_object(Bucket=s3_store.s3.bucket, Key="template/tmpl/2/77/template.properties")
    text = props["Body"].read().decode()
    assert "id=77" in text and "qcow2.filename=snap.qcow2" in text
    back = backend.store_to_volume(ImageOnStore(s3_store, res.path, "qcow2"), pool, "vol-back")
    assert qemu_img.compare(backend.local_path(ImageInPool(pool, back.path, "qcow2")), "qcow2",
                            str(images / "tmpl.raw"), "raw")


def test_s3_unsafe_image_and_bad_keys_are_refused(backend: LocalStorageBackend, pool: PoolRef,
                                                  images: Path, s3_store: StoreRef) -> None:
    qemu_img.create(str(images / "evil.qcow2"), "qcow2", backing="/etc/passwd", backing_fmt="raw")
    _put(s3_store, "evil.raw", images / "evil.qcow2")
    with pytest.raises(ImageError, match="really qcow2"):
        backend.template_to_pool(ImageOnStore(s3_store, "evil.raw", "raw"), pool, "e")
    with pytest.raises(PathOutsidePool):
        backend.template_to_pool(ImageOnStore(s3_store, "../evil.raw", "raw"), pool, "e")
    with pytest.raises(StoreError, match="S3 download"):
        backend.template_to_pool(ImageOnStore(s3_store, "missing.qcow2", "qcow2"), pool, "e")
    assert not list(Path(pool.path).glob("*.qcow2")) and not list(Path(pool.path).glob("*.raw"))


def test_s3_secret_never_shows_in_reprs() -> None:
    loc = S3Location(endpoint="127.0.0.1:9", bucket="b", access_key="AK", secret_key="TOPSECRET")
    assert "TOPSECRET" not in repr(loc) and "TOPSECRET" not in repr(StoreRef("s3", "s3://b", loc))
