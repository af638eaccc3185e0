"""Projects through the signed API: the lifecycle (create, list, update, activate, suspend, delete with
and without cleanup), members (add, list, remove), and "a project's members share its resources":
``projectid`` on deploy/list/start/stop/destroy of VMs, volumes, isolated networks, SSH key pairs,
tags, security groups, affinity and instance groups; non-members are refused (531) and see nothing;
hostile and out-of-order input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from hvcloud.server.db.models import Account, Project, VMInstance
from hvcloud.server.state import ServerState
from tests.support.network_setup import add_physical_network
from tests.support.server_api import Caller

PW = {"password": "s3cret-pw", "firstname": "F", "lastname": "L"}
UNKNOWN = "0b7e3c3e-0000-4000-8000-000000000000"


def _user(admin: Caller, username: str, **kw: Any) -> Caller:
    account = admin.ok("createAccount", username=username, accounttype=0, **PW, **kw)["account"]
    keys = admin.ok("registerUserKeys", id=account["user"][0]["id"])["userkeys"]
    return Caller(admin.http, keys["apikey"], keys["secretkey"])


@pytest.fixture
def team(admin: Caller) -> dict[str, Caller]:
    return {"alice": _user(admin, "alice"), "bob": _user(admin, "bob"), "eve": _user(admin, "eve")}


def _create(caller: Caller, name: str, **kw: Any) -> dict[str, Any]:
    answer = caller.ok("createProject", name=name, **kw)
    assert set(answer) == {"id", "jobid"}
    job = caller.wait(answer["jobid"])
    assert job["jobstatus"] == 1, job
    project: dict[str, Any] = job["jobresult"]["project"]
    assert project["id"] == answer["id"]
    return project


def _job_ok(caller: Caller, command: str, **kw: Any) -> dict[str, Any]:
    job = caller.job(command, **kw)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]  # type: ignore[no-any-return]


def _deploy(caller: Caller, cloud: dict[str, Any], name: str, **kw: Any) -> dict[str, Any]:
    job = caller.job("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                     zoneid=cloud["zoneid"], name=name, startvm="false", **kw)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _ids(answer: dict[str, Any], key: str) -> set[str]:
    return {item["id"] for item in answer.get(key, [])}


def test_project_lifecycle_and_errors(admin: Caller, team: dict[str, Caller]) -> None:
    alice = team["alice"]
    project = _create(alice, "apollo", displaytext="moon shot")
    assert project["name"] == "apollo" and project["displaytext"] == "moon shot" and project["state"] == "Active"
    assert project["domain"] == "ROOT" and project["owner"][0]["account"] == "alice"
    assert project["vmtotal"] == 0 and project["vmlimit"] == "20" and project["projectaccountname"]
    assert _create(alice, "gemini")["displaytext"] == "gemini"

    listed = alice.ok("listProjects")
    assert listed["count"] == 2 and {p["name"] for p in listed["project"]} == {"apollo", "gemini"}
    assert alice.ok("listProjects", name="apollo")["project"][0]["id"] == project["id"]
    assert alice.ok("listProjects", keyword="%") == {}
    assert team["bob"].ok("listProjects") == {}
    assert admin.ok("listProjects") == {}  # the admin is no member; listall shows all
    assert admin.ok("listProjects", listall="true")["count"] == 2
    # the project's account is no account anyone lists or manages
    assert all(not a["name"].startswith("PrjAcct-") for a in admin.ok("listAccounts", listall="true")["account"])

    # a name is unique in its domain among live projects
    status, body = alice.call("createProject", name="apollo")
    assert status == 431 and "already exists" in body["errortext"]
    assert team["bob"].call("createProject", name="apollo")[0] == 431

    updated = _job_ok(alice, "updateProject", id=project["id"], displaytext="v2", name="apollo-2")["project"]
    assert updated["displaytext"] == "v2" and updated["name"] == "apollo-2"

    suspended = _job_ok(alice, "suspendProject", id=project["id"])["project"]
    assert suspended["state"] == "Suspended"
    # suspending again is no error (CloudStack suspends again); activating twice neither
    assert _job_ok(alice, "suspendProject", id=project["id"])["project"]["state"] == "Suspended"
    assert _job_ok(alice, "activateProject", id=project["id"])["project"]["state"] == "Active"
    assert _job_ok(alice, "activateProject", id=project["id"])["project"]["state"] == "Active"

    # unknown and hostile ids
    for command in ("updateProject", "activateProject", "suspendProject", "deleteProject"):
        assert alice.call(command, id=UNKNOWN)[0] == 431
        assert alice.call(command, id="-1")[0] == 431
        assert alice.call(command, id="' OR 1=1 --")[0] == 431
    assert alice.call("listProjects", id="nope")[0] == 431
    assert alice.call("createProject", name="x" * 256)[0] == 431

    assert _job_ok(alice, "deleteProject", id=project["id"]) == {"success": True}
    assert alice.ok("listProjects", id=project["id"]) == {}
    assert alice.call("deleteProject", id=project["id"])[0] == 431  # delete twice
    assert alice.call("activateProject", id=project["id"])[0] == 431  # use after delete
    assert _create(alice, "apollo-2")["name"] == "apollo-2"  # the name is free again


def test_unicode_names_and_the_create_setting(admin: Caller, team: dict[str, Caller]) -> None:
    project = _create(team["alice"], "проект-🚀", displaytext="<script>alert(1)</script>")
    assert project["name"] == "проект-🚀" and project["displaytext"] == "<script>alert(1)</script>"
    admin.ok("updateConfiguration", name="allow.user.create.projects", value="false")
    status, body = team["bob"].call("createProject", name="blocked")
    assert status == 531 and body["errortext"] == "Regular user is not permitted to create a project"
    assert _create(admin, "by-admin")["owner"][0]["account"] == "admin"
    # an admin creates a project for an account: that account is its Admin
    made = _create(admin, "for-bob", account="bob", domainid=project["domainid"])
    assert made["owner"][0]["account"] == "bob"
    assert team["bob"].ok("listProjects")["project"][0]["id"] == made["id"]


def test_members_add_list_remove(admin: Caller, team: dict[str, Caller]) -> None:
    alice, bob, eve = team["alice"], team["bob"], team["eve"]
    project = _create(alice, "crew")
    pid = project["id"]
    assert _job_ok(alice, "addAccountToProject", projectid=pid, account="bob") == {"success": True}
    assert _job_ok(alice, "addAccountToProject", projectid=pid, account="bob") == {"success": True}  # again: no-op
    members = alice.ok("listProjectAccounts", projectid=pid)
    assert members["count"] == 2
    assert {(m["account"], m["role"]) for m in members["projectaccount"]} == {("alice", "Admin"), ("bob", "Regular")}
    assert bob.ok("listProjectAccounts", projectid=pid, role="Admin")["projectaccount"][0]["account"] == "alice"
    assert bob.ok("listProjects")["project"][0]["id"] == pid

    # a Regular member may not manage the project; a non-member neither, nor list its members
    assert bob.call("addAccountToProject", projectid=pid, account="eve")[0] == 531
    assert bob.call("suspendProject", id=pid)[0] == 531
    assert bob.call("deleteProject", id=pid)[0] == 531
    assert eve.call("listProjectAccounts", projectid=pid)[0] == 531
    assert eve.call("updateProject", id=pid, displaytext="mine")[0] == 531

    # bad input
    status, body = alice.call("addAccountToProject", projectid=pid, account="nobody")
    assert status == 431 and "Unable to find account name=nobody" in body["errortext"]
    assert alice.call("addAccountToProject", projectid=pid, account=project["projectaccountname"])[0] == 431
    assert alice.call("addAccountToProject", projectid=pid, account="eve", roletype="Boss")[0] == 431
    assert alice.call("addAccountToProject", projectid=pid, email="x@example.com")[0] == 431
    assert alice.call("addAccountToProject", projectid=UNKNOWN, account="eve")[0] == 431
    status, body = alice.call("deleteAccountFromProject", projectid=pid, account="eve")
    assert status == 431 and "not assigned" in body["errortext"]
    status, body = alice.call("deleteAccountFromProject", projectid=pid, account="alice")
    assert status == 431 and "owner of the project" in body["errortext"]

    # ownership moves to bob (swapowner: alice becomes Regular); then alice may be removed
    _job_ok(alice, "updateProject", id=pid, account="bob")
    roles = {m["account"]: m["role"] for m in bob.ok("listProjectAccounts", projectid=pid)["projectaccount"]}
    assert roles == {"alice": "Regular", "bob": "Admin"}
    assert alice.call("suspendProject", id=pid)[0] == 531
    assert _job_ok(bob, "deleteAccountFromProject", projectid=pid, account="alice") == {"success": True}
    assert alice.ok("listProjects") == {}
    # a suspended project takes no new members
    _job_ok(bob, "suspendProject", id=pid)
    status, body = bob.call("addAccountToProject", projectid=pid, account="eve")
    assert status == 431 and "no longer active" in body["errortext"]


def test_members_share_the_projects_vms(state: ServerState, admin: Caller, team: dict[str, Caller],
                                        cloud: dict[str, Any]) -> None:
    alice, bob, eve = team["alice"], team["bob"], team["eve"]
    pid = _create(alice, "shared")["id"]
    _job_ok(alice, "addAccountToProject", projectid=pid, account="bob")
    vm = _deploy(alice, cloud, "proj-vm", projectid=pid)
    own = _deploy(alice, cloud, "own-vm")
    assert vm["account"].startswith("PrjAcct-")

    # both members see it with projectid, not in their own lists
    for member in (alice, bob):
        assert _ids(member.ok("listVirtualMachines", projectid=pid), "virtualmachine") == {vm["id"]}
        assert _ids(member.ok("listVirtualMachines", projectid="-1"), "virtualmachine") == {vm["id"]}
        assert member.ok("listVirtualMachines", id=vm["id"]) == {}
    assert _ids(alice.ok("listVirtualMachines"), "virtualmachine") == {own["id"]}
    assert bob.ok("listVirtualMachines") == {}
    # the project counts what it owns
    assert alice.ok("listProjects", id=pid)["project"][0]["vmtotal"] == 1

    # a non-member is refused and sees nothing
    status, body = eve.call("listVirtualMachines", projectid=pid)
    assert status == 531 and "can't access project" in body["errortext"]
    assert eve.ok("listVirtualMachines", projectid="-1") == {}
    status, body = eve.call("deployVirtualMachine", serviceofferingid=cloud["offering"],
                            templateid=cloud["template"], zoneid=cloud["zoneid"], projectid=pid, startvm="false")
    assert status == 531 and "unauthorised to use project" in body["errortext"]
    assert eve.call("startVirtualMachine", id=vm["id"])[0] == 431
    assert eve.call("destroyVirtualMachine", id=vm["id"])[0] == 431
    assert eve.call("listVolumes", projectid=pid)[0] == 531

    # bob (a Regular member) manages alice's project VM: start (no host here: 533), update, destroy
    failed = bob.wait(bob.ok("startVirtualMachine", id=vm["id"])["jobid"])
    assert failed["jobstatus"] == 2 and failed["jobresult"]["errorcode"] == 533
    assert bob.ok("updateVirtualMachine", id=vm["id"], displayname="by-bob")["virtualmachine"]["displayname"] \
        == "by-bob"
    # a running project VM is stopped by a member, and by suspendProject
    with state.sessions.begin() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        row.state = "Running"
    assert _job_ok(bob, "stopVirtualMachine", id=vm["id"])["virtualmachine"]["state"] == "Stopped"
    with state.sessions.begin() as db:
        db.get(VMInstance, vm["id"]).state = "Running"  # type: ignore[union-attr]
    _job_ok(alice, "suspendProject", id=pid)
    assert alice.ok("listVirtualMachines", id=vm["id"], projectid=pid)["virtualmachine"][0]["state"] == "Stopped"
    # a suspended project takes no new resources
    status, body = alice.call("deployVirtualMachine", serviceofferingid=cloud["offering"],
                              templateid=cloud["template"], zoneid=cloud["zoneid"], projectid=pid, startvm="false")
    assert status == 531 and "no longer active" in body["errortext"]
    _job_ok(alice, "activateProject", id=pid)
    assert _job_ok(bob, "destroyVirtualMachine", id=vm["id"])["virtualmachine"]["state"] == "Destroyed"

    # the admin sees the project's VMs with projectid; a removed member no longer does
    assert _ids(admin.ok("listVirtualMachines", projectid=pid), "virtualmachine") == {vm["id"]}
    _job_ok(alice, "deleteAccountFromProject", projectid=pid, account="bob")
    assert bob.call("listVirtualMachines", projectid=pid)[0] == 531
    assert bob.call("updateVirtualMachine", id=vm["id"], displayname="gone")[0] == 431


def test_delete_with_resources_needs_cleanup(state: ServerState, team: dict[str, Caller],
                                             cloud: dict[str, Any]) -> None:
    alice = team["alice"]
    pid = _create(alice, "busy")["id"]
    vm = _deploy(alice, cloud, "busy-vm", projectid=pid)
    volume = alice.job("createVolume", projectid=pid, zoneid=cloud["zoneid"], name="data",
                       diskofferingid=alice.ok("listDiskOfferings", name="Small")["diskoffering"][0]["id"])
    assert volume["jobstatus"] == 1, volume
    assert _ids(alice.ok("listVolumes", projectid=pid, type="DATADISK"), "volume") \
        == {volume["jobresult"]["volume"]["id"]}

    failed = alice.job("deleteProject", id=pid)
    assert failed["jobstatus"] == 2 and failed["jobresult"]["errorcode"] == 530
    assert "Can't delete the project yet because it has 1 VirtualMachine to clean up" \
        in failed["jobresult"]["errortext"]
    assert alice.ok("listProjects", id=pid)["project"][0]["state"] == "Active"

    assert _job_ok(alice, "deleteProject", id=pid, cleanup="true") == {"success": True}
    assert alice.ok("listProjects") == {}
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None and row.removed is not None
        project = db.get(Project, pid)
        assert project is not None and project.removed is not None
        account = db.get(Account, project.project_account_id)
        assert account is not None and account.removed is not None
    assert alice.call("listVirtualMachines", projectid=pid)[0] == 431


def test_project_keys_tags_groups_and_networks(admin: Caller, team: dict[str, Caller],
                                               cloud: dict[str, Any]) -> None:
    alice, bob, eve = team["alice"], team["bob"], team["eve"]
    pid = _create(alice, "kit")["id"]
    _job_ok(alice, "addAccountToProject", projectid=pid, account="bob")

    pair = alice.ok("createSSHKeyPair", name="deploy", projectid=pid)["keypair"]
    assert pair["name"] == "deploy" and pair["privatekey"]
    assert [k["name"] for k in bob.ok("listSSHKeyPairs", projectid=pid)["sshkeypair"]] == ["deploy"]
    assert bob.ok("listSSHKeyPairs") == {}
    assert eve.call("listSSHKeyPairs", projectid=pid)[0] == 531
    assert eve.call("createSSHKeyPair", name="x", projectid=pid)[0] == 531

    group = alice.job("createAffinityGroup", name="spread", type="host anti-affinity", projectid=pid)
    assert group["jobstatus"] == 1, group
    assert [g["name"] for g in bob.ok("listAffinityGroups", projectid=pid)["affinitygroup"]] == ["spread"]
    ig = bob.ok("createInstanceGroup", name="web", projectid=pid)["instancegroup"]
    assert _ids(alice.ok("listInstanceGroups", projectid=pid), "instancegroup") == {ig["id"]}
    assert eve.call("deleteInstanceGroup", id=ig["id"])[0] == 431
    sg = alice.ok("createSecurityGroup", name="web-sg", projectid=pid)["securitygroup"]
    assert sg["name"] == "web-sg" and sg["id"] in _ids(bob.ok("listSecurityGroups", projectid=pid), "securitygroup")
    assert eve.call("listSecurityGroups", projectid=pid)[0] == 531

    vm = _deploy(bob, cloud, "tagged", projectid=pid, keypair="deploy")
    tagged = alice.job("createTags", resourcetype="UserVm", resourceids=vm["id"],
                       **{"tags[0].key": "tier", "tags[0].value": "web"})
    assert tagged["jobstatus"] == 1, tagged
    assert [t["value"] for t in bob.ok("listTags", projectid=pid)["tag"]] == ["web"]
    assert eve.call("listTags", projectid=pid)[0] == 531
    assert eve.ok("listTags") == {}
    assert alice.ok("listTags") == {}

    admin.ok("updateZone", id=cloud["zoneid"], allocationstate="Enabled")
    add_physical_network(admin, cloud["zoneid"], method="VXLAN", vlan="5000-5099")
    offering = admin.ok("listNetworkOfferings", name="DefaultIsolatedNetworkOfferingWithSourceNatService")
    offering_id = offering["networkoffering"][0]["id"]
    status, body = bob.call("createNetwork", name="proj-net", displaytext="proj-net", zoneid=cloud["zoneid"],
                            networkofferingid=offering_id, projectid=pid)
    assert status == 200, body
    net = body["network"]
    assert _ids(alice.ok("listNetworks", projectid=pid), "network") == {net["id"]}
    assert net["id"] not in _ids(alice.ok("listNetworks"), "network")
    assert eve.call("listNetworks", projectid=pid)[0] == 531
    assert eve.call("createNetwork", name="n", displaytext="n", zoneid=cloud["zoneid"],
                    networkofferingid=offering_id, projectid=pid)[0] == 531


@pytest.mark.parametrize("value", ["-1", UNKNOWN, "x' OR '1'='1", "\u202e\u0000"])
def test_hostile_projectid_on_resource_commands(team: dict[str, Caller], value: str) -> None:
    alice = team["alice"]
    status, _ = alice.call("createSSHKeyPair", name="k", projectid=value)
    assert status == 431
    if value != "-1":
        assert alice.call("listSSHKeyPairs", projectid=value)[0] == 431
        assert alice.call("listVirtualMachines", projectid=value)[0] == 431
    assert alice.call("listProjectAccounts", projectid=value)[0] == 431


def test_domain_admin_reaches_projects_of_its_subtree(admin: Caller, team: dict[str, Caller],
                                                     state: ServerState) -> None:
    root = admin.ok("listDomains", name="ROOT")["domain"][0]["id"]
    sub = admin.ok("createDomain", name="sub", parentdomainid=root)["domain"]["id"]
    dadmin = _user(admin, "dadmin", domainid=sub)
    with state.sessions.begin() as db:
        account = db.scalar(select(Account).where(Account.name == "dadmin"))
        assert account is not None
        account.account_type = 2
    inside = _create(_user(admin, "carol", domainid=sub), "inside")
    outside = _create(team["alice"], "outside")
    assert _ids(dadmin.ok("listProjects", listall="true"), "project") == {inside["id"]}
    assert _job_ok(dadmin, "suspendProject", id=inside["id"])["project"]["state"] == "Suspended"
    assert dadmin.call("suspendProject", id=outside["id"])[0] == 531
    assert dadmin.call("listVirtualMachines", projectid=outside["id"])[0] == 531


def test_removed_accounts_and_domains_take_their_projects_along(admin: Caller, team: dict[str, Caller]) -> None:
    alice = team["alice"]
    pid = _create(alice, "left")["id"]
    _job_ok(alice, "addAccountToProject", projectid=pid, account="bob")
    bob_id = admin.ok("listAccounts", name="bob")["account"][0]["id"]
    assert admin.job("deleteAccount", id=bob_id)["jobstatus"] == 1
    assert [m["account"] for m in alice.ok("listProjectAccounts", projectid=pid)["projectaccount"]] == ["alice"]

    root = admin.ok("listDomains", name="ROOT")["domain"][0]["id"]
    sub = admin.ok("createDomain", name="gone", parentdomainid=root)["domain"]["id"]
    inside = _create(_user(admin, "dave", domainid=sub), "doomed")
    failed = admin.job("deleteDomain", id=sub)
    assert failed["jobstatus"] == 2  # the domain holds an account (and the project's)
    assert admin.job("deleteDomain", id=sub, cleanup="true")["jobstatus"] == 1
    assert admin.ok("listProjects", listall="true", id=inside["id"]) == {}
    assert admin.call("listVirtualMachines", projectid=inside["id"])[0] == 431
