"""Resource tags through the signed API: createTags/deleteTags/listTags with CloudStack's shapes and
codes, the ``tags`` of each taggable resource and the ``tags[i].key/value`` list filters, hostile and
out-of-order input (nothing changed afterwards), who may tag what, and no tag outliving its resource."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hvcloud.server.db.models import ResourceTag, TemplateStoreRef, VMTemplate
from hvcloud.server.orchestration.networks import routing
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from tests.support.router_world import RouterHosts, World, build_world
from tests.support.server_api import Caller, build_zone, ready_template


@pytest.fixture
def cloud(state: ServerState, admin: Caller) -> dict[str, Any]:
    ids = build_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"])
        owner_id = template.account_id
        iso = VMTemplate(name="boot", display_text="boot", format="ISO", is_iso=True, account_id=owner_id,
                         is_public=True)
        db.add(iso)
        db.flush()
        db.add(TemplateStoreRef(template_id=iso.id, zone_id=ids["zoneid"], download_state="DOWNLOADED",
                                install_path="iso/boot.iso", size=1 << 20))
        template_id, iso_id = template.id, iso.id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template_id, "iso": iso_id, "offering": offering}


def _vm(caller: Caller, cloud: dict[str, Any], name: str) -> str:
    job = caller.job("deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
                     zoneid=cloud["zoneid"], startvm="false", name=name)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]["id"]  # type: ignore[no-any-return]


def _tags(**pairs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, (key, value) in enumerate(pairs.items()):
        out[f"tags[{i}].key"], out[f"tags[{i}].value"] = key, value
    return out


def _create(caller: Caller, resource_type: str, ids: list[str], **tags: str) -> dict[str, Any]:
    """createTags: CloudStack's async answer (a jobid) and its job's result."""
    answer = caller.ok("createTags", resourcetype=resource_type, resourceids=",".join(ids), **_tags(**tags))
    assert set(answer) == {"jobid"}
    return caller.wait(answer["jobid"])


def _rows(state: ServerState) -> list[tuple[str, str, str, str]]:
    with state.sessions() as db:
        return sorted((r.resource_type, r.resource_id, r.key, r.value) for r in db.scalars(select(ResourceTag)))


def _pairs(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["key"], t["value"]) for t in obj["tags"]]


# ---------------------------------------------------------------------- create, list, delete


def test_tag_lifecycle_on_vms(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    web, db_vm = _vm(admin, cloud, "web"), _vm(admin, cloud, "db")
    job = _create(admin, "userVM", [web, db_vm], env="prod", team="blue")  # type name in any case
    assert job["jobstatus"] == 1 and job["jobresult"] == {"success": True} and job["cmd"] == "createTags"

    listed = admin.ok("listTags")
    assert listed["count"] == 4
    tag = next(t for t in listed["tag"] if t["resourceid"] == web and t["key"] == "env")
    domain = admin.ok("listDomains")["domain"][0]
    assert tag == {"key": "env", "value": "prod", "resourcetype": "UserVm", "resourceid": web, "account": "admin",
                   "domainid": domain["id"], "domain": "ROOT"}
    assert admin.ok("listTags", resourceid=web)["count"] == 2
    assert admin.ok("listTags", key="team", value="blue")["count"] == 2
    assert admin.ok("listTags", resourcetype="uservm", key="env")["count"] == 2
    assert admin.ok("listTags", resourcetype="Volume") == {}
    status, body = admin.call("listTags", resourcetype="Planet")
    assert status == 431 and body["errortext"] == "Invalid resource type Planet"
    events = admin.ok("listEvents", type="CREATE_TAGS")["event"]
    assert events and events[0]["type"] == "CREATE_TAGS"
    assert admin.ok("listTags", keyword="lu")["count"] == 2 and admin.ok("listTags", keyword="%") == {}
    page = admin.ok("listTags", page="2", pagesize="3")
    assert page["count"] == 4 and len(page["tag"]) == 1

    # the VM's own answers carry its tags; the tags filter wants them all
    shown = admin.ok("listVirtualMachines", id=web)["virtualmachine"][0]
    assert _pairs(shown) == [("env", "prod"), ("team", "blue")]
    assert shown["tags"][0]["resourcetype"] == "UserVm" and shown["tags"][0]["account"] == "admin"
    assert _create(admin, "UserVm", [db_vm], role="db")["jobstatus"] == 1
    both = admin.ok("listVirtualMachines", **_tags(env="prod"))
    assert both["count"] == 2
    only_db = admin.ok("listVirtualMachines", **_tags(env="prod", role="db"))
    assert [v["id"] for v in only_db["virtualmachine"]] == [db_vm]
    assert admin.ok("listVirtualMachines", **_tags(env="staging")) == {}
    assert admin.ok("listVirtualMachines", **{"tags[0].key": "role"})["count"] == 1  # a key alone: any value
    updated = admin.ok("updateVirtualMachine", id=db_vm, displayname="database")["virtualmachine"]
    assert ("role", "db") in _pairs(updated)

    # delete: given keys (any case, as CloudStack), a key with a value, or all of the resources' tags
    assert admin.job("deleteTags", resourcetype="UserVm", resourceids=db_vm, **{"tags[0].key": "ROLE"})[
        "jobresult"] == {"success": True}
    assert admin.ok("listTags", resourceid=db_vm)["count"] == 2
    status, body = admin.call("deleteTags", resourcetype="UserVm", resourceids=web, **_tags(env="staging"))
    assert status == 530 and body["errortext"] == "Failed to delete tags"  # nothing matched: CloudStack fails
    assert admin.job("deleteTags", resourcetype="UserVm", resourceids=web, **_tags(env="PROD"))["jobstatus"] == 1
    assert admin.job("deleteTags", resourcetype="UserVm", resourceids=f"{web},{db_vm}")["jobstatus"] == 1
    assert admin.ok("listTags") == {} and _rows(state) == []
    assert admin.ok("listVirtualMachines", id=web)["virtualmachine"][0]["tags"] == []


def test_every_taggable_type_shows_its_tags(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    vm = _vm(admin, cloud, "one")
    volume = admin.ok("listVolumes", virtualmachineid=vm)["volume"][0]["id"]
    group = admin.ok("createSecurityGroup", name="web")["securitygroup"]["id"]
    for kind, rid in (("Volume", volume), ("Template", cloud["template"]), ("ISO", cloud["iso"]),
                      ("SecurityGroup", group)):
        assert _create(admin, kind, [rid], owner=kind.lower())["jobstatus"] == 1
    assert _pairs(admin.ok("listVolumes", id=volume)["volume"][0]) == [("owner", "volume")]
    assert admin.ok("listVolumes", **_tags(owner="volume"))["count"] == 1
    assert admin.ok("listVolumes", **_tags(owner="template")) == {}
    template = admin.ok("listTemplates", templatefilter="all", id=cloud["template"])["template"][0]
    assert _pairs(template) == [("owner", "template")]
    assert admin.ok("listTemplates", templatefilter="all", **_tags(owner="template"))["count"] == 1
    assert admin.ok("listTemplates", templatefilter="all", **_tags(owner="iso")) == {}
    iso = admin.ok("listIsos", isofilter="all", id=cloud["iso"])["iso"][0]
    assert _pairs(iso) == [("owner", "iso")] and iso["tags"][0]["resourcetype"] == "ISO"
    assert admin.ok("listIsos", isofilter="all", **_tags(owner="iso"))["count"] == 1
    listed = admin.ok("listSecurityGroups", **_tags(owner="securitygroup"))["securitygroup"]
    assert [g["id"] for g in listed] == [group] and _pairs(listed[0]) == [("owner", "securitygroup")]
    assert admin.ok("listSecurityGroups", **_tags(owner="nobody")) == {}
    # an ISO is not a template: the type must match the resource
    status, body = admin.call("createTags", resourcetype="Template", resourceids=cloud["iso"], **_tags(a="b"))
    assert status == 431 and f"Unable to find resource by uuid {cloud['iso']} and type Template" in body["errortext"]


@pytest.mark.parametrize("params, code, text", [
    ({"resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": "v"}, 431, "resourceids"),
    ({"resourceids": "VM", "tags[0].key": "k", "tags[0].value": "v"}, 431, "resourcetype"),
    ({"resourceids": "VM", "resourcetype": "UserVm"}, 431, "tags"),
    ({"resourceids": "VM", "resourcetype": "Planet", "tags[0].key": "k", "tags[0].value": "v"}, 431,
     "Invalid resource type Planet"),
    ({"resourceids": "VM", "resourcetype": "zone", "tags[0].key": "k", "tags[0].value": "v"}, 431,
     "The resource type Zone doesn't support resource tags"),
    ({"resourceids": "VM", "resourcetype": "Snapshot", "tags[0].key": "k", "tags[0].value": "v"}, 431,
     "and type Snapshot"),
    ({"resourceids": "00000000-0000-4000-8000-000000000000", "resourcetype": "UserVm", "tags[0].key": "k",
      "tags[0].value": "v"}, 431, "Unable to find resource by uuid 00000000-0000-4000-8000-000000000000"),
    ({"resourceids": "VM,'; drop table resource_tag; --", "resourcetype": "UserVm", "tags[0].key": "k",
      "tags[0].value": "v"}, 431, "Unable to find resource"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k"}, 431, "Value for the key k is either null"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": ""}, 431,
     "Value for the key k"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": " ", "tags[0].value": "v"}, 431, "empty"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k" * 256, "tags[0].value": "v"}, 431,
     "255"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": "v" * 256}, 431, "255"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": "v",
      "customer": "c" * 256}, 431, "customer"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": "a\x07b"}, 431, ""),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[x].key": "k"}, 430, "Malformed map parameter"),
    ({"resourceids": "VM", "resourcetype": "UserVm", "tags[0].key": "k", "tags[0].value": "v",
      "projectid": "00000000-0000-4000-8000-000000000000"}, 200, ""),  # CloudStack's createTags has no projectid
])
def test_create_refusals_change_nothing(state: ServerState, admin: Caller, cloud: dict[str, Any],
                                        params: dict[str, str], code: int, text: str) -> None:
    vm = _vm(admin, cloud, "t")
    params = {k: v.replace("VM", vm) for k, v in params.items()}
    status, body = admin.call("createTags", **params)
    assert status == code, body
    if code != 200:
        assert text in body["errortext"] and _rows(state) == []


def test_duplicate_keys_and_hostile_text(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    vm = _vm(admin, cloud, "dup")
    hostile = {"<script>alert(1)</script>": "'; DROP TABLE vm_instance; --", "ключ": "значение 🎉",
               "a%_\\": "%"}
    pairs = {f"tags[{i}].{f}": v for i, (k, val) in enumerate(hostile.items()) for f, v in (("key", k), ("value", val))}
    answer = admin.ok("createTags", resourcetype="UserVm", resourceids=vm, customer="acme", **pairs)
    assert admin.wait(answer["jobid"])["jobstatus"] == 1
    shown = admin.ok("listTags", resourceid=vm)["tag"]
    assert {t["key"]: t["value"] for t in shown} == hostile and all(t["customer"] == "acme" for t in shown)
    assert admin.ok("listTags", key="a%_\\")["count"] == 1 and admin.ok("listTags", keyword="%_")["count"] == 1
    assert admin.ok("listTags", customer="acme")["count"] == 3 and admin.ok("listTags", customer="x") == {}
    assert admin.ok("listVirtualMachines", **_tags(ключ="значение 🎉"))["count"] == 1
    # the same key again, alone or among new ones: CloudStack's runtime error, nothing written
    before = _rows(state)
    for tags in ({"ключ": "other"}, {"fresh": "1", "ключ": "x"}):
        pairs = {f"tags[{i}].{f}": v for i, (k, val) in enumerate(tags.items()) for f, v in (("key", k),
                                                                                                 ("value", val))}
        status, body = admin.call("createTags", resourcetype="UserVm", resourceids=vm, **pairs)
        assert status == 530 and f"tag ключ already on UserVm with id {vm}" in body["errortext"], body
    assert _rows(state) == before


def test_oversized_calls_are_refused(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    vm = _vm(admin, cloud, "big")
    ids = ",".join([vm] * 1700)  # one id, named 1700 times: deduplicated, then tagged once per key
    pairs = {f"tags[{i}].{f}": f"{f}{i}" for i in range(6) for f in ("key", "value")}
    resp = admin.raw({"command": "createTags", "response": "json", "resourcetype": "UserVm", "resourceids": ids,
                      **pairs}, method="POST")
    assert resp.status_code == 200, resp.text
    assert admin.wait(resp.json()["createtagsresponse"]["jobid"])["jobstatus"] == 1
    assert admin.ok("listTags")["count"] == 6
    assert admin.call("listTags", pagesize="501", page="1")[0] == 431
    resp = admin.raw({"command": "createTags", "response": "json", "resourcetype": "UserVm", "resourceids": "x" * 70000,
                      **_tags(a="b")}, method="POST")
    assert resp.status_code == 431 and "too long" in next(iter(resp.json().values()))["errortext"]
    many = {f"tags[{i}].{f}": f"{f}{i}" for i in range(200) for f in ("key", "value")}
    resp = admin.raw({"command": "createTags", "response": "json", "resourcetype": "UserVm",
                      "resourceids": ",".join(_vm(admin, cloud, f"m{i}") for i in range(51)), **many}, method="POST")
    assert resp.status_code == 431 and "at most 10000 tags" in resp.json()["createtagsresponse"]["errortext"]
    assert admin.ok("listTags")["count"] == 6


# ---------------------------------------------------------------------- who may tag what


def test_users_tag_only_their_own_resources(state: ServerState, admin: Caller, user_caller: Caller,
                                            cloud: dict[str, Any]) -> None:
    mine, theirs = _vm(user_caller, cloud, "mine"), _vm(admin, cloud, "theirs")
    assert _create(user_caller, "UserVm", [mine], env="dev")["jobstatus"] == 1
    assert _create(admin, "UserVm", [theirs], env="prod")["jobstatus"] == 1
    before = _rows(state)

    # another account's VM, alone or among the caller's own: 531, nothing written
    for ids in ([theirs], [mine, theirs]):
        status, body = user_caller.call("createTags", resourcetype="UserVm", resourceids=",".join(ids),
                                        **_tags(x="y"))
        assert status == 531 and "doesn't have permissions" in body["errortext"], body
    # a public template of the admin: users may use it, not tag it
    status, _ = user_caller.call("createTags", resourcetype="Template", resourceids=cloud["template"], **_tags(x="y"))
    assert status == 531
    status, _ = user_caller.call("deleteTags", resourcetype="UserVm", resourceids=theirs)
    assert status == 531
    assert _rows(state) == before

    # each sees its own tags and resources only; listall and account names change nothing for users
    assert [t["resourceid"] for t in user_caller.ok("listTags", listall="true")["tag"]] == [mine]
    assert user_caller.ok("listTags", resourceid=theirs) == {}
    assert user_caller.ok("listVirtualMachines", **_tags(env="prod")) == {}
    status, _ = user_caller.call("listTags", account="admin", domainid=admin.ok("listDomains")["domain"][0]["id"])
    assert status == 531
    assert user_caller.call("listTags", projectid="00000000-0000-4000-8000-000000000000")[0] == 431

    # the root admin sees and changes everyone's
    assert admin.ok("listTags")["count"] == 1 and admin.ok("listTags", listall="true")["count"] == 2
    domain = admin.ok("listDomains")["domain"][0]["id"]
    assert [t["account"] for t in admin.ok("listTags", account="alice", domainid=domain)["tag"]] == ["alice"]
    assert _create(admin, "UserVm", [mine], reviewed="yes")["jobstatus"] == 1
    reviewed = user_caller.ok("listTags", key="reviewed")["tag"][0]
    assert reviewed["account"] == "alice", "a tag belongs to its resource's owner, whoever wrote it"
    assert admin.job("deleteTags", resourcetype="UserVm", resourceids=mine)["jobstatus"] == 1
    assert user_caller.ok("listTags") == {}


# ---------------------------------------------------------------------- no tag outlives its resource


def test_tags_go_with_their_resources(state: ServerState, admin: Caller, user_caller: Caller,
                                      cloud: dict[str, Any]) -> None:
    vm, kept = _vm(admin, cloud, "gone"), _vm(admin, cloud, "kept")
    root = admin.ok("listVolumes", virtualmachineid=vm)["volume"][0]["id"]
    disk = admin.ok("listDiskOfferings", name="Small")["diskoffering"][0]["id"]
    data = admin.job("createVolume", diskofferingid=disk, zoneid=cloud["zoneid"], name="d")["jobresult"]["volume"]
    group = admin.ok("createSecurityGroup", name="temp")["securitygroup"]["id"]
    for kind, rid in (("UserVm", vm), ("UserVm", kept), ("Volume", root), ("Volume", data["id"]),
                      ("SecurityGroup", group)):
        assert _create(admin, kind, [rid], a="1", b="2")["jobstatus"] == 1

    assert admin.job("destroyVirtualMachine", id=vm, expunge="true")["jobstatus"] == 1
    assert admin.ok("deleteVolume", id=data["id"]) == {"success": "true"}
    assert admin.ok("deleteSecurityGroup", id=group) == {"success": "true"}
    assert {r[1] for r in _rows(state)} == {kept}

    # a removed account's tags go with it
    mine = _vm(user_caller, cloud, "mine")
    assert _create(user_caller, "UserVm", [mine], a="1")["jobstatus"] == 1
    account = admin.ok("listAccounts", name="alice")["account"][0]["id"]
    assert admin.job("deleteAccount", id=account)["jobstatus"] == 1
    assert {r[1] for r in _rows(state)} == {kept}


# ---------------------------------------------------------------------- network objects


@pytest.fixture
def world(state: ServerState, http: TestClient) -> World:
    w = build_world(state, agents=RouterHosts())
    assert state.jobs is not None
    state.jobs.agents = w.agents
    w.public_range()
    return w


def _ok_job(caller: Caller, command: str, **params: Any) -> dict[str, Any]:
    job = caller.wait(caller.ok(command, **params)["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]  # type: ignore[no-any-return]


def test_network_addresses_and_rules_take_tags(state: ServerState, world: World, admin: Caller) -> None:
    net = world.network(offering=world.full_offering())
    vm = world.vm(net)
    asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    world.set_vm_state(vm, S.RUNNING)
    ip = _ok_job(admin, "associateIpAddress", networkid=net)["ipaddress"]["id"]
    pf = _ok_job(admin, "createPortForwardingRule", ipaddressid=ip, protocol="TCP", publicport=2222, privateport=22,
                 virtualmachineid=vm)["portforwardingrule"]["id"]
    fw = _ok_job(admin, "createFirewallRule", ipaddressid=ip, protocol="TCP", startport=443, endport=443,
                 cidrlist="0.0.0.0/0")["firewallrule"]["id"]
    egress = _ok_job(admin, "createEgressFirewallRule", networkid=net, protocol="TCP", startport=80,
                     endport=80)["firewallrule"]["id"]
    lb = _ok_job(admin, "createLoadBalancerRule", publicipid=ip, name="lb", algorithm="roundrobin", publicport=80,
                 privateport=8080)["loadbalancer"]["id"]
    for kind, rid in (("Network", net), ("PublicIpAddress", ip), ("PortForwardingRule", pf), ("FirewallRule", fw),
                      ("FirewallRule", egress), ("LoadBalancer", lb)):
        assert _create(admin, kind, [rid], kind=kind.lower())["jobstatus"] == 1
    status, _ = admin.call("createTags", resourcetype="LoadBalancer", resourceids=pf, **_tags(x="y"))
    assert status == 431, "a port forward is not a load balancer"

    def one(command: str, key: str, value: str, **kw: Any) -> dict[str, Any]:
        page = admin.ok(command, listall="true", **kw, **_tags(kind=value))
        assert page["count"] == 1, (command, page)
        assert admin.ok(command, listall="true", **kw, **_tags(kind="none")) == {}
        return page[key][0]  # type: ignore[no-any-return]

    assert one("listNetworks", "network", "network")["id"] == net
    assert _pairs(one("listPublicIpAddresses", "publicipaddress", "publicipaddress")) == [
        ("kind", "publicipaddress")]
    assert one("listPortForwardingRules", "portforwardingrule", "portforwardingrule")["id"] == pf
    assert one("listFirewallRules", "firewallrule", "firewallrule")["id"] == fw
    assert one("listEgressFirewallRules", "firewallrule", "firewallrule")["id"] == egress
    assert _pairs(one("listLoadBalancerRules", "loadbalancerrule", "loadbalancer")) == [("kind", "loadbalancer")]

    # deleting a rule, releasing the address (and its rules), deleting the network: their tags go
    assert _ok_job(admin, "deleteFirewallRule", id=fw) == {"success": True}
    assert _ok_job(admin, "deleteEgressFirewallRule", id=egress) == {"success": True}
    assert _ok_job(admin, "disassociateIpAddress", id=ip) == {"success": True}
    with state.sessions() as db:
        left = {(r.resource_type, r.resource_id) for r in db.scalars(select(ResourceTag))}
        assert left == {("Network", net)}
        assert db.scalar(select(func.count()).select_from(ResourceTag)) == 1
