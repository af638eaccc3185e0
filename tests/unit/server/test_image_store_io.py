"""How the server reaches an image store row: directories for file and NFS stores, S3 settings
from the store's details, and a clear refusal for stores it cannot reach."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from hvcloud.server.db.crypto import SecretBox
from hvcloud.server.db.models import ImageStore
from hvcloud.server.orchestration.image_store_io import StoreAccessError, open_store
from hvcloud.storage.s3_store import S3Store
from hvcloud.storage.store_io import DirectoryStore


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def row(box: SecretBox, provider: str, url: str, details: dict[str, str] | None = None) -> ImageStore:
    return ImageStore(name="s", provider=provider, protocol="nfs", url=url, scope="ZONE",
                      details_enc=box.encrypt(json.dumps(details)) if details else None)


def test_file_and_nfs_stores_are_directories(box: SecretBox, tmp_path: Path) -> None:
    local = open_store(row(box, "NFS", f"file://{tmp_path}/images"), box, tmp_path / "mnt")
    mounted = open_store(row(box, "NFS", "nfs://10.0.0.9/export/secondary"), box, tmp_path / "mnt")
    pinned = open_store(row(box, "NFS", "nfs://10.0.0.9/export", {"localpath": str(tmp_path / "lp")}), box,
                        tmp_path / "mnt")
    assert isinstance(local, DirectoryStore) and local.root == tmp_path / "images"
    assert isinstance(mounted, DirectoryStore) and mounted.root == tmp_path / "mnt/10.0.0.9/export/secondary"
    assert isinstance(pinned, DirectoryStore) and pinned.root == tmp_path / "lp"
    (tmp_path / "images").mkdir()
    src = tmp_path / "src"
    src.write_bytes(b"image")
    local.put(src, "template/tmpl/1/2/2.raw")
    assert (tmp_path / "images/template/tmpl/1/2/2.raw").read_bytes() == b"image"


def test_s3_settings_come_from_the_details(box: SecretBox, tmp_path: Path) -> None:
    details = {"endpoint": "s3.example.test:9000", "bucket": "tmpl", "accesskey": "AK", "secretkey": "SK",
               "usehttps": "true", "connectiontimeout": "2500", "sockettimeout": "30000", "maxerrorretry": "7",
               "region": "eu-west-3"}
    store = open_store(row(box, "S3", "https://s3.example.test:9000/tmpl", details), box, tmp_path)
    assert isinstance(store, S3Store) and store.bucket == "tmpl"
    meta = store.client.meta
    assert meta.endpoint_url == "https://s3.example.test:9000" and meta.region_name == "eu-west-3"
    assert (meta.config.connect_timeout, meta.config.read_timeout) == (2.5, 30.0)
    assert meta.config.retries["total_max_attempts"] == 1 + 7
    plain = open_store(row(box, "S3", "http://h/b", {"endpoint": "h:1", "bucket": "b", "accesskey": "A",
                                                     "secretkey": "S"}), box, tmp_path)
    assert isinstance(plain, S3Store) and plain.client.meta.endpoint_url == "http://h:1"
    assert plain.client.meta.config.connect_timeout == 15.0


def test_unreachable_stores_are_refused(box: SecretBox, tmp_path: Path) -> None:
    for provider, url in (("SMB", "cifs://srv/share"), ("NFS", "ftp://srv/x")):
        with pytest.raises(StoreAccessError, match="cannot write to"):
            open_store(row(box, provider, url), box, tmp_path)
    with pytest.raises(KeyError):
        open_store(row(box, "S3", "http://h/b", {"endpoint": "h:1"}), box, tmp_path)
