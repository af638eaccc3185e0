"""Instance groups through the signed API: create/list/update/delete with CloudStack's shapes and
codes, the ``group`` name of deployVirtualMachine/updateVirtualMachine (made when missing), the VM's
``group``/``groupid`` and listVirtualMachines' ``groupid``; hostile and out-of-order input, and who
may see or change which group."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from hvcloud.server.db.models import InstanceGroup
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller


def _vm(caller: Caller, cloud: dict[str, Any], name: str, **kw: Any) -> dict[str, Any]:
    job = caller.job("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                     zoneid=cloud["zoneid"], startvm="false", name=name, **kw)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _groups(state: ServerState) -> int:
    with state.sessions() as db:
        return db.scalar(select(func.count()).select_from(InstanceGroup)) or 0


def test_group_lifecycle_and_vm_membership(admin: Caller, state: ServerState, cloud: dict[str, Any]) -> None:
    group = admin.ok("createInstanceGroup", name="web")["instancegroup"]
    assert group["name"] == "web" and group["account"] == "admin" and group["domain"] == "ROOT"
    assert group["domainid"] and group["created"].endswith("+0000")
    # deploy with an existing group's name joins it; a new name makes a group
    vm = _vm(admin, cloud, "w1", group="web")
    assert vm["group"] == "web" and vm["groupid"] == group["id"]
    other = _vm(admin, cloud, "d1", group="db")
    made = admin.ok("listInstanceGroups", name="db")["instancegroup"][0]
    assert other["groupid"] == made["id"] and _groups(state) == 2
    listed = admin.ok("listInstanceGroups")
    assert listed["count"] == 2 and {g["name"] for g in listed["instancegroup"]} == {"web", "db"}
    assert admin.ok("listInstanceGroups", keyword="e")["count"] == 1
    assert [v["id"] for v in admin.ok("listVirtualMachines", groupid=group["id"])["virtualmachine"]] == [vm["id"]]

    # updateVirtualMachine moves the VM (making the group), an empty group takes it out
    moved = admin.ok("updateVirtualMachine", id=vm["id"], group="cache")["virtualmachine"]
    assert moved["group"] == "cache" and _groups(state) == 3
    out = admin.ok("updateVirtualMachine", id=vm["id"], group="")["virtualmachine"]
    assert "group" not in out and "groupid" not in out

    # rename, then delete: the VMs stay, in no group; twice: not found
    renamed = admin.ok("updateInstanceGroup", id=made["id"], name="database")["instancegroup"]
    assert renamed["name"] == "database"
    assert admin.ok("listVirtualMachines", id=other["id"])["virtualmachine"][0]["group"] == "database"
    assert admin.ok("deleteInstanceGroup", id=made["id"])["success"] == "true"
    after = admin.ok("listVirtualMachines", id=other["id"])["virtualmachine"][0]
    assert after["state"] == "Stopped" and "groupid" not in after
    assert admin.call("deleteInstanceGroup", id=made["id"])[0] == 431
    assert admin.call("updateInstanceGroup", id=made["id"], name="x")[0] == 431
    assert admin.ok("listVirtualMachines", groupid=made["id"]) == {}


@pytest.mark.parametrize("bad", [{"name": "   "}, {"name": "x" * 256}, {"name": ""},
                                 {"projectid": "0b7e3c3e-0000-4000-8000-000000000000"}])
def test_create_refuses_hostile_input(admin: Caller, state: ServerState, bad: dict[str, str]) -> None:
    status, body = admin.call("createInstanceGroup", **{"name": "g", **bad})
    assert status == 431, body
    assert _groups(state) == 0


def test_duplicates_unicode_and_injection_like_names(admin: Caller, state: ServerState,
                                                     cloud: dict[str, Any]) -> None:
    odd = "gr\u00fcppe-\u65e5\u672c' OR 1=1 --"
    group = admin.ok("createInstanceGroup", name=odd)["instancegroup"]
    assert admin.ok("listInstanceGroups", name=odd)["instancegroup"][0]["id"] == group["id"]
    status, body = admin.call("createInstanceGroup", name=odd.upper())
    assert status == 431 and "already exists" in body["errortext"]
    second = admin.ok("createInstanceGroup", name="second")["instancegroup"]
    assert admin.call("updateInstanceGroup", id=second["id"], name=odd)[0] == 431
    assert admin.call("updateInstanceGroup", id=second["id"], name=" ")[0] == 431
    assert admin.call("updateInstanceGroup", id="'; DROP TABLE instance_group; --", name="x")[0] == 431
    assert admin.call("deleteInstanceGroup", id="not-a-uuid")[0] == 431
    assert admin.call("listVirtualMachines", groupid="not-a-uuid")[0] == 431
    # the deploy's group name joins the existing group whatever its case
    vm = _vm(admin, cloud, "u1", group=odd.upper())
    assert vm["groupid"] == group["id"] and _groups(state) == 2
    status, _ = admin.call("deployVirtualMachine", serviceofferingid=cloud["offering"],
                           templateid=cloud["template"], zoneid=cloud["zoneid"], startvm="false", group="g" * 256)
    assert status == 431 and _groups(state) == 2


def test_permissions(admin: Caller, user_caller: Caller, state: ServerState, cloud: dict[str, Any]) -> None:
    theirs = admin.ok("createInstanceGroup", name="ops")["instancegroup"]
    mine = user_caller.ok("createInstanceGroup", name="ops")["instancegroup"]  # names are per account
    assert mine["account"] == "alice" and mine["id"] != theirs["id"]
    assert [g["id"] for g in user_caller.ok("listInstanceGroups", listall="true")["instancegroup"]] == [mine["id"]]
    assert user_caller.ok("listInstanceGroups", id=theirs["id"]) == {}
    assert user_caller.call("listInstanceGroups", account="admin", domainid=mine["domainid"])[0] == 531
    assert user_caller.call("updateInstanceGroup", id=theirs["id"], name="mine-now")[0] == 431
    assert user_caller.call("deleteInstanceGroup", id=theirs["id"])[0] == 431
    assert user_caller.call("createInstanceGroup", name="x", account="admin", domainid=mine["domainid"])[0] == 531
    assert admin.ok("listInstanceGroups", listall="true")["count"] == 2
    # a user's VM joins the user's group of that name, never the admin's
    vm = _vm(user_caller, cloud, "u1", group="ops")
    assert vm["groupid"] == mine["id"]
    assert user_caller.ok("listVirtualMachines", groupid=theirs["id"]) == {}
    # an admin creates for an account, renames and deletes any group
    made = admin.ok("createInstanceGroup", name="made", account="alice", domainid=mine["domainid"])["instancegroup"]
    assert made["account"] == "alice"
    assert admin.ok("updateInstanceGroup", id=mine["id"], name="ops2")["instancegroup"]["name"] == "ops2"
    assert admin.ok("deleteInstanceGroup", id=made["id"])["success"] == "true"
    assert user_caller.ok("listInstanceGroups")["count"] == 1
