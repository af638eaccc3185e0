"""The /client/api endpoint in-process: envelopes, errors, auth, sessions, roles, paging."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from hvcloud.server.api.signature import compute_signature
from hvcloud.server.db import migrate
from hvcloud.server.db.models import Host, User
from hvcloud.server.orchestration.alerts import ALERT_TYPE_HOST, raise_alert
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone

DATE_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$"


def test_migrations_at_head_and_secrets_encrypted(state: ServerState) -> None:
    assert migrate.current_revision(state.engine) == migrate.head_revision()
    with state.sessions() as db:
        admin = db.scalar(select(User).where(User.username == "admin"))
        assert admin is not None and admin.secret_key_enc is not None
        secret = state.box.decrypt(admin.secret_key_enc)
        assert secret not in admin.secret_key_enc
        assert admin.password_hash.startswith("scrypt$")
        raw = db.execute(text("select secret_key_enc from user")).scalars().all()
        assert secret not in "".join(raw)
    password = (state.config.data_dir / "admin-password").read_text().strip()
    assert password not in admin.password_hash
    assert (state.config.data_dir / "secret.key").stat().st_mode & 0o077 == 0


def test_list_envelopes_empty_page_and_dates(admin: Caller) -> None:
    assert admin.ok("listZones") == {}
    for i in range(3):
        admin.ok("createZone", name=f"z{i}", networktype="Basic", dns1="1.1.1.1", internaldns1="10.0.0.1")
    body = admin.ok("listZones")
    assert body["count"] == 3 and len(body["zone"]) == 3
    import re
    assert re.match(DATE_RE, body["zone"][0]["created"])
    assert admin.ok("listZones", page=2, pagesize=2) == {"count": 3, "zone": [body["zone"][2]]}
    assert admin.ok("listZones", page=5, pagesize=2) == {"count": 3}
    assert admin.ok("listZones", pagesize=-1)["count"] == 3
    assert [z["name"] for z in admin.ok("listZones", keyword="1")["zone"]] == ["z1"]
    assert admin.ok("listZones", name="z2")["zone"][0]["name"] == "z2"
    assert all(v is not None for v in body["zone"][0].values())


def test_paging_rules(admin: Caller) -> None:
    for params, fragment in (({"pagesize": 501, "page": 1}, "can't exceed"), ({"pagesize": 10}, '"page"'),
                             ({"page": 1}, '"pagesize"'), ({"pagesize": -1, "page": 1}, "pagesize is -1"),
                             ({"pagesize": 0, "page": 1}, "positive"), ({"page": "x", "pagesize": 1},
                                     "page")):
        status, body = admin.call("listZones", **params)
        assert status == 431 and body["errorcode"] == 431 and body["cserrorcode"] == 4350
        assert fragment in body["errortext"]


def test_object_success_and_list_create_shapes(admin: Caller) -> None:
    ids = build_zone(admin)
    status, body = admin.call("addCluster", clustername="cl2", clustertype="CloudManaged", hypervisor="KVM",
                              podid=ids["podid"], zoneid=ids["zoneid"])
    assert status == 200 and body["count"] == 1 and body["cluster"][0]["hypervisortype"] == "KVM"
    assert admin.ok("deleteCluster", id=body["cluster"][0]["id"]) == {"success": "true"}
    pod = admin.ok("listPods", id=ids["podid"])["pod"][0]
    assert pod["startip"] == ["10.1.0.10"] and pod["endip"] == ["10.1.0.50"]


def test_async_job_shapes(admin: Caller) -> None:
    ids = build_zone(admin)
    pool = admin.ok("createStoragePool", name="p", url="nfs://10.0.0.5/export/p", **ids)["storagepool"]
    job = admin.ok("enableStorageMaintenance", id=pool["id"])
    assert list(job) == ["jobid"]
    result = admin.wait(job["jobid"])
    assert result["jobstatus"] == 1 and result["jobresultcode"] == 0 and result["jobresulttype"] == "object"
    assert result["jobresult"]["storagepool"]["state"] == "Maintenance"
    failed = admin.job("enableStorageMaintenance", id=pool["id"])
    assert failed["jobstatus"] == 2 and failed["jobresult"]["errorcode"] == 431
    assert "errortext" in failed["jobresult"]
    status, _body = admin.call("queryAsyncJobResult", jobid="00000000-0000-4000-8000-000000000000")
    assert status == 431


def test_xml_is_the_default_response(admin: Caller) -> None:
    admin.ok("createZone", name="x<&>", networktype="Basic", dns1="1.1.1.1", internaldns1="10.0.0.1")
    resp = admin.raw({"command": "listZones"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(resp.content)
    assert root.tag == "listzonesresponse" and root.findtext("count") == "1"
    assert root.find("zone/name").text == "x<&>"  # type: ignore[union-attr]
    assert root.findtext("zone/localstorageenabled") == "false"
    err = admin.raw({"command": "listZones", "id": "nope"}, sign=True)
    assert err.status_code == 431 and ET.fromstring(err.content).findtext("errorcode") == "431"


def test_signature_failures_give_401(admin: Caller) -> None:
    bad = admin.raw({"command": "listZones", "response": "json", "signature": "AAAA"}, sign=False)
    assert bad.status_code == 401
    text = "unable to verify user credentials and/or request signature"
    assert bad.json() == {"listzonesresponse": {"uuidList": [], "errorcode": 401, "errortext": text}}
    assert bad.headers["x-description"].startswith("unable to verify")
    unknown_key = Caller(admin.http, "nobody", admin.secretkey)
    assert unknown_key.call("listZones")[0] == 401
    no_auth = admin.http.get("/client/api", params={"command": "listZones", "response": "json"})
    assert no_auth.status_code == 401


def test_signature_version_3_expiry(admin: Caller) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S%z")
    past = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {"command": "listZones", "response": "json", "signatureVersion": "3"}
    assert admin.raw({**base, "expires": future}).status_code == 200
    assert admin.raw({**base, "signatureversion": "3", "expires": future}).status_code == 200
    assert admin.raw({**base, "expires": past}).status_code == 401
    assert admin.raw(base).status_code == 401
    assert admin.raw({**base, "expires": "garbage"}).status_code == 401


def test_post_form_and_case_insensitive_names(admin: Caller) -> None:
    resp = admin.raw({"command": "createZone", "response": "json", "NAME": "pz", "networkType": "Advanced",
                      "Dns1": "8.8.4.4", "internalDns1": "10.0.0.1", "unknownparam": "ignored"},
                     method="POST")
    assert resp.status_code == 200 and resp.json()["createzoneresponse"]["zone"]["name"] == "pz"


def test_bad_input_errors(admin: Caller) -> None:
    status, body = admin.call("createZone", name="z", networktype="Basic", dns1="1.1.1.1")
    assert status == 431 and body["errortext"].endswith("missing parameter internaldns1")
    status, body = admin.call("createZone", name="", networktype="Basic", dns1="1.1.1.1",
            internaldns1="1.1.1.1")
    assert status == 431 and "missing parameter name" in body["errortext"]
    status, body = admin.call("createZone", name="z", networktype="Basic", dns1="not-an-ip",
            internaldns1="1.1.1.1")
    assert status == 431
    status, body = admin.call("createZone", name="z\x01", networktype="Basic", dns1="1.1.1.1",
            internaldns1="1.1.1.1")
    assert status == 431 and "control characters" in body["errortext"]
    status, body = admin.call("createZone", name="z" * 256, networktype="Basic", dns1="1.1.1.1",
                              internaldns1="1.1.1.1")
    assert status == 431 and "max allowed length" in body["errortext"]
    status, body = admin.call("createPod", name="p", zoneid="2b2b2b2b-0000-4000-8000-000000000000")
    assert status == 431 and "entity does not exist" in body["errortext"]
    status, body = admin.call("updateZone", id="not-a-uuid")
    assert status == 431
    status, body = admin.call("createStoragePool", name="p", url="nfs://x/y", zoneid="zz",
            capacitybytes="lots")
    assert status == 431
    status, body = admin.call("listHosts", page="1; drop table host", pagesize=1)
    assert status == 431
    status, body = admin.call("noSuchCommand")
    assert status == 401 and body["errorcode"] == 401
    assert "errorresponse" in admin.raw({"command": "noSuchCommand", "response": "json"}).json()
    resp = admin.http.get("/client/api", params={"response": "json"})
    assert resp.status_code == 432 and "errorresponse" in resp.json()
    resp = admin.raw({"command": "listZones", "response": "json", "x[0]y": "1"})
    assert resp.status_code == 430
    resp = admin.http.post("/client/api?response=json", content=b"command=listZones&name=%ff%fe",
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 431
    resp = admin.http.post("/client/api?response=json", content=b"a=" + b"x" * (1024 * 1024 + 10),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 431


def test_delete_checks_dependents(admin: Caller) -> None:
    ids = build_zone(admin)
    status, body = admin.call("deleteZone", id=ids["zoneid"])
    assert status == 536 and body["cserrorcode"] == 4375
    status, _ = admin.call("deletePod", id=ids["podid"])
    assert status == 536
    admin.ok("deleteCluster", id=ids["clusterid"])
    admin.ok("deletePod", id=ids["podid"])
    admin.ok("deleteZone", id=ids["zoneid"])
    assert admin.ok("listZones") == {}


def test_storage_pools_and_image_stores(admin: Caller) -> None:
    ids = build_zone(admin)
    zone_pool = admin.ok("createStoragePool", name="zp", url="file:///srv/pool", zoneid=ids["zoneid"],
            scope="zone",
                         hypervisor="simulator", capacitybytes=1 << 40, tags="fast")["storagepool"]
    assert zone_pool["scope"] == "ZONE" and zone_pool["type"] == "Filesystem"
    assert zone_pool["disksizetotal"] == 1 << 40 and zone_pool["hypervisor"] == "Simulator"
    status, body = admin.call("createStoragePool", name="p", url="nfs://h/x", zoneid=ids["zoneid"])
    assert status == 431 and "required" in body["errortext"]
    status, _ = admin.call("createStoragePool", name="p", url="ftp://h/x", **ids)
    assert status == 431
    upd = admin.ok("updateStoragePool", id=zone_pool["id"], enabled=False, tags="a,b")["storagepool"]
    assert upd["state"] == "Disabled" and upd["tags"] == "a,b"
    assert admin.ok("listStoragePools", scope="zone")["count"] == 1
    nfs = admin.ok("addImageStore", provider="NFS", url="nfs://10.0.0.9/export/secondary",
            zoneid=ids["zoneid"])
    assert nfs["imagestore"]["name"] == "nfs://10.0.0.9/export/secondary"
    assert nfs["imagestore"]["protocol"] == "nfs" and nfs["imagestore"]["scope"] == "ZONE"
    local = admin.ok("addImageStore", provider="nfs", name="local", url="file:///srv/images",
            zoneid=ids["zoneid"])
    assert local["imagestore"]["protocol"] == "file"
    s3 = admin.ok("addImageStore", provider="S3", name="s3", **{
        "details[0].key": "accesskey", "details[0].value": "AK", "details[1].key": "secretkey",
        "details[1].value": "SK-secret", "details[2].key": "bucket", "details[2].value": "templates",
        "details[3].key": "endpoint", "details[3].value": "http://127.0.0.1:9000"})["imagestore"]
    assert s3["providername"] == "S3" and s3["url"] == "http://127.0.0.1:9000/templates"
    assert "SK-secret" not in str(s3)
    status, body = admin.call("addImageStoreS3", accesskey="a", secretkey="b", bucket="x", endpoint="e")
    assert status == 431 and "bucket" in body["errortext"]
    status, _ = admin.call("addImageStore", provider="Swift", url="http://x/y")
    assert status == 431
    assert admin.ok("listImageStores", zoneid=ids["zoneid"])["count"] == 3
    assert admin.ok("listStorageProviders", type="image")["dataStoreProvider"][0] == {"name": "NFS",
            "type": "IMAGE"}
    assert admin.call("listStorageProviders", type="other")[0] == 431


def test_session_login_logout(admin: Caller, state: ServerState) -> None:
    http = admin.http
    password = (state.config.data_dir / "admin-password").read_text().strip()
    form = {"command": "login", "username": "admin", "password": password, "domain": "/", "response": "json"}
    assert http.get("/client/api", params=form).status_code == 405
    assert http.post("/client/api", data={**form, "password": "wrong"}).status_code == 531
    resp = http.post("/client/api", data=form)
    assert resp.status_code == 200
    login = resp.json()["loginresponse"]
    assert login["timeout"] == 1800 and login["type"] == "1" and login["registered"] == "false"
    key = login["sessionkey"]
    assert http.cookies.get("sessionkey") == key
    ok = http.get("/client/api", params={"command": "listZones", "response": "json", "sessionkey": key})
    assert ok.status_code == 200
    assert http.get("/client/api", params={"command": "listZones", "response": "json",
                                           "sessionkey": "forged"}).status_code == 401
    http.get("/client/api", params={"command": "logout", "response": "json", "sessionkey": key})
    http.cookies.set("sessionkey", key)
    assert http.get("/client/api", params={"command": "listZones", "response": "json",
                                           "sessionkey": key}).status_code == 401


def test_user_role_and_visibility(admin: Caller, user_caller: Caller) -> None:
    build_zone(admin)
    status, body = user_caller.call("createZone", name="u", networktype="Basic", dns1="1.1.1.1",
                                    internaldns1="1.1.1.1")
    assert status == 401 and "not available" in body["errortext"]
    assert user_caller.call("listHosts")[0] == 401
    assert user_caller.ok("listZones") == {}
    accounts = user_caller.ok("listAccounts")
    assert [a["name"] for a in accounts["account"]] == ["alice"]
    admin_user = admin.ok("listUsers", username="admin")["user"][0]
    assert user_caller.call("getUserKeys", id=admin_user["id"])[0] == 431
    assert user_caller.call("registerUserKeys", id=admin_user["id"])[0] == 431
    names = {a["name"] for a in user_caller.ok("listApis")["api"]}
    assert "listZones" in names and "createZone" not in names
    assert user_caller.ok("listEvents") == {}
    assert admin.ok("listEvents")["count"] >= 3
    assert admin.ok("listEvents", listall=True, type="ACCOUNT.CREATE")["count"] == 1
    assert admin.ok("listAccounts", listall=True)["count"] == 2


def test_disabled_user_and_rotated_keys_lose_access(admin: Caller, user_caller: Caller) -> None:
    me = user_caller.ok("listUsers")["user"][0]
    fresh = user_caller.ok("registerUserKeys", id=me["id"])["userkeys"]
    assert user_caller.call("listZones")[0] == 401
    rotated = Caller(admin.http, fresh["apikey"], fresh["secretkey"])
    assert rotated.ok("getUserKeys", id=me["id"])["userkeys"] == fresh
    assert admin.job("disableUser", id=me["id"])["jobresult"]["user"]["state"] == "disabled"
    assert rotated.call("listZones")[0] == 401
    admin.ok("enableUser", id=me["id"])
    assert rotated.call("listZones")[0] == 200


def test_accounts_users_bad_input(admin: Caller) -> None:
    base = {"username": "bob", "password": "pw", "firstname": "B", "lastname": "B"}
    admin.ok("createAccount", **base)
    assert admin.call("createAccount", **base)[0] == 431
    assert admin.call("createAccount", **{**base, "username": "bob2", "accounttype": 7})[0] == 431
    assert admin.call("createUser", **{**base, "username": "carol", "account": "nope"})[0] == 431
    user = admin.ok("createUser", **{**base, "username": "carol", "account": "bob"})["user"]
    assert user["account"] == "bob" and "secretkey" not in user
    assert admin.ok("getUser", userapikey="unknown") == {}


def test_list_apis_shape_for_cloudmonkey(admin: Caller) -> None:
    apis = admin.ok("listApis")["api"]
    by_name = {a["name"]: a for a in apis}
    assert by_name["prepareHostForMaintenance"]["isasync"] is True
    assert by_name["createZone"]["isasync"] is False
    for api in apis:
        assert isinstance(api["description"], str) and isinstance(api["params"], list)
        for p in api["params"]:
            assert isinstance(p["required"], bool) and p["type"] in {
                "string", "boolean", "integer", "long", "short", "uuid", "list", "map", "date"}
    assert {p["name"] for p in by_name["listZones"]["params"]} >= {"page", "pagesize", "keyword", "id"}
    assert admin.call("listApis", name="nope")[0] == 431
    caps = admin.ok("listCapabilities")["capability"]
    assert caps["supportELB"] == "false" and caps["cloudstackversion"]


def test_hosts_listing_update_maintenance_delete(admin: Caller, state: ServerState) -> None:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        host = Host(name="h1", zone_id=ids["zoneid"], pod_id=ids["podid"], cluster_id=ids["clusterid"],
                    hypervisor="Simulator", url="https://10.0.0.7:8250", status="Up", cpu_number=4,
                    cpu_speed=2000, memory_total=8 << 30, cpu_allocated=2000, memory_allocated=2 << 30)
        db.add(host)
        db.flush()
        host_id = host.id
        raise_alert(db, ALERT_TYPE_HOST, "Host h1 is down", zone_id=ids["zoneid"])
    listed = admin.ok("listHosts", zoneid=ids["zoneid"])["host"][0]
    assert listed["state"] == "Up" and listed["memorytotal"] == 8 << 30 and listed["cpuallocated"] == "25.00%"
    assert listed["memoryallocated"] == 2 << 30 and listed["cpuwithoverprovisioning"] == "8000"
    assert admin.ok("updateHost", id=host_id, allocationstate="Disable",
            hosttags="a,b")["host"]["hosttags"] == "a,b"
    assert admin.call("updateHost", id=host_id, allocationstate="Sideways")[0] == 431
    admin.ok("updateHost", id=host_id, allocationstate="Enable")
    assert admin.call("deleteHost", id=host_id)[0] == 536
    job = admin.wait(admin.ok("prepareHostForMaintenance", id=host_id)["jobid"])
    assert job["jobstatus"] == 2 and "MaintainCommand" in job["jobresult"]["errortext"]
    assert admin.ok("listHosts", id=host_id)["host"][0]["resourcestate"] == "ErrorInMaintenance"
    cancel = admin.wait(admin.ok("cancelHostMaintenance", id=host_id)["jobid"])
    assert cancel["jobresult"]["host"]["resourcestate"] == "Enabled"
    alerts = admin.ok("listAlerts")
    assert alerts["alert"][0]["type"] == ALERT_TYPE_HOST
    admin.ok("archiveAlerts", ids=alerts["alert"][0]["id"])
    assert admin.ok("listAlerts") == {}
    assert admin.ok("deleteHost", id=host_id, forced=True) == {"success": "true"}


def test_catalog(admin: Caller, user_caller: Caller) -> None:
    assert {h["name"] for h in user_caller.ok("listHypervisors")["hypervisor"]} == {"Hyperv", "KVM",
            "Simulator"}
    ostypes = user_caller.ok("listOsTypes", keyword="Windows Server")
    assert ostypes["count"] == 3 and all("Windows Server" in o["description"] for o in ostypes["ostype"])
    one = ostypes["ostype"][0]
    assert user_caller.ok("listOsTypes", id=one["id"])["ostype"] == [one]
    assert user_caller.ok("listOsCategories", name="Windows")["count"] == 1
    assert user_caller.ok("listOsTypes", keyword="%") == {}


def test_signed_request_with_map_and_unicode(admin: Caller) -> None:
    params = {"command": "createZone", "response": "json", "name": "zöne ~*", "networktype": "Basic",
              "dns1": "1.1.1.1", "internaldns1": "10.0.0.1", "apiKey": admin.apikey}
    params["signature"] = compute_signature(list(params.items()), admin.secretkey, java=False)
    resp = admin.http.get("/client/api", params=params)
    assert resp.status_code == 200 and resp.json()["createzoneresponse"]["zone"]["name"] == "zöne ~*"
