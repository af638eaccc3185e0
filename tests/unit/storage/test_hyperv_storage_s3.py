"""Templates from S3 (moto's server on loopback) into a Hyper-V pool, and volumes back to S3."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest

from hvcloud.storage import vhd
from hvcloud.storage.backend import ImageInPool, ImageOnStore, PoolRef, S3Location, StoreRef
from hvcloud.storage.errors import ChecksumMismatch, StoreError
from tests.unit.storage.hyperv_env import HyperVHost, make_host, write_vhd_template

MiB = 1024 * 1024
POOL = PoolRef("p-s3", "SMB", "\\\\srv\\share\\s3pool", host="srv")


@pytest.fixture
def s3(s3_endpoint: str, request: pytest.FixtureRequest) -> tuple[StoreRef, object]:
    bucket = "hvs-" + request.node.name.lower().replace("_", "-")[:40]
    client = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="AK",
                          aws_secret_access_key="SK", region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    loc = S3Location(endpoint=s3_endpoint, bucket=bucket, access_key="AK", secret_key="SK", https=False)
    return StoreRef("s3", f"s3://{bucket}", s3=loc), client


@pytest.fixture
def host(tmp_path: Path) -> HyperVHost:
    return make_host(tmp_path)


def test_s3_template_to_smb_pool_and_linked_clone(host: HyperVHost, s3: tuple[StoreRef, object],
                                                  tmp_path: Path) -> None:
    store, client = s3
    src = tmp_path / "upload.vhd"
    content = write_vhd_template(src, 32 * MiB)
    data = src.read_bytes()
    client.put_object(Bucket=store.s3.bucket, Key="template/tmpl/1/5/t.vhd", Body=data)  # type: ignore[attr-defined, union-attr]
    image = ImageOnStore(store, "template/tmpl/1/5/t.vhd", "vhd",
                         checksum="{SHA-256}" + hashlib.sha256(data).hexdigest())
    res = host.storage.template_to_pool(image, POOL, "t5")
    assert res.virtual_size == 32 * MiB
    assert host.storage.local_path(ImageInPool(POOL, "t5", "vhd")) == "\\\\srv\\share\\s3pool\\t5.vhd"
    vol = host.storage.volume_from_template(ImageInPool(POOL, res.path, "vhd"), POOL, "v5")
    with vhd.Chain(str(host.root / "share/s3pool/v5.vhd")) as c:
        assert len(c.layers) == 2 and c.read(0, 32 * MiB) == content
    assert vol.backing_path == "\\\\srv\\share\\s3pool\\t5.vhd"
    up = host.storage.volume_to_store(ImageInPool(POOL, "v5", "vhd"), store, "template/tmpl/1/6", "t6")
    body = client.get_object(Bucket=store.s3.bucket, Key=up.path)["Body"].read()  # type: ignore[attr-defined, union-attr]
    flat = tmp_path / "flat.vhd"
    flat.write_bytes(body)
    with vhd.Chain(str(flat)) as c:
        assert len(c.layers) == 1 and c.read(0, 32 * MiB) == content
    props = client.get_object(Bucket=store.s3.bucket,  # type: ignore[attr-defined, union-attr]
                              Key="template/tmpl/1/6/template.properties")["Body"].read().decode()
    assert "id=6" in props and "vhd.filename=t6.vhd" in props


def test_s3_checksum_mismatch_and_missing_object(host: HyperVHost, s3: tuple[StoreRef, object],
                                                 tmp_path: Path) -> None:
    store, client = s3
    src = tmp_path / "t.vhd"
    write_vhd_template(src, 4 * MiB)
    client.put_object(Bucket=store.s3.bucket, Key="t.vhd", Body=src.read_bytes())  # type: ignore[attr-defined, union-attr]
    with pytest.raises(ChecksumMismatch):
        host.storage.template_to_pool(ImageOnStore(store, "t.vhd", "vhd", checksum="{MD5}" + "1" * 32), POOL, "x")
    with pytest.raises(StoreError):
        host.storage.template_to_pool(ImageOnStore(store, "missing.vhd", "vhd"), POOL, "y")
    assert sorted(p.name for p in (host.root / "share/s3pool").iterdir() if not p.name.startswith(".")) == []
