"""Offerings through the API; checksum and URL rules on hostile input."""

from __future__ import annotations

import ipaddress

import pytest

from hvcloud.storage.errors import StoreError, UnsafeUrl
from hvcloud.storage.transfer import parse_checksum
from hvcloud.storage.url_rules import UrlPolicy, check_address, parse_url
from tests.support.server_api import Caller


def test_offerings_lifecycle(admin: Caller, user_caller: Caller) -> None:
    seeded = admin.ok("listServiceOfferings")
    assert {o["name"] for o in seeded["serviceoffering"]} == {"Small Instance", "Medium Instance"}
    so = admin.ok("createServiceOffering", name="big", displaytext="Big", cpunumber=4, cpuspeed=2000,
                  memory=8192, hosttags="ssd,fast")["serviceoffering"]
    assert (so["cpunumber"], so["memory"], so["iscustomized"], so["hosttags"]) == (4, 8192, False, "ssd,fast")
    custom = admin.ok("createServiceOffering", name="custom", displaytext="c", customized=True)["serviceoffering"]
    assert custom["iscustomized"] is True and "cpunumber" not in custom
    for bad in ({"cpunumber": 0, "memory": 512}, {"cpunumber": 2}, {"cpunumber": 1, "memory": 1, },
                {"cpunumber": 1, "memory": 512, "storagetype": "tape"}):
        assert admin.call("createServiceOffering", name="x", **bad)[0] == 431
    assert admin.ok("updateServiceOffering", id=so["id"], name="bigger")["serviceoffering"]["name"] == "bigger"
    assert user_caller.ok("listServiceOfferings", name="bigger")["count"] == 1
    assert user_caller.call("createServiceOffering", name="x", cpunumber=1, memory=512)[0] == 401
    assert admin.ok("deleteServiceOffering", id=so["id"])["success"] == "true"
    assert admin.ok("listServiceOfferings", id=so["id"]) == {}
    assert admin.call("updateServiceOffering", id=so["id"], name="again")[0] == 431
    disk = admin.ok("createDiskOffering", name="d10", displaytext="10 GB", disksize=10, tags="ssd")["diskoffering"]
    assert (disk["disksize"], disk["iscustomized"], disk["tags"]) == (10, False, "ssd")
    assert admin.call("createDiskOffering", name="nosize", displaytext="x")[0] == 431
    hidden = admin.ok("createDiskOffering", name="hidden", disksize=1, displayoffering=False)["diskoffering"]
    assert user_caller.ok("listDiskOfferings", id=hidden["id"]) == {}
    assert admin.ok("listDiskOfferings", id=hidden["id"])["count"] == 1
    assert admin.ok("deleteDiskOffering", id=disk["id"])["success"] == "true"


@pytest.mark.parametrize("text", ["{SHA-256}", "{SHA-256}" + "g" * 64, "{MD5}" + "0" * 31, "0" * 33,
                                  "{SHA-999}" + "0" * 64, "{" * 300, "0" * 10_000, "{SHA-256}" + "0" * 64 + "\n0"])
def test_malformed_checksums(text: str) -> None:
    with pytest.raises(StoreError):
        parse_checksum(text)


def test_checksum_forms() -> None:
    md5 = parse_checksum("D41D8CD98F00B204E9800998ECF8427E")
    sha256 = parse_checksum("{sha-256}" + "A" * 64)
    sha512 = parse_checksum("{SHA-512}" + "0" * 128)
    assert md5 is not None and md5.algorithm == "md5"
    assert sha256 is not None and sha256.hexdigest == "a" * 64
    assert sha512 is not None and sha512.algorithm == "sha512"
    assert parse_checksum("") is None and parse_checksum("  ") is None


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://x/", "http://", "http://a b/", "http://x:99999/",
                                 "http://u:p@host/", "//host/x", "http://host/\x00", "h" * 3000, "javascript:x"])
def test_hostile_urls(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        parse_url(url)


@pytest.mark.parametrize(("addr", "ok_strict", "ok_loopback", "ok_private"), [
    ("8.8.8.8", True, True, True), ("127.0.0.1", False, True, False), ("::1", False, True, False),
    ("10.1.2.3", False, False, True), ("192.168.0.1", False, False, True), ("fd00::1", False, False, True),
    ("169.254.169.254", False, False, False), ("0.0.0.0", False, False, False), ("224.0.0.1", False, False, False),
    ("::ffff:127.0.0.1", False, True, False), ("100.64.0.1", False, False, True),
])
def test_address_policy(addr: str, ok_strict: bool, ok_loopback: bool, ok_private: bool) -> None:
    ip = ipaddress.ip_address(addr)
    for policy, expected in ((UrlPolicy(), ok_strict), (UrlPolicy(allow_loopback=True), ok_loopback),
                             (UrlPolicy(allow_private=True), ok_private)):
        if expected:
            check_address(ip, policy)
        else:
            with pytest.raises(UnsafeUrl):
                check_address(ip, policy)
