"""Security groups through the signed API on a Basic zone (CloudStack's wizard, ``build_basic_zone``):
groups, rules, memberships on deploy, CloudStack's refusals (nothing changed, the field named), and
the ``SecurityGroupRulesCmd`` the jobs send to the hosts of Running VMs (``tests.support.sg_hosts``)."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from hvcloud.server.db.models import (
    Account,
    Cluster,
    Host,
    Nic,
    SecurityGroup,
    SecurityGroupVmMap,
    TemplateStoreRef,
    VMInstance,
    VmRulesetLog,
    VMTemplate,
)
from hvcloud.server.orchestration.networks import nics, sg_sync
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.orchestration.vm.steps import StepFailed, Steps
from hvcloud.server.state import ServerState
from hvcloud.wire import commands as C
from hvcloud.wire.security_groups import SecurityGroupRulesCmd
from tests.support.network_setup import build_basic_zone, offering_id
from tests.support.server_api import Caller, build_zone, ready_template
from tests.support.sg_hosts import SgHosts
from tests.unit.server.network_checks import refused


@pytest.fixture
def hosts(state: ServerState, http: TestClient) -> SgHosts:
    agents = SgHosts()
    assert state.jobs is not None
    state.jobs.agents = agents  # the engine's jobs send to these hosts
    return agents


@pytest.fixture
def cloud(state: ServerState, admin: Caller, user_caller: Caller, hosts: SgHosts) -> dict[str, Any]:
    ids = build_basic_zone(admin)
    with state.sessions.begin() as db:
        template = ready_template(db, ids["zoneid"])
        cluster = db.get(Cluster, ids["clusterid"])
        assert cluster is not None
        host_ids = []
        for i in range(2):
            host = Host(name=f"kvm{i}", guid=f"sg-g{i}", zone_id=ids["zoneid"], pod_id=ids["podid"],
                        cluster_id=cluster.id, status="Up", hypervisor="Simulator", url=f"http://10.0.0.{i + 1}")
            db.add(host)
            db.flush()
            host_ids.append(host.id)
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    return {**ids, "template": template.id, "offering": offering, "hosts": host_ids}


def _deploy(caller: Caller, cloud: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    params = {"serviceofferingid": cloud["offering"], "templateid": cloud["template"], "zoneid": cloud["zoneid"],
              "startvm": "false", **kw}
    return caller.call("deployVirtualMachine", **params)


def _vm(caller: Caller, cloud: dict[str, Any], **kw: Any) -> dict[str, Any]:
    status, body = _deploy(caller, cloud, **kw)
    assert status == 200, body
    job = caller.wait(body["jobid"])
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["virtualmachine"]  # type: ignore[no-any-return]


def _running(state: ServerState, vm_id: str, host_id: str) -> None:
    """The VM as the VM manager leaves it after a start on ``host_id``."""
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, vm_id)
        assert vm is not None
        vm.state, vm.host_id = S.RUNNING, host_id


def _name(state: ServerState, vm: dict[str, Any]) -> str:
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        return row.instance_name


def _group(caller: Caller, name: str, **kw: Any) -> dict[str, Any]:
    return caller.ok("createSecurityGroup", name=name, **kw)["securitygroup"]  # type: ignore[no-any-return]


def _mac(state: ServerState, vm_id: str) -> str:
    with state.sessions() as db:
        return db.scalars(select(Nic.mac_address).where(Nic.vm_id == vm_id)).one()


def _ingress(caller: Caller, **params: Any) -> dict[str, Any]:
    job = caller.job("authorizeSecurityGroupIngress", **params)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["securitygroup"]  # type: ignore[no-any-return]


def _entries(command: SecurityGroupRulesCmd, egress: bool = False) -> list[tuple[str, int, int, list[str]]]:
    rules = command.egressRuleSet if egress else command.ingressRuleSet
    return [(r.proto or "", r.startPort or 0, r.endPort or 0, list(r.allowedCidrs or [])) for r in rules or []]


# ---------------------------------------------------------------------- groups


def test_groups_are_created_listed_and_deleted_as_cloudstack(state: ServerState, user_caller: Caller,
                                                             admin: Caller, cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web", description="web servers")
    assert {k: web[k] for k in ("name", "description", "account", "domain")} == \
        {"name": "web", "description": "web servers", "account": "alice", "domain": "ROOT"}
    assert web["ingressrule"] == [] and web["egressrule"] == [] and web["virtualmachinecount"] == 0
    assert [g["name"] for g in user_caller.ok("listSecurityGroups")["securitygroup"]] == ["web"]
    _vm(user_caller, cloud)
    listed = user_caller.ok("listSecurityGroups")
    # (listed by creation time, then name: both orders occur when a second ticks between the two)
    assert sorted(g["name"] for g in listed["securitygroup"]) == ["default", "web"], "the default group is made on need"
    default = next(g for g in listed["securitygroup"] if g["name"] == "default")
    assert default["description"] == "Default Security Group" and default["ingressrule"] == []
    assert user_caller.ok("listSecurityGroups", securitygroupname="web")["securitygroup"][0]["id"] == web["id"]
    assert user_caller.ok("listSecurityGroups", id=web["id"])["count"] == 1
    assert user_caller.ok("listSecurityGroups", keyword="serv")["securitygroup"][0]["id"] == web["id"]
    assert user_caller.ok("listSecurityGroups", keyword="%") == {}
    assert "alice" not in {g["account"] for g in admin.ok("listSecurityGroups").get("securitygroup", [])}
    _group(admin, "ops")
    assert {g["account"] for g in admin.ok("listSecurityGroups", listall=True)["securitygroup"]} == {"alice", "admin"}
    assert {g["account"] for g in admin.ok("listSecurityGroups")["securitygroup"]} == {"admin"}
    # an admin acts for an account
    with state.sessions() as db:
        alice = db.scalars(select(Account).where(Account.name == "alice")).one()
    made = _group(admin, "db", account="alice", domainid=alice.domain_id)
    assert made["account"] == "alice"
    assert user_caller.ok("deleteSecurityGroup", name="db")["success"] == "true"
    assert user_caller.ok("deleteSecurityGroup", id=web["id"])["success"] == "true"
    assert [g["name"] for g in user_caller.ok("listSecurityGroups")["securitygroup"]] == ["default"]
    # naming the default group makes it too (authorizeSecurityGroupIngress securitygroupname=default)
    shown = _ingress(admin, securitygroupname="default", protocol="tcp", startport=22, endport=22,
                     cidrlist="0.0.0.0/0")
    assert shown["name"] == "default" and shown["account"] == "admin"


def test_group_refusals_change_nothing(state: ServerState, user_caller: Caller, admin: Caller,
                                       cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    other = _group(admin, "admins-only")
    _vm(user_caller, cloud, securitygroupnames="web")
    default = _vm(user_caller, cloud)["securitygroup"][0]
    refused(state, user_caller, "createSecurityGroup", name="web", field="already exists")
    refused(state, user_caller, "createSecurityGroup", name="WEB", field="already exists")
    refused(state, user_caller, "createSecurityGroup", name="default", field="already exists")
    refused(state, user_caller, "createSecurityGroup", name="   ", field="name")
    refused(state, user_caller, "createSecurityGroup", name="x" * 256, field="name")
    refused(state, user_caller, "createSecurityGroup", name="p", projectid=web["id"], field="projectid")
    refused(state, user_caller, "deleteSecurityGroup", id=default["id"], field="default is reserved")
    refused(state, user_caller, "deleteSecurityGroup", name="default", field="default is reserved")
    refused(state, user_caller, "deleteSecurityGroup", id=other["id"], field="id")  # another account's
    refused(state, user_caller, "deleteSecurityGroup", name="nope", field="name")
    refused(state, user_caller, "deleteSecurityGroup", field="id")
    refused(state, user_caller, "deleteSecurityGroup", id=web["id"], name="web", field="mutually exclusive")
    refused(state, user_caller, "deleteSecurityGroup", id="not-a-uuid", field="id")
    # a group another group's rule allows is in use (536)
    _ingress(user_caller, securitygroupid=default["id"], protocol="tcp", startport=22, endport=22,
             **{"usersecuritygrouplist[0].account": "alice", "usersecuritygrouplist[0].group": "web"})
    refused(state, user_caller, "deleteSecurityGroup", id=web["id"], code=536, field="allow this group")
    # a group with VMs is in use (536)
    solo = _group(user_caller, "solo")
    _vm(user_caller, cloud, securitygroupids=solo["id"])
    refused(state, user_caller, "deleteSecurityGroup", id=solo["id"], code=536, field="in use by virtual machines")


# ---------------------------------------------------------------------- rules


def test_rules_are_authorized_listed_and_revoked(state: ServerState, user_caller: Caller,
                                                 cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    _group(user_caller, "lb")
    shown = _ingress(user_caller, securitygroupid=web["id"], protocol="TCP", startport=80, endport=443,
                     cidrlist="0.0.0.0/0,10.0.0.5/8")
    assert sorted((r["protocol"], r["startport"], r["endport"], r["cidr"]) for r in shown["ingressrule"]) == \
        [("tcp", 80, 443, "0.0.0.0/0"), ("tcp", 80, 443, "10.0.0.0/8")], "one rule per CIDR, in network form"
    icmp = _ingress(user_caller, securitygroupname="web", protocol="icmp", icmptype=-1, icmpcode=-1,
                    cidrlist="192.0.2.0/24")["ingressrule"]
    assert [(r["protocol"], r["icmptype"], r["icmpcode"]) for r in icmp] == [("icmp", -1, -1)]
    assert "startport" not in icmp[0]
    by_group = _ingress(user_caller, securitygroupid=web["id"], protocol="udp", startport=0, endport=0,
                        **{"usersecuritygrouplist[0].account": "alice", "usersecuritygrouplist[0].group": "lb"})
    [rule] = by_group["ingressrule"]
    assert (rule["startport"], rule["endport"], rule["securitygroupname"], rule["account"]) == (0, 65535, "lb", "alice")
    assert "cidr" not in rule
    job = user_caller.job("authorizeSecurityGroupEgress", securitygroupid=web["id"], protocol="all",
                          cidrlist="203.0.113.0/24")
    assert job["jobstatus"] == 1 and job["jobresult"]["securitygroup"]["egressrule"][0]["protocol"] == "all"
    numbered = _ingress(user_caller, securitygroupid=web["id"], protocol="47", cidrlist="198.51.100.0/24")
    assert numbered["ingressrule"][0]["protocol"] == "47"
    listed = user_caller.ok("listSecurityGroups", id=web["id"])["securitygroup"][0]
    assert len(listed["ingressrule"]) == 5 and len(listed["egressrule"]) == 1
    # revoking: by rule id, the matching command only
    first = listed["ingressrule"][0]["ruleid"]
    refused(state, user_caller, "revokeSecurityGroupEgress", id=first, field="Mismatch in rule type")
    assert user_caller.job("revokeSecurityGroupIngress", id=first)["jobresult"] == {"success": True}
    egress = listed["egressrule"][0]["ruleid"]
    assert user_caller.job("revokeSecurityGroupEgress", id=egress)["jobstatus"] == 1
    after = user_caller.ok("listSecurityGroups", id=web["id"])["securitygroup"][0]
    assert len(after["ingressrule"]) == 4 and after["egressrule"] == []
    refused(state, user_caller, "revokeSecurityGroupIngress", id=first, field="Unable to find security rule")


@pytest.mark.parametrize(("params", "field"), [
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "10.0.0.0/33"}, "cidrlist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "10.0.0.1"}, "cidrlist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "banana/8"}, "cidrlist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "0.0.0.0/0,\x7f/8"}, "cidrlist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": ",".join(["10.0.0.0/8"] * 300)}, "cidrlist"),
    ({"protocol": "tcp", "startport": 0, "endport": 70000, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "tcp", "startport": -5, "endport": 10, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "tcp", "startport": 90, "endport": 80, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "tcp", "startport": 80, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "udp", "startport": "x", "endport": 80, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "icmp", "startport": 1, "endport": 2, "icmptype": 8, "icmpcode": 0, "cidrlist": "0.0.0.0/0"},
     "startport"),
    ({"protocol": "icmp", "icmptype": 8, "cidrlist": "0.0.0.0/0"}, "icmptype"),
    ({"protocol": "icmp", "icmptype": -1, "icmpcode": 3, "cidrlist": "0.0.0.0/0"}, "icmpcode"),
    ({"protocol": "icmp", "icmptype": 8, "icmpcode": -1, "cidrlist": "0.0.0.0/0"}, "icmpcode"),
    ({"protocol": "icmp", "icmptype": 300, "icmpcode": 0, "cidrlist": "0.0.0.0/0"}, "icmptype"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "icmptype": 8, "cidrlist": "0.0.0.0/0"}, "icmptype"),
    ({"protocol": "all", "startport": 22, "endport": 22, "cidrlist": "0.0.0.0/0"}, "startport"),
    ({"protocol": "gre-ish", "cidrlist": "0.0.0.0/0"}, "protocol"),
    ({"protocol": "256", "cidrlist": "0.0.0.0/0"}, "protocol"),
    ({"protocol": "x" * 40, "cidrlist": "0.0.0.0/0"}, "protocol"),
    ({"protocol": "tcp", "startport": 22, "endport": 22}, "cidrlist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "usersecuritygrouplist[0].group": "web"},
     "usersecuritygrouplist[0]"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "usersecuritygrouplist[0].group": "web",
      "usersecuritygrouplist[0].account": "nobody"}, "usersecuritygrouplist[0].account"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "usersecuritygrouplist[0].group": "nope",
      "usersecuritygrouplist[0].account": "alice"}, "usersecuritygrouplist[0].group"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "usersecuritygrouplist[0].group": "web",
      "usersecuritygrouplist[0].account": "alice", "usersecuritygrouplist[0].evil": "1"}, "usersecuritygrouplist"),
    ({"protocol": "tcp", "startport": 22, "endport": 22, "cidrlist": "0.0.0.0/0", "securitygroupname": "web"},
     "mutually exclusive"),
])
def test_bad_rules_are_refused_with_nothing_changed(state: ServerState, user_caller: Caller, cloud: dict[str, Any],
                                                     params: dict[str, Any], field: str) -> None:
    web = _group(user_caller, "web")
    for command in ("authorizeSecurityGroupIngress", "authorizeSecurityGroupEgress"):
        refused(state, user_caller, command, securitygroupid=web["id"], field=field, **params)


def test_duplicates_unknown_groups_and_foreign_groups_are_refused(state: ServerState, user_caller: Caller,
                                                                  admin: Caller, cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    theirs = _group(admin, "theirs")
    _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=22, endport=22, cidrlist="10.0.0.0/8")
    refused(state, user_caller, "authorizeSecurityGroupIngress", securitygroupid=web["id"], protocol="tcp",
            startport=22, endport=22, cidrlist="10.1.0.0/16,10.0.0.0/8", field="already exists")
    refused(state, user_caller, "authorizeSecurityGroupIngress", securitygroupid=theirs["id"], protocol="tcp",
            startport=22, endport=22, cidrlist="10.0.0.0/8", field="securitygroupid")
    refused(state, user_caller, "authorizeSecurityGroupIngress", securitygroupname="theirs", protocol="tcp",
            startport=22, endport=22, cidrlist="10.0.0.0/8", field="securitygroupname")
    refused(state, user_caller, "authorizeSecurityGroupIngress", protocol="tcp", startport=22, endport=22,
            cidrlist="10.0.0.0/8", field="securitygroupid")
    # another account's group in a rule: the account must be in the group's domain and exist
    refused(state, user_caller, "authorizeSecurityGroupIngress", securitygroupid=web["id"], protocol="tcp",
            startport=1, endport=2, **{"usersecuritygrouplist[0].account": "admin",
                                       "usersecuritygrouplist[0].group": "nope"}, field="group")
    rule = admin.ok("listSecurityGroups", id=web["id"], listall=True)["securitygroup"][0]["ingressrule"][0]["ruleid"]
    status, _body = admin.call("revokeSecurityGroupIngress", id=rule)
    assert status == 200, "an admin revokes any account's rule"
    refused(state, user_caller, "revokeSecurityGroupIngress", id="0b7e3c3e-0000-4000-8000-000000000000", field="id")


# ---------------------------------------------------------------------- deploy


def test_deploy_joins_groups_and_shows_them(state: ServerState, user_caller: Caller, admin: Caller,
                                            cloud: dict[str, Any]) -> None:
    vm = _vm(user_caller, cloud)
    (nic,) = vm["nic"]
    assert nic["networkid"] == cloud["networkid"], "a Basic zone's deploy lands on its one shared network"
    assert nic["ipaddress"].startswith("192.168.100.") and nic["gateway"] == "192.168.100.1"
    assert [g["name"] for g in vm["securitygroup"]] == ["default"]
    web = _group(user_caller, "web")
    db_group = _group(user_caller, "db")
    second = _vm(user_caller, cloud, securitygroupids=f"{web['id']},{db_group['id']}")
    assert sorted(g["name"] for g in second["securitygroup"]) == ["db", "web"]
    third = _vm(user_caller, cloud, securitygroupnames="web")
    listed = user_caller.ok("listVirtualMachines", id=third["id"])["virtualmachine"][0]
    assert [g["id"] for g in listed["securitygroup"]] == [web["id"]]
    groups = user_caller.ok("listSecurityGroups", virtualmachineid=second["id"])["securitygroup"]
    assert sorted(g["name"] for g in groups) == ["db", "web"]
    shown = user_caller.ok("listSecurityGroups", id=web["id"])["securitygroup"][0]
    assert shown["virtualmachinecount"] == 2 and set(shown["virtualmachineids"]) == {second["id"], third["id"]}
    # the NIC goes to the host with isSecurityGroupEnabled
    with state.sessions() as db:
        row = db.get(VMInstance, vm["id"])
        assert row is not None
        [to] = nics.nic_tos(db, row, "Simulator")
        assert to.isSecurityGroupEnabled is True and to.broadcastUri == "vlan://untagged"


def test_deploy_refusals(state: ServerState, user_caller: Caller, admin: Caller, cloud: dict[str, Any]) -> None:
    theirs = _group(admin, "theirs")
    web = _group(user_caller, "web")
    for params, field in (({"securitygroupids": theirs["id"]}, "securitygroupids"),
                          ({"securitygroupnames": "theirs"}, "securitygroupnames"),
                          ({"securitygroupids": "0b7e3c3e-0000-4000-8000-000000000000"}, "securitygroupids"),
                          ({"securitygroupids": "junk"}, "securitygroupids"),
                          ({"securitygroupids": web["id"], "securitygroupnames": "web"}, "mutually exclusive"),
                          ({"securitygroupnames": ",".join(f"g{i}" for i in range(40))}, "securitygroupnames")):
        refused(state, user_caller, "deployVirtualMachine", serviceofferingid=cloud["offering"],
                templateid=cloud["template"], zoneid=cloud["zoneid"], startvm="false", field=field, **params)


def test_security_groups_are_refused_where_networks_have_none(state: ServerState, admin: Caller,
                                                               cloud: dict[str, Any]) -> None:
    from tests.support.network_setup import add_physical_network

    zone = build_zone(admin, "advanced")
    admin.ok("updateZone", id=zone["zoneid"], allocationstate="Enabled")
    add_physical_network(admin, zone["zoneid"], name="adv", vlan="300-399")
    admin.ok("createNetwork", name="iso", zoneid=zone["zoneid"],
             networkofferingid=offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService"))
    web = _group(admin, "web")
    with state.sessions.begin() as db:
        template = db.get(VMTemplate, cloud["template"])
        assert template is not None
        db.add(TemplateStoreRef(template_id=template.id, zone_id=zone["zoneid"], download_state="DOWNLOADED",
                                install_path="template/tmpl/2/1/t.qcow2", size=1 << 30))
    refused(state, admin, "deployVirtualMachine", serviceofferingid=cloud["offering"], templateid=cloud["template"],
            zoneid=zone["zoneid"], startvm="false", securitygroupids=web["id"], field="securitygroupids")
    ok = _vm(admin, {**cloud, "zoneid": zone["zoneid"]})
    assert ok["securitygroup"] == [], "no group for a VM without security-group networks"


def test_a_basic_zone_has_one_guest_network(state: ServerState, admin: Caller, cloud: dict[str, Any]) -> None:
    assert admin.ok("listZones", id=cloud["zoneid"])["zone"][0]["securitygroupsenabled"] is True
    assert admin.ok("listCapabilities")["capability"]["securitygroupsenabled"] is True
    refused(state, admin, "createNetwork", name="second", zoneid=cloud["zoneid"],
            networkofferingid=offering_id(admin, "DefaultSharedNetworkOfferingWithSGService"), field="zoneid")
    refused(state, admin, "createNetwork", name="iso", zoneid=cloud["zoneid"],
            networkofferingid=offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService"),
            field="networkofferingid")


# ---------------------------------------------------------------------- what reaches the hosts


def test_rule_changes_reach_every_running_member(state: ServerState, user_caller: Caller, hosts: SgHosts,
                                                 cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    lb = _group(user_caller, "lb")
    a = _vm(user_caller, cloud, securitygroupnames="web")
    b = _vm(user_caller, cloud, securitygroupnames="web")
    balancer = _vm(user_caller, cloud, securitygroupnames="lb")
    stopped = _vm(user_caller, cloud, securitygroupnames="web")
    h0, h1 = cloud["hosts"]
    _running(state, a["id"], h0)
    _running(state, b["id"], h1)
    _running(state, balancer["id"], h1)
    _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=80, endport=80,
             cidrlist="10.0.0.0/8,0.0.0.0/0",
             **{"usersecuritygrouplist[0].account": "alice", "usersecuritygrouplist[0].group": "lb"})
    sent = hosts.rules_sent()
    assert sorted((h, c.vmName) for h, c in sent) == sorted([(h0, _name(state, a)), (h1, _name(state, b))]), \
        "only the group's Running members, each on its host"
    policy = hosts.policy(h0, _mac(state, a["id"]))
    assert policy is not None
    balancer_ip = balancer["nic"][0]["ipaddress"]
    assert _entries(policy) == [("tcp", 80, 80, [f"{balancer_ip}/32", "10.0.0.0/8", "0.0.0.0/0"])]
    assert _entries(policy, egress=True) == [], "no egress rule: the VM may go anywhere"
    assert (policy.guestIp, policy.guestMac, policy.secIps) == (a["nic"][0]["ipaddress"], _mac(state, a["id"]), [])
    with state.sessions() as db:
        row = db.get(VMInstance, a["id"])
        assert row is not None and policy.vmId == row.vm_number
    text = f"I:tcp;80;80;{balancer_ip}/32,10.0.0.0/8,0.0.0.0/0,NEXT "
    assert sg_sync.stringify(policy.ingressRuleSet or [], policy.egressRuleSet or []) == text
    assert policy.signature == hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
    first_seq = policy.seqNum or 0
    # an icmp and an egress rule: the whole set again, newer seqNum
    _ingress(user_caller, securitygroupid=web["id"], protocol="icmp", icmptype=8, icmpcode=0, cidrlist="0.0.0.0/0")
    assert user_caller.job("authorizeSecurityGroupEgress", securitygroupid=web["id"], protocol="udp", startport=53,
                           endport=53, cidrlist="192.0.2.53/32")["jobstatus"] == 1
    policy = hosts.policy(h0, _mac(state, a["id"]))
    assert policy is not None and (policy.seqNum or 0) == first_seq + 2
    assert _entries(policy) == [("icmp", 8, 0, ["0.0.0.0/0"]),
                                ("tcp", 80, 80, [f"{balancer_ip}/32", "10.0.0.0/8", "0.0.0.0/0"])]
    assert _entries(policy, egress=True) == [("udp", 53, 53, ["192.0.2.53/32"])]
    assert all(c.vmName != _name(state, stopped) for _h, c in hosts.rules_sent())
    assert all(c.vmName != _name(state, balancer) for _h, c in hosts.rules_sent()), "lb's own rules did not change"
    # revoking sends the smaller set
    rule = next(r for r in user_caller.ok("listSecurityGroups", id=web["id"])["securitygroup"][0]["ingressrule"]
                if r["protocol"] == "icmp")
    assert user_caller.job("revokeSecurityGroupIngress", id=rule["ruleid"])["jobstatus"] == 1
    policy = hosts.policy(h1, _mac(state, b["id"]))
    assert policy is not None and [e[0] for e in _entries(policy)] == ["tcp"]
    assert lb["id"]


def test_a_refusing_host_fails_the_job_and_an_unreachable_one_is_retried(
        state: ServerState, user_caller: Caller, hosts: SgHosts, cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    a = _vm(user_caller, cloud, securitygroupnames="web")
    b = _vm(user_caller, cloud, securitygroupnames="web")
    h0, h1 = cloud["hosts"]
    _running(state, a["id"], h0)
    _running(state, b["id"], h1)
    hosts.unreachable[h0] = 1
    _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=22, endport=22, cidrlist="0.0.0.0/0")
    assert [h for h, _c in hosts.rules_sent()].count(h0) == 2, "the unreachable host was tried again"
    assert hosts.policy(h0, _mac(state, a["id"])) is not None
    hosts.refusing.add(h1)
    job = user_caller.job("authorizeSecurityGroupIngress", securitygroupid=web["id"], protocol="tcp", startport=80,
                          endport=80, cidrlist="0.0.0.0/0")
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 530
    assert "bridge firewall is not available" in job["jobresult"]["errortext"]
    assert [e[1] for e in _entries(hosts.policy(h0, _mac(state, a["id"])) or SecurityGroupRulesCmd())] == [22, 80], \
        "the other host got the change"


def test_vm_life_updates_the_groups_that_name_it(state: ServerState, user_caller: Caller, hosts: SgHosts,
                                                 cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    _group(user_caller, "lb")
    server = _vm(user_caller, cloud, securitygroupnames="web")
    balancer = _vm(user_caller, cloud, securitygroupnames="lb")
    h0, h1 = cloud["hosts"]
    _running(state, server["id"], h0)
    _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=80, endport=80,
             **{"usersecuritygrouplist[0].account": "alice", "usersecuritygrouplist[0].group": "lb"})
    before = hosts.policy(h0, _mac(state, server["id"]))
    assert before is not None and _entries(before) == [], "lb has no running member yet: no source, no entry"
    steps = Steps(state.sessions, hosts, state.box)
    # the balancer starts on h1: its own set goes there, and web's members learn its address
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, balancer["id"])
        assert vm is not None
        vm.state, vm.host_id = S.STARTING, h1
    hosts.sent.clear()
    asyncio.run(sg_sync.vm_changed(steps, balancer["id"], h1))
    assert [(h, c.vmName) for h, c in hosts.rules_sent()] == [(h1, _name(state, balancer)),
                                                             (h0, _name(state, server))]
    after = hosts.policy(h0, _mac(state, server["id"]))
    assert after is not None and _entries(after) == [("tcp", 80, 80, [f"{balancer['nic'][0]['ipaddress']}/32"])]
    # it stops: the address leaves web's members' sets
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, balancer["id"])
        assert vm is not None
        vm.state, vm.host_id = S.STOPPED, None
    asyncio.run(sg_sync.vm_changed(steps, balancer["id"]))
    last = hosts.policy(h0, _mac(state, server["id"]))
    assert last is not None and _entries(last) == [] and (last.seqNum or 0) > (after.seqNum or 0)
    # a host that cannot filter fails the start there
    hosts.refusing.add(h1)
    with pytest.raises(StepFailed, match="bridge firewall"):
        asyncio.run(sg_sync.vm_changed(steps, balancer["id"], h1))
    # expunged: it leaves its groups
    with state.sessions.begin() as db:
        vm = db.get(VMInstance, balancer["id"])
        assert vm is not None
        vm.state = S.EXPUNGING
    asyncio.run(sg_sync.vm_changed(steps, balancer["id"]))
    with state.sessions() as db:
        assert db.scalars(select(SecurityGroupVmMap).where(SecurityGroupVmMap.vm_id == balancer["id"])).all() == []
        seqs = {vm_id: seq for vm_id, seq in db.execute(select(VmRulesetLog.vm_id, VmRulesetLog.seq))}
    final = hosts.policy(h0, _mac(state, server["id"]))
    assert final is not None and _entries(final) == [] and seqs[server["id"]] == final.seqNum, \
        "web's member got its set again; the log holds the last seqNum given (unsent ones leave gaps)"
    with state.sessions() as db:
        assert db.scalar(select(SecurityGroup.id).where(SecurityGroup.name == "lb")) is not None


def test_out_of_order_and_repeated_input(state: ServerState, user_caller: Caller, admin: Caller,
                                         cloud: dict[str, Any]) -> None:
    web = _group(user_caller, "web")
    _group(user_caller, "lb")
    _group(user_caller, "db")
    # map entries out of order and sparse, a CIDR given twice (and once more in another spelling)
    shown = _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=5432, endport=5432,
                     cidrlist="10.0.0.0/8, 10.0.0.0/8,10.1.2.3/8",
                     **{"usersecuritygrouplist[7].group": "db", "usersecuritygrouplist[7].account": "alice",
                        "usersecuritygrouplist[2].account": "alice", "usersecuritygrouplist[2].group": "lb"})
    rules = shown["ingressrule"]
    assert sorted(r.get("cidr") or r["securitygroupname"] for r in rules) == ["10.0.0.0/8", "db", "lb"]
    # a name with control characters is refused before anything is written
    refused(state, user_caller, "createSecurityGroup", name="bad\x01name")
    # another account's VM is as unknown as a missing one
    theirs = _vm(admin, cloud)
    refused(state, user_caller, "listSecurityGroups", virtualmachineid=theirs["id"], field="virtualmachineid")
    assert user_caller.ok("listSecurityGroups", virtualmachineid=_vm(user_caller, cloud)["id"])["count"] == 1


def test_shared_networks_with_security_groups_in_an_advanced_zone(state: ServerState, admin: Caller,
                                                                  user_caller: Caller, hosts: SgHosts,
                                                                  cloud: dict[str, Any]) -> None:
    """The other place security groups live: admin-made shared networks of the SG offering. A NIC
    hot-plugged into one gets the VM's rules at once."""
    from tests.support.network_setup import add_physical_network

    zone = build_zone(admin, "adv-sg")
    admin.ok("updateZone", id=zone["zoneid"], allocationstate="Enabled")
    add_physical_network(admin, zone["zoneid"], name="adv-sg", method="VLAN", vlan="3000-3099")
    sg_offering = offering_id(admin, "DefaultSharedNetworkOfferingWithSGService")
    front, back = (admin.ok("createNetwork", name=name, zoneid=zone["zoneid"], networkofferingid=sg_offering,
                            vlan=str(vlan), gateway=f"10.{vlan % 100}.0.1", netmask="255.255.255.0",
                            startip=f"10.{vlan % 100}.0.10", endip=f"10.{vlan % 100}.0.50")["network"]["id"]
                   for name, vlan in (("front", 3010), ("back", 3020)))
    with state.sessions.begin() as db:
        db.add(TemplateStoreRef(template_id=cloud["template"], zone_id=zone["zoneid"], download_state="DOWNLOADED",
                                install_path="template/tmpl/2/1/t.qcow2", size=1 << 30))
        cluster = db.get(Cluster, zone["clusterid"])
        assert cluster is not None
        host = Host(name="adv0", guid="sg-adv0", zone_id=zone["zoneid"], pod_id=zone["podid"], cluster_id=cluster.id,
                    status="Up", hypervisor="Simulator", url="http://10.0.1.1")
        db.add(host)
        db.flush()
        host_id = host.id
    web = _group(user_caller, "web")
    vm = _vm(user_caller, {**cloud, "zoneid": zone["zoneid"]}, networkids=front, securitygroupids=web["id"])
    assert [g["name"] for g in vm["securitygroup"]] == ["web"]
    _running(state, vm["id"], host_id)
    _ingress(user_caller, securitygroupid=web["id"], protocol="tcp", startport=443, endport=443, cidrlist="0.0.0.0/0")
    assert [c.guestIp for _h, c in hosts.rules_sent()] == [vm["nic"][0]["ipaddress"]]
    job = user_caller.job("addNicToVirtualMachine", virtualmachineid=vm["id"], networkid=back)
    assert job["jobstatus"] == 1, job
    plugged = next(n for n in job["jobresult"]["virtualmachine"]["nic"] if n["networkid"] == back)
    policy = hosts.policy(host_id, plugged["macaddress"])
    assert policy is not None and policy.guestIp == plugged["ipaddress"]
    assert _entries(policy) == [("tcp", 443, 443, ["0.0.0.0/0"])]
    assert any(isinstance(c, C.PlugNicCommand) and c.nic.isSecurityGroupEnabled for _h, c in hosts.sent)
