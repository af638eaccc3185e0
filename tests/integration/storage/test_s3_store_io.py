"""Objects on S3 image stores (moto's server on loopback), as the management server and the agents
both reach them: bounded and verified reads, clear errors, confined keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from hvcloud.storage.backend import S3Location, StoreRef
from hvcloud.storage.errors import ChecksumMismatch, SizeLimitExceeded, StoreError
from hvcloud.storage.limits import StoreLimits
from hvcloud.storage.s3_store import S3Store
from hvcloud.storage.transfer import parse_checksum
from tests.unit.storage.store_checks import assert_hostile_paths_refused

DATA = b"s3 template " * 50_000
REL = "template/tmpl/2/301/301.qcow2"


@pytest.fixture
def s3(s3_store: StoreRef) -> S3Store:
    assert s3_store.s3 is not None
    return S3Store(s3_store.s3, StoreLimits(max_image_bytes=len(DATA), s3_part_size=5 << 20))


def test_put_get_delete_round_trip(s3: S3Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(DATA)
    sent: list[tuple[int, int | None]] = []
    s3.put(src, REL, lambda done, total: sent.append((done, total)))
    assert sent[-1] == (len(DATA), len(DATA))
    got = tmp_path / "got"
    checksum = parse_checksum("{SHA-256}" + hashlib.sha256(DATA).hexdigest())
    assert s3.get(REL, got, checksum=checksum) == len(DATA) and got.read_bytes() == DATA
    s3.put_bytes(b"id=301\n", "template/tmpl/2/301/template.properties")
    s3.delete(REL)
    s3.delete(REL)
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    assert keys == ["template/tmpl/2/301/template.properties"]


def test_reads_are_bounded_and_verified(s3: S3Store, tmp_path: Path) -> None:
    s3.put_bytes(DATA + b"!", "big.raw")
    with pytest.raises(SizeLimitExceeded, match="larger than the size limit"):
        s3.get("big.raw", tmp_path / "big")
    assert not (tmp_path / "big").exists()
    s3.put_bytes(DATA, "ok.raw")
    with pytest.raises(ChecksumMismatch, match="checksum mismatch"):
        s3.get("ok.raw", tmp_path / "ok", checksum=parse_checksum("0" * 32))
    with pytest.raises(StoreError, match=r"S3 download of missing\.raw"):
        s3.get("missing.raw", tmp_path / "missing")


def test_hostile_keys_are_refused(s3: S3Store, tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"evil")
    assert_hostile_paths_refused(s3, tmp_path / "src", extra=("a/./b", "./a"))
    assert s3.client.list_objects_v2(Bucket=s3.bucket).get("KeyCount") == 0


def test_a_missing_bucket_is_a_store_error(s3_store: StoreRef, tmp_path: Path) -> None:
    assert s3_store.s3 is not None
    loc = S3Location(endpoint=s3_store.s3.endpoint, bucket="hvtest-no-such-bucket", access_key="AK",
                     secret_key="SK", https=False)
    store = S3Store(loc)
    src = tmp_path / "src"
    src.write_bytes(b"x")
    with pytest.raises(StoreError, match="S3 upload of a/b to hvtest-no-such-bucket failed"):
        store.put(src, "a/b")
    with pytest.raises(StoreError, match="S3 upload"):
        store.put_bytes(b"x", "a/b")
    with pytest.raises(StoreError, match="S3 delete"):
        store.delete("a/b")
