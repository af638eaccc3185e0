"""Templates and ISOs through the API: downloads from a loopback HTTP server with real qemu-img
images, the safety checks, uploads, copy between zones, delete, filters, and S3 stores on moto."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvcloud.server.app import create_app
from hvcloud.server.config import ServerConfig
from hvcloud.server.state import ServerState
from hvcloud.storage import qemu_img
from tests.support.image_server import ImageServer, serve_images
from tests.support.server_api import Caller, keys_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.skipif(not qemu_img.available(), reason="qemu-img is not installed")
MAX_BYTES = 4 * 1024 * 1024


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    root.mkdir()
    qemu_img.create(str(root / "good.qcow2"), "qcow2", 16 * 1024 * 1024)
    qemu_img.create(str(root / "child.qcow2"), "qcow2", backing=str(root / "good.qcow2"), backing_fmt="qcow2")
    qemu_img.create(str(root / "data-file.qcow2"), "qcow2", 1024 * 1024,
                    options=[f"data_file={root / 'data.raw'}"])
    (root / "disk.raw").write_bytes(b"\x00" * 512 + b"raw data" * 1000)
    qemu_img.create(str(root / "disk.vhd"), "vhd", 8 * 1024 * 1024)
    iso = bytearray(0x9000)
    iso[0x8001:0x8006] = b"CD001"
    (root / "boot.iso").write_bytes(bytes(iso))
    (root / "big.raw").write_bytes(b"\x01" * (MAX_BYTES + 1))
    return root


@pytest.fixture
def web(images: Path) -> Iterator[ImageServer]:
    with serve_images(images) as server:
        yield server


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    st = ServerState.open(ServerConfig.build(tmp_path / "data", download_allow_loopback=True,
                                             template_max_bytes=MAX_BYTES, job_poll_seconds=0.05))
    yield st
    st.close()


def zone_with_store(admin: Caller, store_dir: Path, name: str = "z1") -> str:
    zone = admin.ok("createZone", name=name, networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    store_dir.mkdir(parents=True, exist_ok=True)
    admin.ok("addImageStore", provider="NFS", url=f"file://{store_dir}", zoneid=zone["zone"]["id"])
    return str(zone["zone"]["id"])


def register(admin: Caller, url: str, zoneid: str, fmt: str = "QCOW2", **extra: Any) -> dict[str, Any]:
    body = admin.ok("registerTemplate", name="t", displaytext="t", format=fmt, hypervisor="KVM", url=url,
                    zoneid=zoneid, **extra)
    assert body["count"] == 1 and body["template"][0]["isready"] is False
    return dict(body["template"][0])


def register_and_wait(admin: Caller, url: str, zoneid: str, fmt: str = "QCOW2",
                      **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    template = register(admin, url, zoneid, fmt, **extra)
    return template, admin.wait(template["jobid"])


def test_register_download_and_list(admin: Caller, web: ImageServer, images: Path, tmp_path: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    md5 = hashlib.md5((images / "good.qcow2").read_bytes()).hexdigest()
    template, job = register_and_wait(admin, web.url("redirect-same/good.qcow2"), zoneid, checksum=md5)
    assert job["jobstatus"] == 1 and job["jobinstancetype"] == "Template", job
    ready = job["jobresult"]["template"]
    assert ready["isready"] is True and ready["status"] == "Download Complete"
    assert ready["size"] == 16 * 1024 * 1024 and ready["format"] == "QCOW2"
    stored = tmp_path / "store" / "template" / "tmpl" / ready["accountid"] / template["id"] / f"{template['id']}.qcow2"
    assert stored.read_bytes() == (images / "good.qcow2").read_bytes()
    listed = admin.ok("listTemplates", templatefilter="self")
    assert listed["count"] == 1 and listed["template"][0]["isready"] is True
    assert "jobid" not in listed["template"][0]
    assert admin.ok("listTemplates", templatefilter="featured") == {}
    assert admin.ok("listTemplates", templatefilter="executable")["count"] == 1
    assert admin.ok("listTemplates", templatefilter="self", isready=False) == {}
    status, body = admin.call("listTemplates", templatefilter="mine")
    assert status == 431 and "Invalid filter" in body["errortext"]


def test_sha256_checksum_and_mismatch(admin: Caller, web: ImageServer, images: Path, tmp_path: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    digest = hashlib.sha256((images / "disk.raw").read_bytes()).hexdigest()
    _t, ok = register_and_wait(admin, web.url("disk.raw"), zoneid, "RAW", checksum="{SHA-256}" + digest)
    assert ok["jobstatus"] == 1
    bad, failed = register_and_wait(admin, web.url("disk.raw"), zoneid, "RAW", checksum="0" * 32)
    assert failed["jobstatus"] == 2 and failed["jobresultcode"] == 530
    assert "checksum mismatch" in failed["jobresult"]["errortext"]
    row = admin.ok("listTemplates", templatefilter="self", id=bad["id"])["template"][0]
    assert row["isready"] is False and "checksum mismatch" in row["status"]
    for checksum in ("{SHA-256}abc", "{CRC32}00000000", "not-hex"):
        status, body = admin.call("registerTemplate", name="x", format="RAW", hypervisor="KVM",
                                  url=web.url("disk.raw"), zoneid=zoneid, checksum=checksum)
        assert status == 431 and "checksum" in body["errortext"]


@pytest.mark.parametrize(("path", "fmt", "fragment"), [
    ("child.qcow2", "QCOW2", "backing file"),
    ("data-file.qcow2", "QCOW2", "external data file"),
    ("good.qcow2", "RAW", "format mismatch"),
    ("disk.raw", "QCOW2", "format mismatch"),
    ("disk.vhd", "VHDX", "format mismatch"),
    ("big.raw", "RAW", "size limit"),
    ("chunked/big.raw", "RAW", "size limit"),
    ("redirect-other/good.qcow2", "QCOW2", "another host"),
    ("missing.qcow2", "QCOW2", "HTTP 404"),
])
def test_unsafe_images_and_urls_are_refused(admin: Caller, web: ImageServer, tmp_path: Path, path: str, fmt: str,
                                            fragment: str) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    _t, job = register_and_wait(admin, web.url(path), zoneid, fmt)
    assert job["jobstatus"] == 2 and fragment in job["jobresult"]["errortext"], job
    assert not list((tmp_path / "store").rglob("*.qcow2")) and not list((tmp_path / "store").rglob("*.raw"))
    assert not list((tmp_path / "data" / "staging").iterdir())


def test_bad_urls_are_refused_before_any_job(admin: Caller, tmp_path: Path, images: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    for url, fragment in ((f"file://{images}/good.qcow2", "only http and https"),
                          ("ftp://example.com/x.qcow2", "only http and https"),
                          ("http://user:pw@example.com/x", "credentials"),
                          ("http://10.0.0.5/x.qcow2", "private"),
                          ("http://169.254.169.254/latest", "link-local"),
                          ("http://[::1]:1/x", None),
                          ("http://exa mple.com/x", "spaces")):
        status, body = admin.call("registerTemplate", name="x", format="QCOW2", hypervisor="KVM", url=url,
                                  zoneid=zoneid)
        if fragment is None:
            assert status == 200
            continue
        assert status == 431 and fragment in body["errortext"], (url, body)
    assert admin.call("registerTemplate", name="x", format="VMDK", hypervisor="KVM",
                      url="http://127.0.0.1/x", zoneid=zoneid)[0] == 431


def test_private_and_loopback_need_the_setting(tmp_path: Path) -> None:
    st = ServerState.open(ServerConfig.build(tmp_path / "strict"))
    try:
        with TestClient(create_app(st)) as client:
            admin = Caller(client, *keys_of(st, "admin"))
            zoneid = zone_with_store(admin, tmp_path / "store")
            status, body = admin.call("registerTemplate", name="x", format="QCOW2", hypervisor="KVM",
                                      url="http://127.0.0.1:9/x.qcow2", zoneid=zoneid)
            assert status == 431 and "loopback" in body["errortext"]
            _t, job = register_and_wait(admin, "http://localhost:9/x.qcow2", zoneid)
            assert job["jobstatus"] == 2 and "loopback" in job["jobresult"]["errortext"]
    finally:
        st.close()


def test_iso_register_update_copy_delete(admin: Caller, web: ImageServer, tmp_path: Path) -> None:
    z1 = zone_with_store(admin, tmp_path / "s1", "z1")
    z2 = zone_with_store(admin, tmp_path / "s2", "z2")
    iso = admin.ok("registerIso", name="boot", displaytext="Boot ISO", url=web.url("boot.iso"), zoneid=z1,
                   ispublic=True)["iso"][0]
    assert admin.wait(iso["jobid"])["jobresult"]["iso"]["isready"] is True
    not_iso = admin.ok("registerIso", name="fake", url=web.url("disk.raw"), zoneid=z1)["iso"][0]
    assert "not an ISO" in admin.wait(not_iso["jobid"])["jobresult"]["errortext"]
    updated = admin.ok("updateIso", id=iso["id"], displaytext="renamed", bootable=False)["iso"]
    assert updated["displaytext"] == "renamed" and updated["bootable"] is False
    copied = admin.job("copyIso", id=iso["id"], sourcezoneid=z1, destzoneid=z2)
    assert copied["jobstatus"] == 1 and copied["jobresult"]["iso"]["zoneid"] == z2
    assert admin.ok("listIsos", isofilter="self", id=iso["id"])["count"] == 2
    assert len(list((tmp_path / "s2").rglob("*.iso"))) == 1
    status, body = admin.call("copyIso", id=iso["id"], sourcezoneid=z1, destzoneid=z2)
    assert status == 431 and "already" in body["errortext"]
    assert admin.job("deleteIso", id=iso["id"], zoneid=z1)["jobresult"] == {"success": True}
    assert not list((tmp_path / "s1").rglob("*.iso")) and len(list((tmp_path / "s2").rglob("*.iso"))) == 1
    assert admin.job("deleteIso", id=iso["id"])["jobstatus"] == 1
    assert not list((tmp_path / "s2").rglob("*.iso"))
    assert admin.ok("listIsos", isofilter="all", id=iso["id"]) == {}
    assert admin.call("updateIso", id=iso["id"], name="x")[0] == 431


def test_user_visibility_and_permissions(admin: Caller, web: ImageServer, tmp_path: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    public, _ = register_and_wait(admin, web.url("good.qcow2"), zoneid, ispublic=True, isfeatured=True)
    private, _ = register_and_wait(admin, web.url("good.qcow2"), zoneid)
    account = admin.ok("createAccount", username="bob", password="pw-123456", firstname="B", lastname="B",
                       accounttype=0)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    user = Caller(admin.http, keys["apikey"], keys["secretkey"])
    assert [t["id"] for t in user.ok("listTemplates", templatefilter="featured")["template"]] == [public["id"]]
    assert [t["id"] for t in user.ok("listTemplates", templatefilter="executable")["template"]] == [public["id"]]
    assert user.ok("listTemplates", templatefilter="self") == {}
    assert user.ok("listTemplates", templatefilter="all")["count"] == 1
    assert admin.ok("listTemplates", templatefilter="all")["count"] == 2
    # another account's template answers like one that does not exist (431), public or not
    assert user.call("deleteTemplate", id=private["id"])[0] == 431
    assert user.call("updateTemplate", id=public["id"], name="mine")[0] == 431
    assert admin.ok("updateTemplatePermissions", id=private["id"], ispublic=True)["success"] == "true"
    assert user.ok("listTemplates", templatefilter="community")["template"][0]["id"] == private["id"]


def test_upload_through_signed_post(admin: Caller, images: Path, tmp_path: Path) -> None:
    zoneid = zone_with_store(admin, tmp_path / "store")
    data = (images / "good.qcow2").read_bytes()
    params = admin.ok("getUploadParamsForTemplate", name="up", displaytext="up", format="QCOW2",
                      hypervisor="KVM", zoneid=zoneid,
                      checksum="{SHA-256}" + hashlib.sha256(data).hexdigest())["getuploadparams"]
    path = "/" + params["postURL"].split("/", 3)[3]
    headers = {"X-signature": params["signature"], "X-metadata": params["metadata"],
               "X-expires": params["expires"]}
    row = admin.ok("listTemplates", templatefilter="self", id=params["id"])["template"][0]
    assert row["status"] == "Not Uploaded" and row["isready"] is False
    forged = {**headers, "X-signature": "AAAA" + headers["X-signature"][4:]}
    assert admin.http.post(path, content=data, headers=forged).status_code == 401
    late = {**headers, "X-expires": "2001-01-01T00:00:00+0000"}
    assert admin.http.post(path, content=data, headers=late).status_code == 401
    too_big = admin.http.post(path, content=b"\0" * (MAX_BYTES + 1), headers=headers)
    assert too_big.status_code == 413
    resp = admin.http.post(path, content=data, headers=headers)
    assert resp.status_code == 200, resp.text
    job = admin.wait(resp.json()["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"]["template"]["isready"] is True
    assert admin.http.post(path, content=data, headers=headers).status_code == 409
    assert len(list((tmp_path / "store").rglob("*.qcow2"))) == 1


def test_s3_image_store(admin: Caller, web: ImageServer, images: Path, s3_endpoint: str) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://{s3_endpoint}", aws_access_key_id="AK",
                      aws_secret_access_key="SK", region_name="us-east-1")
    s3.create_bucket(Bucket="templates")
    zone = admin.ok("createZone", name="zs3", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    zoneid = zone["zone"]["id"]
    admin.ok("addImageStoreS3", accesskey="AK", secretkey="SK", bucket="templates", endpoint=s3_endpoint)
    template, job = register_and_wait(admin, web.url("good.qcow2"), zoneid)
    assert job["jobstatus"] == 1, job
    key = f"template/tmpl/{template['accountid']}/{template['id']}/{template['id']}.qcow2"
    assert s3.get_object(Bucket="templates", Key=key)["Body"].read() == (images / "good.qcow2").read_bytes()
    assert admin.job("deleteTemplate", id=template["id"])["jobstatus"] == 1
    assert s3.list_objects_v2(Bucket="templates").get("KeyCount") == 0


def test_s3_store_failure_is_reported(admin: Caller, web: ImageServer, s3_endpoint: str) -> None:
    zone = admin.ok("createZone", name="zs3b", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    admin.ok("addImageStoreS3", accesskey="AK", secretkey="SK", bucket="no-such-bucket", endpoint=s3_endpoint)
    template, job = register_and_wait(admin, web.url("good.qcow2"), zone["zone"]["id"])
    assert job["jobstatus"] == 2 and "cannot write to image store" in job["jobresult"]["errortext"]
    row = admin.ok("listTemplates", templatefilter="self", id=template["id"])["template"][0]
    assert row["isready"] is False and "cannot write" in row["status"]


def test_register_needs_an_image_store(admin: Caller) -> None:
    zone = admin.ok("createZone", name="bare", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")
    status, body = admin.call("registerTemplate", name="x", format="QCOW2", hypervisor="KVM",
                              url="http://127.0.0.1/x.qcow2", zoneid=zone["zone"]["id"])
    assert status == 431 and "no image store" in body["errortext"]
