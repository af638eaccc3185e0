"""The VM and volume API without agents: validation of hostile input, visibility, the state machine
for VMs that never reach a host, and database-only volume operations."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from hvcloud.server.db.models import Account, TemplateStoreRef, VMTemplate
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller, build_zone


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        owner = db.query(Account).filter_by(name="admin").one()
        ready = VMTemplate(name="ready", display_text="ready", format="QCOW2", hypervisor="Simulator",
                           account_id=owner.id, is_public=True)
        pending = VMTemplate(name="pending", display_text="pending", format="QCOW2", account_id=owner.id)
        db.add_all([ready, pending])
        db.flush()
        db.add_all([TemplateStoreRef(template_id=ready.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                     install_path="template/tmpl/2/1/t.qcow2", size=1 << 30),
                    TemplateStoreRef(template_id=pending.id, zone_id=ids["zoneid"])])
        template, pending_id = ready.id, pending.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template, "pending": pending_id, "offering": offering}


def _deploy(caller: Caller, cloud: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    params = {"serviceofferingid": cloud["offering"], "templateid": cloud["template"], "zoneid": cloud["zoneid"],
              "startvm": "false", **kw}
    return caller.call("deployVirtualMachine", **params)


@pytest.mark.parametrize("bad", [
    {"name": "-dash"}, {"name": "a" * 64}, {"name": "under_score"}, {"name": "x\u00e9"},
    {"userdata": "not base64!"}, {"userdata": "QUJD" * 12000},
    {"templateid": "0b7e3c3e-0000-4000-8000-000000000000"}, {"rootdisksize": "0"}, {"rootdisksize": "-5"},
    {"rootdisksize": "99999999"}, {"serviceofferingid": "nope"},
])
def test_deploy_refuses_hostile_input(admin: Caller, cloud: dict[str, Any], bad: dict[str, str]) -> None:
    status, body = _deploy(admin, cloud, **bad)
    assert status == 431, body


def test_deploy_refuses_templates_not_ready_and_host_choice_by_users(admin: Caller, user_caller: Caller,
                                                                     cloud: dict[str, Any]) -> None:
    status, body = _deploy(admin, cloud, templateid=cloud["pending"])
    assert status == 431 and "not ready" in body["errortext"]
    status, body = _deploy(user_caller, cloud, hostid="0b7e3c3e-0000-4000-8000-000000000000")
    assert status == 431 and "administrators" in body["errortext"]
    custom = admin.ok("createServiceOffering", name="custom", displaytext="custom")["serviceoffering"]["id"]
    status, body = _deploy(admin, cloud, serviceofferingid=custom)
    assert status == 431 and "customized" in body["errortext"]
    status, _ = _deploy(admin, cloud, serviceofferingid=custom, cpunumber="0", memory="512")
    assert status == 431
    job = admin.wait(_deploy(admin, cloud, serviceofferingid=custom, **{
        "details[0].cpuNumber": "2", "details[0].memory": "768"})[1]["jobid"])
    assert job["jobresult"]["virtualmachine"]["cpunumber"] == 2 and job["jobresult"]["virtualmachine"]["memory"] == 768


def test_stopped_vm_lifecycle_without_hosts(admin: Caller, user_caller: Caller, cloud: dict[str, Any]) -> None:
    userdata = base64.b64encode(b"hello").decode()
    status, body = _deploy(admin, cloud, name="db-1", userdata=userdata)
    assert status == 200 and set(body) == {"id", "jobid"}
    vm = admin.wait(body["jobid"])["jobresult"]["virtualmachine"]
    assert vm["state"] == "Stopped" and vm["name"] == "db-1" and vm["userdata"] == userdata
    assert vm["instancename"] == "i-2-1-VM" and vm["nic"][0]["networkname"] == "guest"
    root = admin.ok("listVolumes", virtualmachineid=vm["id"])["volume"][0]
    assert root["type"] == "ROOT" and root["state"] == "Allocated" and root["size"] == 1 << 30

    assert user_caller.ok("listVirtualMachines") == {}
    assert user_caller.call("startVirtualMachine", id=vm["id"])[0] == 431
    assert admin.call("rebootVirtualMachine", id=vm["id"])[0] == 431
    assert admin.call("recoverVirtualMachine", id=vm["id"])[0] == 431
    assert admin.call("expungeVirtualMachine", id=vm["id"])[0] == 431

    failed = admin.wait(admin.ok("startVirtualMachine", id=vm["id"])["jobid"])
    assert failed["jobstatus"] == 2 and failed["jobresult"]["errorcode"] == 533
    after = admin.ok("listVirtualMachines", id=vm["id"])["virtualmachine"][0]
    assert after["state"] == "Stopped" and "no host" in after["details"]["statereason"]

    small = admin.ok("listServiceOfferings", name="Medium Instance")["serviceoffering"][0]["id"]
    scaled = admin.job("scaleVirtualMachine", id=vm["id"], serviceofferingid=small)["jobresult"]["virtualmachine"]
    assert scaled["memory"] == 1024
    assert admin.ok("updateVirtualMachine", id=vm["id"], name="db-2")["virtualmachine"]["name"] == "db-2"
    assert admin.call("updateVirtualMachine", id=vm["id"], userdata="***")[0] == 431

    assert admin.job("destroyVirtualMachine", id=vm["id"])["jobresult"]["virtualmachine"]["state"] == "Destroyed"
    assert admin.ok("recoverVirtualMachine", id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    assert admin.job("destroyVirtualMachine", id=vm["id"], expunge="true")["jobstatus"] == 1
    assert admin.ok("listVirtualMachines", id=vm["id"]) == {}
    assert admin.ok("listVolumes", virtualmachineid=vm["id"]) == {}


def test_list_filters_and_paging(admin: Caller, cloud: dict[str, Any]) -> None:
    for i in range(3):
        admin.wait(_deploy(admin, cloud, name=f"web-{i}")[1]["jobid"])
    assert admin.ok("listVirtualMachines", keyword="web")["count"] == 3
    assert admin.ok("listVirtualMachines", keyword="%_") == {}
    assert admin.ok("listVirtualMachines", state="stopped")["count"] == 3
    assert admin.ok("listVirtualMachines", state="%") == {}
    assert admin.ok("listVirtualMachines", name="web-1")["count"] == 1
    page = admin.ok("listVirtualMachines", page="2", pagesize="2")
    assert page["count"] == 3 and len(page["virtualmachine"]) == 1
    assert admin.call("listVirtualMachines", pagesize="501", page="1")[0] == 431
    assert admin.call("listVirtualMachines", page="1")[0] == 431
    assert admin.call("listVirtualMachines", id="not-a-uuid")[0] == 431


def test_volume_rules_without_hosts(admin: Caller, cloud: dict[str, Any]) -> None:
    disk = admin.ok("listDiskOfferings", name="Small")["diskoffering"][0]
    custom = admin.ok("listDiskOfferings", name="Custom")["diskoffering"][0]
    assert admin.call("createVolume", zoneid=cloud["zoneid"])[0] == 431
    assert admin.call("createVolume", diskofferingid=custom["id"], zoneid=cloud["zoneid"])[0] == 431
    for size in ("0", "-1", "10000000"):
        assert admin.call("createVolume", diskofferingid=custom["id"], zoneid=cloud["zoneid"], size=size)[0] == 431
    volume = admin.job("createVolume", diskofferingid=disk["id"], zoneid=cloud["zoneid"], name="d1")["jobresult"]
    volume = volume["volume"]
    assert volume["state"] == "Allocated" and "virtualmachineid" not in volume
    vm = admin.wait(_deploy(admin, cloud)[1]["jobid"])["jobresult"]["virtualmachine"]
    root = admin.ok("listVolumes", virtualmachineid=vm["id"], type="ROOT")["volume"][0]
    assert admin.call("attachVolume", id=root["id"], virtualmachineid=vm["id"])[0] == 431
    assert admin.call("detachVolume", id=root["id"])[0] == 431
    assert admin.call("detachVolume")[0] == 431
    attached = admin.job("attachVolume", id=volume["id"], virtualmachineid=vm["id"])["jobresult"]["volume"]
    assert attached["virtualmachineid"] == vm["id"] and attached["deviceid"] == 1 and attached["state"] == "Allocated"
    assert admin.call("deleteVolume", id=volume["id"])[0] == 536
    assert admin.call("resizeVolume", id=volume["id"], diskofferingid=custom["id"], size="1")[0] == 431
    resized = admin.job("resizeVolume", id=volume["id"], diskofferingid=custom["id"], size="9")["jobresult"]
    assert resized["volume"]["size"] == 9 << 30
    detached = admin.job("detachVolume", virtualmachineid=vm["id"], deviceid="1")["jobresult"]["volume"]
    assert "virtualmachineid" not in detached
    assert admin.ok("deleteVolume", id=volume["id"])["success"] == "true"
    assert admin.call("deleteVolume", id=volume["id"])[0] == 431
