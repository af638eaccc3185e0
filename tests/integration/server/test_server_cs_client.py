"""The real ``cs`` client library against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

from tests.support.server_process import ServerProcess


def _client(server: ServerProcess, key: str, secret: str, **kw: Any) -> CloudStack:
    return CloudStack(endpoint=server.endpoint, key=key, secret=secret, fetch_result=True, timeout=30, **kw)


@pytest.fixture
def cs_admin(server: ServerProcess) -> CloudStack:
    return _client(server, server.keys["apikey"], server.keys["secretkey"])


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_build_a_zone_with_cs(cs_admin: CloudStack) -> None:
    zone = cs_admin.createZone(name=_name("zone"), networktype="Advanced", dns1="8.8.8.8",
                               internaldns1="10.0.0.1", localstorageenabled=True)["zone"]
    pod = cs_admin.createPod(name="pod1", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                             startip="10.1.0.10", endip="10.1.0.100")["pod"]
    cluster = cs_admin.addCluster(clustername="c1", clustertype="CloudManaged", hypervisor="Simulator",
                                  podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pool = cs_admin.createStoragePool(name="primary", url="nfs://10.0.0.5:/export/primary", zoneid=zone["id"],
                                      podid=pod["id"], clusterid=cluster["id"], method="post")["storagepool"]
    assert pool["type"] == "NetworkFilesystem" and pool["ipaddress"] == "10.0.0.5"
    maint = cs_admin.enableStorageMaintenance(id=pool["id"])
    assert maint["storagepool"]["state"] == "Maintenance"
    assert cs_admin.cancelStorageMaintenance(id=pool["id"])["storagepool"]["state"] == "Up"
    store = cs_admin.addImageStore(provider="NFS", url="nfs://10.0.0.6/export/secondary", zoneid=zone["id"],
                                   details=[{"key": "k", "value": "v"}])["imagestore"]
    assert store["providername"] == "NFS"
    s3 = cs_admin.addImageStoreS3(accesskey="AK", secretkey="SK", bucket="templates",
                                  endpoint="127.0.0.1:9000", usehttps=False)["imagestore"]
    assert s3["providername"] == "S3"
    updated = cs_admin.updateZone(id=zone["id"], allocationstate="Enabled")["zone"]
    assert updated["allocationstate"] == "Enabled" and updated["localstorageenabled"] is True
    listed = cs_admin.listClusters(zoneid=zone["id"])
    assert listed["count"] == 1 and listed["cluster"][0]["id"] == cluster["id"]
    assert cs_admin.listHypervisors(zoneid=zone["id"])["hypervisor"] == [{"name": "Simulator"}]
    events = cs_admin.listEvents(type="ZONE.CREATE", keyword=zone["name"])
    assert events["count"] == 1


def test_pagination_with_fetch_list(cs_admin: CloudStack) -> None:
    prefix = _name("pg")
    for i in range(7):
        cs_admin.createZone(name=f"{prefix}-{i}", networktype="Basic", dns1="1.1.1.1",
                internaldns1="10.0.0.1")
    zones = cs_admin.listZones(keyword=prefix, fetch_list=True, pagesize=3)
    assert sorted(z["name"] for z in zones) == [f"{prefix}-{i}" for i in range(7)]
    page3 = cs_admin.listZones(keyword=prefix, page=3, pagesize=3)
    assert page3["count"] == 7 and len(page3["zone"]) == 1
    assert cs_admin.listZones(keyword=prefix, page=4, pagesize=3) == {"count": 7}
    assert cs_admin.listZones(keyword=_name("absent")) == {}


def test_errors_reach_cs_as_exceptions(cs_admin: CloudStack) -> None:
    with pytest.raises(CloudStackApiException) as exc:
        cs_admin.createPod(name="p", zoneid=str(uuid.uuid4()))
    assert exc.value.error["errorcode"] == 431 and exc.value.error["cserrorcode"] == 4350
    with pytest.raises(CloudStackApiException) as exc:
        cs_admin.createZone(name="z", networktype="Basic", dns1="1.1.1.1")
    assert "missing parameter internaldns1" in exc.value.error["errortext"]
    with pytest.raises(CloudStackApiException) as exc:
        cs_admin.listZones(pagesize=1000, page=1)
    assert exc.value.error["errorcode"] == 431


def test_bad_keys_rejected(server: ServerProcess) -> None:
    wrong = _client(server, server.keys["apikey"], "not-the-secret")
    with pytest.raises(CloudStackApiException) as exc:
        wrong.listZones()
    assert exc.value.error["errorcode"] == 401


def test_accounts_users_and_visibility(server: ServerProcess, cs_admin: CloudStack) -> None:
    username = _name("user")
    account = cs_admin.createAccount(username=username, password="pw-123", firstname="U", lastname="S",
                                     email="u@example.org", accounttype=0)["account"]
    keys = cs_admin.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    user = _client(server, keys["apikey"], keys["secretkey"], method="post")
    assert [a["name"] for a in user.listAccounts()["account"]] == [username]
    assert user.getUserKeys(id=account["user"][0]["id"])["userkeys"] == keys
    with pytest.raises(CloudStackApiException) as exc:
        user.createZone(name="nope", networktype="Basic", dns1="1.1.1.1", internaldns1="1.1.1.1")
    assert exc.value.error["errorcode"] == 401
    with pytest.raises(CloudStackApiException):
        user.listHosts()
    assert user.listOsTypes(keyword="Ubuntu")["count"] >= 3
    assert cs_admin.disableUser(id=account["user"][0]["id"])["user"]["state"] == "disabled"
    with pytest.raises(CloudStackApiException):
        user.listZones()
    cs_admin.enableUser(id=account["user"][0]["id"])
    assert "count" in user.listOsTypes()
    cs_admin.deleteAccount(id=account["id"])
    assert cs_admin.listAccounts(name=username, listall=True) == {}


def test_session_login_like_cloudmonkey(server: ServerProcess) -> None:
    password = (server.data_dir / "admin-password").read_text().strip()
    with httpx.Client() as http:
        login = http.post(server.endpoint, data={"command": "login", "username": "admin",
                "password": password,
                                                 "domain": "/", "response": "json"})
        assert login.status_code == 200
        key = login.json()["loginresponse"]["sessionkey"]
        apis = http.get(server.endpoint, params={"command": "listApis", "response": "json",
                "sessionkey": key})
        assert apis.status_code == 200
        names = {a["name"]: a["isasync"] for a in apis.json()["listapisresponse"]["api"]}
        assert names["prepareHostForMaintenance"] is True and names["listZones"] is False
        http.get(server.endpoint, params={"command": "logout", "response": "json", "sessionkey": key})
        http.cookies.set("sessionkey", key)
        again = http.get(server.endpoint, params={"command": "listZones", "response": "json",
                "sessionkey": key})
        assert again.status_code == 401


def test_xml_default_over_the_wire(server: ServerProcess, cs_admin: CloudStack) -> None:
    resp = httpx.get(server.endpoint, params={"command": "listZones"})
    assert resp.status_code == 401 and resp.text.startswith("<?xml")
