"""Domains and domain admins through the signed API: the domain tree (createDomain, updateDomain,
listDomains, listDomainChildren), deleteDomain with and without cleanup, hostile and out-of-order
input, and a domain admin (account type 2) that manages its subtree only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import Domain
from hvcloud.server.state import ServerState
from tests.support.server_api import Caller

PW = {"password": "pw-Domains-1", "firstname": "F", "lastname": "L"}
OTHER_UUID = "8f1c7c4e-0000-4000-8000-000000000000"
NOT_FOUND = "entity does not exist"


def _domain(caller: Caller, name: str, parent: str | None = None, **extra: Any) -> dict[str, Any]:
    params = {"name": name, **({"parentdomainid": parent} if parent else {}), **extra}
    return caller.ok("createDomain", **params)["domain"]  # type: ignore[no-any-return]


def _account(caller: Caller, username: str, domain_id: str, accounttype: int = 0) -> dict[str, Any]:
    return caller.ok("createAccount", username=username, domainid=domain_id, accounttype=accounttype,
                     **PW)["account"]  # type: ignore[no-any-return]


def _keys(admin: Caller, account: dict[str, Any]) -> Caller:
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


def _root(admin: Caller) -> str:
    return admin.ok("listDomains", name="ROOT")["domain"][0]["id"]  # type: ignore[no-any-return]


def _names(answer: dict[str, Any], key: str = "domain") -> set[str]:
    return {d["name"] for d in answer.get(key, [])}


# ---------------------------------------------------------------------------------------- the tree


def test_domain_tree_listing(admin: Caller) -> None:
    root = _root(admin)
    sub = _domain(admin, "sub", networkdomain="sub.example.org")
    child = _domain(admin, "child", sub["id"])
    assert (sub["path"], sub["level"], sub["parentdomainid"], sub["parentdomainname"]) == ("ROOT/sub", 1, root, "ROOT")
    assert (child["path"], child["level"], child["parentdomainname"]) == ("ROOT/sub/child", 2, "sub")
    assert sub["networkdomain"] == "sub.example.org" and sub["state"] == "Active"

    listed = admin.ok("listDomains")
    assert listed["count"] == 3
    by_name = {d["name"]: d for d in listed["domain"]}
    assert [by_name[n]["haschild"] for n in ("ROOT", "sub", "child")] == [True, True, False]
    assert "parentdomainid" not in by_name["ROOT"]
    assert admin.ok("listDomains", id=child["id"])["domain"][0]["path"] == "ROOT/sub/child"
    assert _names(admin.ok("listDomains", level=2)) == {"child"}

    assert _names(admin.ok("listDomainChildren", id=root)) == {"sub"}
    assert _names(admin.ok("listDomainChildren", id=root, isrecursive=True)) == {"sub", "child"}
    assert _names(admin.ok("listDomainChildren")) == {"sub"}  # the caller's domain by default
    assert _names(admin.ok("listDomainChildren", id=root, isrecursive=True, name="chi")) == {"child"}
    assert admin.ok("listDomainChildren", id=child["id"]) == {}


def test_rename_moves_the_subtree_paths(admin: Caller) -> None:
    sub = _domain(admin, "sub")
    child = _domain(admin, "child", sub["id"])
    _domain(admin, "sibling")
    renamed = admin.ok("updateDomain", id=sub["id"], name="dept")["domain"]
    assert (renamed["name"], renamed["path"], renamed["haschild"]) == ("dept", "ROOT/dept", True)
    assert admin.ok("listDomains", id=child["id"])["domain"][0]["path"] == "ROOT/dept/child"
    status, body = admin.call("updateDomain", id=sub["id"], name="sibling")
    assert status == 431 and "already exists in the system" in body["errortext"]
    status, body = admin.call("updateDomain", id=_root(admin), name="TOP")
    assert (status, body["errortext"]) == (431, "ROOT domain can not be edited with a new name")
    assert admin.call("updateDomain", id=sub["id"], networkdomain="-bad-")[0] == 431
    assert admin.ok("updateDomain", id=sub["id"], networkdomain="d.example")["domain"]["networkdomain"] == "d.example"
    assert "networkdomain" not in admin.ok("updateDomain", id=sub["id"], networkdomain="")["domain"]


def test_hostile_domain_input(state: ServerState, admin: Caller) -> None:
    sub = _domain(admin, "sub")
    for params, code, text in (
            ({"name": "a/b"}, 431, "cannot contain '/'"),
            ({"name": "   "}, 431, "missing parameter name"),
            ({"name": "x" * 256}, 431, "name"),
            ({"name": "sub"}, 431, f"Domain with name [sub] already exists for the parent with ID [{_root(admin)}]."),
            ({"name": "z", "parentdomainid": OTHER_UUID}, 431, NOT_FOUND),
            ({"name": "z", "parentdomainid": "1; DROP TABLE domain"}, 431, "parentdomainid"),
            ({"name": "z", "networkdomain": "no spaces allowed"}, 431, "networkdomain")):
        status, body = admin.call("createDomain", **params)
        assert status == code and text in body["errortext"], (params, body)
    # the same name under another parent is fine; names are kept as given
    assert _domain(admin, "sub", sub["id"])["path"] == "ROOT/sub/sub"
    odd = _domain(admin, "x'; DROP TABLE domain;-- ünïcødé ✓")
    assert odd["path"] == "ROOT/x'; DROP TABLE domain;-- ünïcødé ✓"
    assert admin.ok("listDomains", name=odd["name"])["count"] == 1
    deep = sub["id"]
    for _ in range(3):
        deep = _domain(admin, "y" * 255, deep)["id"]
    status, body = admin.call("createDomain", name="y" * 255, parentdomainid=deep)
    assert status == 431 and "exceed 960" in body["errortext"]
    with state.sessions() as db:
        assert len(list(db.scalars(select(Domain)))) == 7


# ------------------------------------------------------------------------------------ deleteDomain


def test_delete_without_cleanup_is_refused_while_the_domain_holds_something(admin: Caller) -> None:
    sub = _domain(admin, "sub")
    child = _domain(admin, "child", sub["id"])
    job = admin.job("deleteDomain", id=sub["id"])
    assert job["jobstatus"] == 2 and job["jobresult"]["errorcode"] == 530
    assert "Please make sure all users and sub domains have been removed" in job["jobresult"]["errortext"]
    account = _account(admin, "carol", child["id"])
    job = admin.job("deleteDomain", id=child["id"], cleanup=False)
    assert job["jobstatus"] == 2 and "Delete failed on domain child" in job["jobresult"]["errortext"]
    assert _names(admin.ok("listDomains")) == {"ROOT", "sub", "child"}

    assert admin.job("deleteAccount", id=account["id"])["jobstatus"] == 1
    assert admin.job("deleteDomain", id=child["id"])["jobresult"] == {"success": True}
    assert _names(admin.ok("listDomains")) == {"ROOT", "sub"}
    assert admin.ok("listDomains", id=sub["id"])["domain"][0]["haschild"] is False
    # out of order: delete twice, use after delete, and the name may be taken again
    assert NOT_FOUND in admin.call("deleteDomain", id=child["id"])[1]["errortext"]
    assert admin.call("createDomain", name="grandchild", parentdomainid=child["id"])[0] == 431
    assert admin.call("createAccount", username="dan", domainid=child["id"], **PW)[0] == 431
    assert admin.call("updateDomain", id=child["id"], name="again")[0] == 431
    assert _domain(admin, "child", sub["id"])["path"] == "ROOT/sub/child"

    status, body = admin.call("deleteDomain", id=_root(admin))
    assert (status, body["errortext"]) == (531, "Can't delete ROOT domain")


def _vm(caller: Caller, cloud: dict[str, Any], name: str, **owner: str) -> str:
    job = caller.job("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                     zoneid=cloud["zoneid"], startvm="false", name=name, **owner)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]["id"]  # type: ignore[no-any-return]


def test_delete_with_cleanup_removes_the_subtree(admin: Caller, cloud: dict[str, Any]) -> None:
    sub = _domain(admin, "sub")
    child = _domain(admin, "child", sub["id"])
    keep = _domain(admin, "keep")
    doomed = _account(admin, "doomed", child["id"])
    kept = _account(admin, "kept", keep["id"])
    doomed_vm = _vm(admin, cloud, "doomed-vm", account="doomed", domainid=child["id"])
    kept_vm = _vm(admin, cloud, "kept-vm", account="kept", domainid=keep["id"])

    answer = admin.ok("deleteDomain", id=sub["id"], cleanup=True)
    assert set(answer) == {"jobid"}
    job = admin.wait(answer["jobid"])
    assert (job["jobstatus"], job["jobresult"], job["cmd"]) == (1, {"success": True}, "deleteDomain")
    assert _names(admin.ok("listDomains")) == {"ROOT", "keep"}
    assert {a["id"] for a in admin.ok("listAccounts")["account"]} >= {kept["id"]}
    assert doomed["id"] not in {a["id"] for a in admin.ok("listAccounts")["account"]}
    vms = {v["id"] for v in admin.ok("listVirtualMachines", listall=True).get("virtualmachine", [])}
    assert kept_vm in vms and doomed_vm not in vms
    assert admin.call("deleteDomain", id=child["id"], cleanup=True)[0] == 431


# ----------------------------------------------------------------------------------- domain admins


@pytest.fixture
def tree(admin: Caller) -> dict[str, Any]:
    dept = _domain(admin, "dept")
    team = _domain(admin, "team", dept["id"])
    other = _domain(admin, "other")
    boss_account = _account(admin, "boss", dept["id"], accounttype=2)
    assert (boss_account["accounttype"], boss_account["roletype"]) == (2, "DomainAdmin")
    return {"dept": dept, "team": team, "other": other, "boss": _keys(admin, boss_account),
            "boss_account": boss_account}


def test_domain_admin_manages_only_its_subtree(admin: Caller, tree: dict[str, Any], cloud: dict[str, Any]) -> None:
    boss: Caller = tree["boss"]
    team, other = tree["team"], tree["other"]
    worker = _account(boss, "worker", team["id"])
    assert worker["domainid"] == team["id"]
    outsider = _account(admin, "outsider", other["id"])
    status, body = boss.call("createAccount", username="spy", domainid=other["id"], **PW)
    assert status == 531 and "does not have permission to operate within domain" in body["errortext"]
    assert boss.call("createAccount", username="spy", domainid=_root(admin), **PW)[0] == 531
    assert boss.call("createAccount", username="king", domainid=team["id"], accounttype=1, **PW)[0] == 531

    listed = {a["name"] for a in boss.ok("listAccounts")["account"]}
    assert listed == {"boss", "worker"}
    assert {a["name"] for a in boss.ok("listAccounts", domainid=team["id"])["account"]} == {"worker"}
    assert boss.call("listAccounts", domainid=other["id"])[0] == 531
    assert {u["username"] for u in boss.ok("listUsers")["user"]} == {"boss", "worker"}
    assert boss.ok("createUser", account="worker", domainid=team["id"], username="worker2", **PW)["user"]
    assert boss.call("createUser", account="outsider", domainid=other["id"], username="w3", **PW)[0] == 531
    assert boss.call("disableAccount", id=outsider["id"], lock=True)[0] == 531
    assert boss.call("deleteAccount", id=outsider["id"])[0] == 531
    assert boss.call("lockUser", id=outsider["user"][0]["id"])[0] == 531
    assert boss.ok("lockUser", id=worker["user"][0]["id"])["user"]["state"] == "locked"
    assert boss.ok("enableUser", id=worker["user"][0]["id"])["user"]["state"] == "enabled"

    # sub-domains below its own only; never its own domain renamed or deleted
    squad = _domain(boss, "squad", team["id"])
    assert squad["path"] == "ROOT/dept/team/squad"
    assert boss.call("createDomain", name="rogue")[0] == 531  # ROOT by default
    assert boss.call("createDomain", name="rogue", parentdomainid=other["id"])[0] == 531
    assert boss.call("updateDomain", id=tree["dept"]["id"], name="mine")[0] == 531
    assert boss.call("deleteDomain", id=tree["dept"]["id"])[0] == 531
    assert boss.call("deleteDomain", id=other["id"])[0] == 531
    assert boss.job("deleteDomain", id=squad["id"])["jobstatus"] == 1
    assert _names(boss.ok("listDomains")) == {"dept"}
    assert _names(boss.ok("listDomains", listall=True)) == {"dept", "team"}
    assert boss.call("listDomains", id=other["id"])[0] == 531
    assert _names(boss.ok("listDomainChildren")) == {"team"}
    assert boss.call("listDomainChildren", id=other["id"])[0] == 531

    # VMs: the subtree's are visible and usable, a sibling domain's are not
    team_vm = _vm(boss, cloud, "team-vm", account="worker", domainid=team["id"])
    other_vm = _vm(admin, cloud, "other-vm", account="outsider", domainid=other["id"])
    assert boss.call("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                     zoneid=cloud["zoneid"], startvm="false", account="outsider", domainid=other["id"])[0] == 531
    seen = {v["id"] for v in boss.ok("listVirtualMachines", listall=True)["virtualmachine"]}
    assert seen == {team_vm}
    assert "virtualmachine" not in boss.ok("listVirtualMachines")  # without listall: its own account's
    assert boss.ok("listVirtualMachines", domainid=team["id"])["count"] == 1
    assert boss.call("listVirtualMachines", domainid=other["id"])[0] == 531
    assert boss.ok("updateVirtualMachine", id=team_vm, displayname="renamed")["virtualmachine"]["displayname"] == \
        "renamed"
    for command in ("stopVirtualMachine", "updateVirtualMachine", "destroyVirtualMachine"):
        status, body = boss.call(command, id=other_vm)
        assert status == 431 and NOT_FOUND in body["errortext"], command
    assert {v["id"] for v in boss.ok("listVolumes", listall=True)["volume"]} == {
        v["id"] for v in admin.ok("listVolumes", virtualmachineid=team_vm, listall=True)["volume"]}
    assert "hostid" not in boss.ok("listVirtualMachines", id=team_vm, listall=True)["virtualmachine"][0]


def test_domain_admin_is_refused_root_admin_commands(admin: Caller, tree: dict[str, Any]) -> None:
    boss: Caller = tree["boss"]
    for command, params in (("listHosts", {}), ("listZones", {"available": "false"}), ("createZone", {"name": "z"}),
                            ("listConfigurations", {}), ("updateConfiguration", {"name": "x", "value": "y"}),
                            ("getUser", {"userapikey": "k"})):
        status, _ = boss.call(command, **params)
        if command == "listZones":
            assert status == 200  # users may list zones
        else:
            assert status == 401, command
    apis = {a["name"] for a in boss.ok("listApis")["api"]}
    assert {"createAccount", "createDomain", "deleteDomain", "listDomainChildren"} <= apis
    assert not {"listHosts", "createZone", "updateConfiguration"} & apis


def test_users_cannot_manage_domains(admin: Caller, user_caller: Caller, tree: dict[str, Any]) -> None:
    for command, params in (("createDomain", {"name": "x"}), ("deleteDomain", {"id": tree["team"]["id"]}),
                            ("updateDomain", {"id": tree["team"]["id"], "name": "x"}),
                            ("listDomainChildren", {}), ("createAccount", {"username": "u", **PW})):
        assert user_caller.call(command, **params)[0] == 401, command
    assert _names(user_caller.ok("listDomains", listall=True)) == {"ROOT"}
    assert user_caller.call("listDomains", id=tree["team"]["id"])[0] == 531
    assert user_caller.call("listVirtualMachines", domainid=tree["team"]["id"])[0] == 531


def test_domain_admin_lists_and_cleans_up_its_subtree(admin: Caller, tree: dict[str, Any],
                                                      cloud: dict[str, Any]) -> None:
    boss: Caller = tree["boss"]
    team, other = tree["team"], tree["other"]
    _account(boss, "worker", team["id"])
    _account(admin, "outsider", other["id"])
    root_in_team = _account(admin, "rooty", team["id"], accounttype=1)
    for name, domain in (("worker", team), ("outsider", other)):
        admin.ok("createSSHKeyPair", name=f"{name}-key", account=name, domainid=domain["id"])
    keys = {k["name"] for k in boss.ok("listSSHKeyPairs", listall=True)["sshkeypair"]}
    assert keys == {"worker-key"}
    assert boss.call("listSSHKeyPairs", account="outsider", domainid=other["id"])[0] == 531
    # a root admin account inside the subtree stays out of the domain admin's reach
    assert boss.call("disableAccount", id=root_in_team["id"], lock=True)[0] == 531
    assert boss.call("deleteUser", id=root_in_team["user"][0]["id"])[0] == 531
    assert admin.job("deleteAccount", id=root_in_team["id"])["jobstatus"] == 1

    worker_vm = _vm(boss, cloud, "w-vm", account="worker", domainid=team["id"])
    job = boss.job("deleteDomain", id=team["id"], cleanup=True)
    assert (job["jobstatus"], job["jobresult"]) == (1, {"success": True})
    assert _names(boss.ok("listDomains", listall=True)) == {"dept"}
    assert "virtualmachine" not in boss.ok("listVirtualMachines", listall=True)
    assert worker_vm not in {v["id"] for v in admin.ok("listVirtualMachines", listall=True).get("virtualmachine", [])}
    assert {a["name"] for a in boss.ok("listAccounts")["account"]} == {"boss"}
    assert admin.ok("listAccounts", name="outsider")["count"] == 1
