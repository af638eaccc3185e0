"""Tenants on a real cloud: ``hvcloud server run`` (SQLite and PostgreSQL), one simulator agent
process serving two hosts, the real ``cs`` client and plain HTTP for sessions.

Deleting: a user who deployed a VM (so it has jobs and events) is deleted: its keys and its login
session stop working at once, the history still lists for admins, and its username can be taken
again. An account with running VMs, attached and detached volumes and a template of its own is
deleted: the job succeeds and everything the account owned is gone from the hosts and the image store.

What tenants see: where VMs and disks live is for admins only; a public template's source URL and
download error are for its owner; another account's template answers like one that does not exist.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cs import CloudStack, CloudStackApiException

from hvcloud.storage import qemu_img
from tests.support.vm_stack import TEMPLATE_BYTES, Cloud, job_result, simulator_cloud
from tests.support.wait import wait_for

HOSTS = 2
PASSWORD = "pw-Delete-1"
#: the image server's base URL, for tests that register from it
IMAGES: dict[str, str] = {}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cloud, str]]:
    """The cloud, and the URL of a second image a tenant can register."""
    db_url = request.getfixturevalue("module_pg_database") if request.param == "postgresql" else None
    base = tmp_path_factory.mktemp(f"acctdel-{request.param}")
    with simulator_cloud(base, HOSTS, db_url) as (cloud, images):
        qemu_img.create(str(base / "images" / "own.qcow2"), "qcow2", TEMPLATE_BYTES)
        IMAGES["url"] = images.url("")
        cloud.cs.updateTemplatePermissions(id=cloud.template["id"], ispublic=True)
        yield cloud, images.url("own.qcow2")


def _tenant(cloud: Cloud, name: str) -> tuple[dict[str, Any], CloudStack, dict[str, str]]:
    account = cloud.cs.createAccount(username=name, password=PASSWORD, firstname="T", lastname="N",
                                     email=f"{name}@example.org", accounttype=0)["account"]
    keys = cloud.cs.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    client = CloudStack(endpoint=cloud.server.endpoint, key=keys["apikey"], secret=keys["secretkey"],
                        fetch_result=True, timeout=120, poll_interval=0.2)
    return account, client, keys


def _offering(cs: CloudStack) -> str:
    found = cs.listServiceOfferings(name="tiny-vm").get("serviceoffering")
    if found:
        return str(found[0]["id"])
    return str(cs.createServiceOffering(name="tiny-vm", displaytext="tiny", cpunumber=1, cpuspeed=500,
                                        memory=256)["serviceoffering"]["id"])


def _deploy(cloud: Cloud, client: CloudStack, **kw: Any) -> dict[str, Any]:
    return dict(client.deployVirtualMachine(serviceofferingid=_offering(cloud.cs), templateid=cloud.template["id"],
                                            zoneid=cloud.zone["id"], **kw)["virtualmachine"])


def _login(cloud: Cloud, username: str) -> tuple[httpx.Client, str]:
    http = httpx.Client(timeout=30)
    answer = http.post(cloud.server.endpoint, data={"command": "login", "username": username,
                                                    "password": PASSWORD, "response": "json"})
    assert answer.status_code == 200, answer.text
    return http, str(answer.json()["loginresponse"]["sessionkey"])


def _session_call(http: httpx.Client, cloud: Cloud, key: str) -> httpx.Response:
    return http.get(cloud.server.endpoint, params={"command": "listZones", "response": "json", "sessionkey": key})


def _refused(client: CloudStack) -> int:
    with pytest.raises(CloudStackApiException) as exc:
        client.listVirtualMachines()
    return int(exc.value.error["errorcode"])


def test_a_user_with_jobs_and_events_is_deleted_and_locked_out_at_once(stack: tuple[Cloud, str]) -> None:
    cloud, _ = stack
    cs = cloud.cs
    name = f"dora-{uuid.uuid4().hex[:6]}"
    account, client, _ = _tenant(cloud, name)
    user_id = account["user"][0]["id"]
    vm = _deploy(cloud, client)  # a job and events of this user
    assert vm["state"] == "Running"
    http, session = _login(cloud, name)
    assert _session_call(http, cloud, session).status_code == 200

    assert cs.deleteUser(id=user_id)["success"] in (True, "true")

    assert _refused(client) == 401
    assert _session_call(http, cloud, session).status_code == 401
    relogin = http.post(cloud.server.endpoint, data={"command": "login", "username": name, "password": PASSWORD,
                                                     "response": "json"})
    assert relogin.status_code == 531
    http.close()
    assert cs.listUsers(username=name, listall=True) == {}
    with pytest.raises(CloudStackApiException) as exc:
        cs.deleteUser(id=user_id)
    assert exc.value.error["errorcode"] == 431
    # the history stays, for admins
    events = cs.listEvents(listall=True, resourceid=vm["id"], fetch_list=True)
    assert any(e["type"] == "VM.CREATE" and e.get("username") == name for e in events)
    jobs = cs.listAsyncJobs(listall=True, fetch_list=True)
    assert any(j["userid"] == user_id and j["cmd"] == "deployVirtualMachine" for j in jobs)
    # the account and its VM stay; the name can be taken again, by a user who can log in
    assert cs.listVirtualMachines(id=vm["id"], listall=True)["virtualmachine"][0]["state"] == "Running"
    again = cs.createUser(username=name, password=PASSWORD, firstname="T", lastname="N", account=name)["user"]
    assert again["id"] != user_id
    http, _session = _login(cloud, name)
    http.close()
    cs.destroyVirtualMachine(id=vm["id"], expunge=True)


def test_deleting_an_account_cleans_up_its_vms_volumes_and_templates(stack: tuple[Cloud, str]) -> None:
    cloud, own_image = stack
    cs = cloud.cs
    name = f"eve-{uuid.uuid4().hex[:6]}"
    account, client, _ = _tenant(cloud, name)
    running = _deploy(cloud, client)
    stopped = _deploy(cloud, client)
    client.stopVirtualMachine(id=stopped["id"])
    disk = cs.listDiskOfferings(name="Small")["diskoffering"][0]["id"]
    attached = client.createVolume(name="data", diskofferingid=disk, zoneid=cloud.zone["id"],
                                   virtualmachineid=running["id"])["volume"]
    loose = client.createVolume(name="loose", diskofferingid=disk, zoneid=cloud.zone["id"],
                                virtualmachineid=running["id"])["volume"]
    client.detachVolume(id=loose["id"])  # a detached volume with a disk on primary storage
    template = client.registerTemplate(name="own", displaytext="own", format="QCOW2", hypervisor="Simulator",
                                       url=own_image, zoneid=cloud.zone["id"],
                                       ostypeid=cs.listOsTypes()["ostype"][0]["id"])["template"][0]
    wait_for("the tenant's template", lambda: client.listTemplates(templatefilter="self", id=template["id"])
             ["template"][0]["isready"])
    store_files = {p for p in (cloud.base / "secondary").rglob("*") if p.is_file() and template["id"] in p.name}
    assert store_files
    volumes = client.listVolumes(fetch_list=True)
    assert {attached["id"], loose["id"]} <= {v["id"] for v in volumes}
    disk_paths = {v["id"] for v in volumes}
    instance_names = {r.instance_name for r in cloud.vm_rows() if r.id in (running["id"], stopped["id"])}
    assert instance_names & cloud.running_on_agent()
    http, session = _login(cloud, name)

    with pytest.raises(CloudStackApiException) as exc:
        client.deleteAccount(id=account["id"])  # users may not call it at all
    assert exc.value.error["errorcode"] == 401
    submitted = cs.deleteAccount(id=account["id"], fetch_result=False)
    assert _refused(client) == 401  # at once, before the cleanup job ends
    assert _session_call(http, cloud, session).status_code == 401
    http.close()
    result = job_result(cs, submitted["jobid"], timeout=180)
    assert result["jobstatus"] == 1, result
    assert result["jobresult"] == {"success": True}

    assert cs.listAccounts(name=name, listall=True) == {}
    assert not [v for v in cs.listVirtualMachines(listall=True, fetch_list=True) if v["account"] == name]
    assert not [v for v in cs.listVolumes(listall=True, fetch_list=True) if v["id"] in disk_paths]
    assert cs.listTemplates(templatefilter="all", id=template["id"]) == {}
    assert not instance_names & cloud.running_on_agent()
    assert not any(p.exists() for p in store_files)
    on_agent = {path for files in cloud.agent_files().values() for path in files}
    assert not [path for path in on_agent if any(vid in path for vid in disk_paths)]
    cloud.capacity_matches_recount()
    # what history needs stays
    assert cs.listEvents(listall=True, resourceid=running["id"], fetch_list=True)
    # deleting it again succeeds (CloudStack answers true for an account already removed)
    assert job_result(cs, cs.deleteAccount(id=account["id"], fetch_result=False)["jobid"])["jobstatus"] == 1
    # and the name is free again
    again = cs.createAccount(username=name, password=PASSWORD, firstname="T", lastname="N", accounttype=0)
    assert again["account"]["id"] != account["id"]


def test_cloudstack_refusals(stack: tuple[Cloud, str]) -> None:
    cloud, _ = stack
    cs = cloud.cs
    admin = cs.listUsers(username="admin")["user"][0]
    for call, params, text in ((cs.deleteUser, {"id": admin["id"]}, "default"),
                               (cs.deleteAccount, {"id": admin["accountid"]}, "own account")):
        with pytest.raises(CloudStackApiException) as exc:
            call(**params)
        assert exc.value.error["errorcode"] == 431 and text in exc.value.error["errortext"]
    # the caller itself, from another admin account
    name = f"root-{uuid.uuid4().hex[:6]}"
    account = cs.createAccount(username=name, password=PASSWORD, firstname="R", lastname="A", accounttype=1)["account"]
    keys = cs.registerUserKeys(id=account["user"][0]["id"])["userkeys"]
    other = CloudStack(endpoint=cloud.server.endpoint, key=keys["apikey"], secret=keys["secretkey"],
                       fetch_result=True, timeout=60, poll_interval=0.2)
    with pytest.raises(CloudStackApiException) as exc:
        other.deleteUser(id=account["user"][0]["id"])
    assert exc.value.error["errorcode"] == 431 and "itself" in exc.value.error["errortext"]
    with pytest.raises(CloudStackApiException) as exc:
        other.deleteAccount(id=admin["accountid"])
    assert exc.value.error["errorcode"] == 431 and "default" in exc.value.error["errortext"]
    # the last user of an account may go; the account stays, with no user
    assert cs.deleteUser(id=account["user"][0]["id"])["success"] in (True, "true")
    assert cs.listAccounts(id=account["id"])["account"][0].get("user", []) == []


def _error(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(CloudStackApiException) as exc:
        call(**params)
    return dict(exc.value.error)


def test_where_vms_and_disks_live_is_for_admins_only(stack: tuple[Cloud, str]) -> None:
    cloud, _ = stack
    cs = cloud.cs
    _, client, _ = _tenant(cloud, f"fay-{uuid.uuid4().hex[:6]}")
    deployed = _deploy(cloud, client)  # the deploy job's own result, as the tenant reads it
    hidden_vm, hidden_volume = {"hostid", "hostname", "instancename"}, {"storage", "storageid", "path", "hypervisor"}
    listed = client.listVirtualMachines(id=deployed["id"])["virtualmachine"][0]
    root = client.listVolumes(virtualmachineid=deployed["id"])["volume"][0]
    for seen in (deployed, listed):
        assert seen["state"] == "Running" and not hidden_vm & seen.keys(), seen
    assert root["state"] == "Ready" and not hidden_volume & root.keys(), root
    admin_vm = cs.listVirtualMachines(id=deployed["id"], listall=True)["virtualmachine"][0]
    admin_root = cs.listVolumes(id=root["id"], listall=True)["volume"][0]
    assert hidden_vm <= admin_vm.keys() and {"storage", "storageid", "path"} <= admin_root.keys()
    stopped = client.stopVirtualMachine(id=deployed["id"])["virtualmachine"]
    assert stopped["state"] == "Stopped" and not hidden_vm & stopped.keys()
    cs.destroyVirtualMachine(id=deployed["id"], expunge=True)


def _settled(client: CloudStack) -> bool:
    return all(t["isready"] or "Downloaded" not in t["status"]
               for t in client.listTemplates(templatefilter="self", fetch_list=True))


def test_a_public_templates_url_and_error_are_for_its_owner(stack: tuple[Cloud, str]) -> None:
    cloud, own_image = stack
    _, owner, _ = _tenant(cloud, f"gus-{uuid.uuid4().hex[:6]}")
    _, other, _ = _tenant(cloud, f"hal-{uuid.uuid4().hex[:6]}")
    os_type = cloud.cs.listOsTypes()["ostype"][0]["id"]
    token_url = own_image + "?token=s3cr3t-token"
    common = {"format": "QCOW2", "hypervisor": "Simulator", "zoneid": cloud.zone["id"], "ostypeid": os_type,
              "ispublic": True}
    good = owner.registerTemplate(name="pub-ok", displaytext="ok", url=token_url, **common)["template"][0]
    bad_url = IMAGES["url"] + "missing.qcow2?token=s3cr3t-token"
    bad = owner.registerTemplate(name="pub-bad", displaytext="bad", url=bad_url, **common)["template"][0]
    wait_for("the downloads to end", lambda: _settled(owner))
    mine = {t["id"]: t for t in owner.listTemplates(templatefilter="self", fetch_list=True)}
    assert mine[good["id"]]["url"] == token_url and mine[good["id"]]["isready"]
    assert mine[bad["id"]]["status"] != "Download Failed", mine[bad["id"]]  # the owner sees why
    theirs = {t["id"]: t for t in other.listTemplates(templatefilter="community", fetch_list=True)}
    assert {good["id"], bad["id"]} <= theirs.keys()
    assert "url" not in theirs[good["id"]] and "url" not in theirs[bad["id"]]
    assert theirs[bad["id"]]["status"] == "Download Failed"
    for listing in (other.listTemplates(templatefilter="executable", fetch_list=True),
                    other.listTemplates(templatefilter="all", fetch_list=True)):
        assert "s3cr3t" not in str(listing)
    assert cloud.cs.listTemplates(templatefilter="all", id=good["id"])["template"][0]["url"] == token_url


def test_another_accounts_template_answers_like_a_missing_one(stack: tuple[Cloud, str]) -> None:
    cloud, own_image = stack
    _, owner, _ = _tenant(cloud, f"ida-{uuid.uuid4().hex[:6]}")
    _, other, _ = _tenant(cloud, f"jon-{uuid.uuid4().hex[:6]}")
    iso = owner.registerIso(name="mine", displaytext="mine", url=IMAGES["url"] + "missing.iso",
                            zoneid=cloud.zone["id"], ispublic=True)["iso"][0]
    template = owner.registerTemplate(name="mine", displaytext="mine", format="QCOW2", hypervisor="Simulator",
                                      url=own_image, zoneid=cloud.zone["id"],
                                      ostypeid=cloud.cs.listOsTypes()["ostype"][0]["id"])["template"][0]
    missing = str(uuid.uuid4())

    def answer(call: Any, target: str) -> tuple[int, str]:
        error = _error(call, id=target)
        return int(error["errorcode"]), str(error["errortext"]).replace(target, "<id>")

    for call, target in ((other.updateTemplate, template["id"]), (other.deleteIso, iso["id"]),
                         (other.updateIso, iso["id"]), (other.deleteTemplate, template["id"]),
                         (other.updateTemplatePermissions, template["id"]), (other.copyIso, iso["id"])):
        assert answer(call, target) == answer(call, missing), call
