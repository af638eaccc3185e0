"""Public addresses, source and static NAT, port forwarding, firewall, egress and load balancer rules
through the signed API; their jobs run by the server's job engine against in-memory router hosts
(``tests.support.router_world``), so the tests check the router commands sent and the rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from hvcloud.server.db.models import (
    AsyncJob,
    FirewallRule,
    LoadBalancerVmMap,
    PortForwardingRule,
    RouterPublicNic,
    UserIpAddress,
)
from hvcloud.server.orchestration.networks import routers as RT
from hvcloud.server.orchestration.networks import routing, rule_jobs
from hvcloud.server.orchestration.vm import states as S
from hvcloud.server.state import ServerState
from hvcloud.wire import routing as R
from hvcloud.wire.base import Answer, Command
from tests.support.router_world import RouterHosts, World, build_world
from tests.support.server_api import Caller


class FailingHosts(RouterHosts):
    """Router hosts that refuse the command types in ``refuse`` (``result=false``)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: set[type[Command]] = set()

    async def send(self, host_id: str, command: Command, wait: float | None = None) -> Answer:
        if type(command) in self.refuse:
            self.sent.append((host_id, command))
            return Answer(result=False, details="iptables-restore: line 3 failed")
        return await super().send(host_id, command, wait)


@pytest.fixture
def world(state: ServerState, http: TestClient) -> World:
    w = build_world(state, agents=FailingHosts())
    assert state.jobs is not None
    state.jobs.agents = w.agents
    w.public_range()
    return w


def _implemented(world: World, vms: int = 2, *, owner: str = "admin", egress_allow: bool = False,
                 name: str = "net", cidr: str = "10.1.1.0/24") -> tuple[str, list[str]]:
    net = world.network(name=name, cidr=cidr, offering=world.full_offering(egress_allow=egress_allow), owner=owner)
    ids = [world.vm(net) for _ in range(vms)]
    for vm in ids:
        asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
        world.set_vm_state(vm, S.RUNNING)
    return net, ids


def _sent(world: World) -> list[str]:
    return [type(c).__name__ for _h, c in world.agents.sent]


def _job(caller: Caller, command: str, **params: Any) -> dict[str, Any]:
    return caller.wait(caller.ok(command, **params)["jobid"])


def _ok_job(caller: Caller, command: str, **params: Any) -> dict[str, Any]:
    job = _job(caller, command, **params)
    assert job["jobstatus"] == 1, job
    result: dict[str, Any] = job["jobresult"]
    return result


def _counts(state: ServerState) -> tuple[int, ...]:
    with state.sessions() as db:
        return tuple(db.scalar(select(func.count()).select_from(m)) or 0
                     for m in (UserIpAddress, FirewallRule, PortForwardingRule, LoadBalancerVmMap, AsyncJob))


def _source_nat(admin: Caller, net: str) -> dict[str, Any]:
    [ip] = admin.ok("listPublicIpAddresses", associatednetworkid=net, issourcenat=True)["publicipaddress"]
    return ip


def _associate(world: World, admin: Caller, net: str) -> dict[str, Any]:
    return _ok_job(admin, "associateIpAddress", networkid=net)["ipaddress"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- source NAT and replay


def test_implementing_a_network_takes_a_source_nat_address_and_sends_the_public_side(
        world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1)
    ip = _source_nat(admin, net)
    assert ip["ipaddress"] == "198.51.100.10" and ip["state"] == "Allocated" and ip["issourcenat"] is True
    assert ip["isstaticnat"] is False and ip["zonename"] == "zone1" and ip["account"] == "admin"
    assert ip["associatednetworkid"] == net and ip["associatednetworkname"] == "net" and ip["forvirtualnetwork"]
    names = _sent(world)
    start = names.index("AggregationControlCommand")
    assert names[start:] == ["AggregationControlCommand", "IpAssocCommand", "SetSourceNatCommand",
                             "SetFirewallRulesCommand", "SetFirewallRulesCommand", "SetPortForwardingRulesCommand",
                             "SetStaticNatRulesCommand", "LoadBalancerConfigCommand", "AggregationControlCommand"]
    assert names[:start] == ["StartCommand", "DhcpEntryCommand", "VmDataCommand"], "entries before the public side"
    [(_h, assoc)] = world.agents.of_type(R.IpAssocCommand)
    [to] = assoc.ipAddresses
    [router] = world.routers(net)
    assert (to.publicIp, to.sourceNat, to.add, to.oneToOneNat, to.broadcastUri, to.vlanGateway, to.vlanNetmask,
            to.networkName, to.trafficType) == ("198.51.100.10", True, True, False, "vlan://untagged",
                                                "198.51.100.1", "255.255.255.0", "cloudbr-pub", "Public")
    assert to.vifMacAddress and to.vifMacAddress != router.guest_mac
    assert assoc.accessDetails[R.ROUTER_NAME] == router.name
    [listed] = admin.ok("listRouters", networkid=net)["router"]
    assert listed["publicip"] == "198.51.100.10", "a router's publicip is its network's source NAT address"
    assert admin.ok("listRouters", id=router.id)["router"][0]["publicip"] == "198.51.100.10"
    [(_h, egress)] = [(h, c) for h, c in world.agents.of_type(R.SetFirewallRulesCommand)
                      if c.rules and c.rules[0].trafficType == "Egress"]
    assert egress.rules[0].protocol == "all" and egress.rules[0].defaultEgressPolicy is False
    assert egress.rules[0].guestCidr == "10.1.1.0/24"
    # the MAC is kept: a restart sends the same one
    world.agents.sent.clear()
    assert _job(admin, "restartNetwork", id=net, cleanup=True)["jobstatus"] == 1
    new_assoc = [c for _h, c in world.agents.of_type(R.IpAssocCommand)]
    assert new_assoc and new_assoc[0].ipAddresses[0].publicIp == "198.51.100.10"
    with world.state.sessions() as db:
        assert db.scalar(select(func.count()).select_from(RouterPublicNic)) == 2, "one public NIC per router"


def test_a_zone_without_public_ranges_implements_networks_as_before(state: ServerState, http: TestClient,
                                                                    admin: Caller) -> None:
    w = build_world(state)
    net = w.network(offering=w.full_offering())
    vm = w.vm(net)
    asyncio.run(routing.prepare_vm_start(w.steps(), vm, w.hosts[0]))
    assert [type(c).__name__ for _h, c in w.agents.sent] == ["StartCommand", "DhcpEntryCommand", "VmDataCommand"]
    assert admin.ok("listPublicIpAddresses", listall=True) == {}


def test_network_shutdown_gives_the_source_nat_address_back(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    assert _source_nat(admin, net)["ipaddress"] == "198.51.100.10"
    world.set_vm_state(vms[0], S.STOPPED)
    assert asyncio.run(RT.shutdown(world.steps(), net, destroy=True))
    assert admin.ok("listPublicIpAddresses", associatednetworkid=net) == {}
    # the next implementation takes the lowest free address again
    world.set_vm_state(vms[0], S.STARTING)
    asyncio.run(routing.prepare_vm_start(world.steps(), vms[0], world.hosts[0]))
    assert _source_nat(admin, net)["ipaddress"] == "198.51.100.10"


# ---------------------------------------------------------------------------- addresses


def test_associate_and_disassociate_an_address(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world)
    world.agents.sent.clear()
    ip = _associate(world, admin, net)
    assert ip["ipaddress"] == "198.51.100.11" and ip["state"] == "Allocated" and ip["issourcenat"] is False
    [(_h, assoc)] = world.agents.of_type(R.IpAssocCommand)
    assert [(t.publicIp, t.add) for t in assoc.ipAddresses] == [("198.51.100.11", True)]
    listed = admin.ok("listPublicIpAddresses", associatednetworkid=net)
    assert listed["count"] == 2
    assert admin.ok("listPublicIpAddresses", ipaddress="198.51.100.11")["publicipaddress"][0]["id"] == ip["id"]
    assert admin.ok("listPublicIpAddresses", issourcenat=False)["count"] == 1
    assert admin.ok("listPublicIpAddresses", state="allocated")["count"] == 2
    assert admin.ok("listPublicIpAddresses", keyword="100.11")["count"] == 1
    assert admin.ok("listPublicIpAddresses", forvirtualnetwork=False) == {}
    # the address can be asked for by value
    chosen = _ok_job(admin, "associateIpAddress", networkid=net, ipaddress="198.51.100.15")["ipaddress"]
    assert chosen["ipaddress"] == "198.51.100.15"
    world.agents.sent.clear()
    assert _ok_job(admin, "disassociateIpAddress", id=ip["id"]) == {"success": True}
    [(_h, gone)] = world.agents.of_type(R.IpAssocCommand)
    assert [(t.publicIp, t.add) for t in gone.ipAddresses] == [("198.51.100.11", False)]
    assert gone.accessDetails[R.NETWORK_PUB_LAST_IP] == "false", "the source NAT address stays on the VLAN"
    assert admin.ok("listPublicIpAddresses", id=ip["id"]) == {}
    assert _ok_job(admin, "associateIpAddress", networkid=net)["ipaddress"]["ipaddress"] == "198.51.100.11", \
        "a released address is free again"


@pytest.mark.parametrize("params, code, text", [
    ({}, 431, "missing parameter"),
    ({"networkid": "00000000-0000-0000-0000-000000000000"}, 431, "entity does not exist"),
    ({"networkid": "NET", "ipaddress": "not-an-ip"}, 431, "ipaddress"),
    ({"networkid": "NET", "ipaddress": "198.51.100.10"}, 431, "ipaddress"),  # the source NAT address
    ({"networkid": "NET", "ipaddress": "203.0.113.5"}, 431, "ipaddress"),  # outside the ranges
    ({"networkid": "NET", "projectid": "00000000-0000-0000-0000-000000000000"}, 431, "projectid"),
    ({"networkid": "NET", "isportable": "true"}, 431, "isportable"),
    ({"networkid": "NET", "vpcid": "00000000-0000-0000-0000-000000000000"}, 431, "vpcid"),
])
def test_associate_bad_input_changes_nothing(world: World, admin: Caller, params: dict[str, str], code: int,
                                             text: str) -> None:
    net, _vms = _implemented(world, vms=1)
    params = {k: (net if v == "NET" else v) for k, v in params.items()}
    before = _counts(world.state)
    status, body = admin.call("associateIpAddress", **params)
    assert status == code, body
    assert text in body["errortext"], body
    assert _counts(world.state) == before


def test_associate_when_the_ranges_are_exhausted_is_533(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1)
    for _ in range(10):  # .11-.20
        _associate(world, admin, net)
    before = _counts(world.state)
    status, body = admin.call("associateIpAddress", networkid=net)
    assert status == 533 and "Insufficient address capacity" in body["errortext"], body
    assert _counts(world.state) == before


def test_the_source_nat_address_cannot_be_disassociated(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1)
    ip = _source_nat(admin, net)
    before = _counts(world.state)
    status, body = admin.call("disassociateIpAddress", id=ip["id"])
    assert status == 431 and "source nat" in body["errortext"], body
    assert _counts(world.state) == before


def test_users_see_and_change_only_their_own_addresses(world: World, admin: Caller, user_caller: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    alices, _avms = _implemented(world, vms=1, owner="alice", name="alices", cidr="10.1.2.0/24")
    mine = user_caller.ok("listPublicIpAddresses")["publicipaddress"]
    assert [i["associatednetworkid"] for i in mine] == [alices]
    assert user_caller.ok("listPublicIpAddresses", listall=True)["count"] == 1
    assert admin.ok("listPublicIpAddresses", listall=True)["count"] == 3
    assert admin.ok("listPublicIpAddresses")["count"] == 2, "an admin's own unless listall"
    before = _counts(world.state)
    for command, params in (("disassociateIpAddress", {"id": ip["id"]}),
                            ("associateIpAddress", {"networkid": net}),
                            ("createFirewallRule", {"ipaddressid": ip["id"], "protocol": "tcp", "startport": 22}),
                            ("createPortForwardingRule", {"ipaddressid": ip["id"], "protocol": "tcp",
                                                          "publicport": 22, "privateport": 22,
                                                          "virtualmachineid": vms[0]}),
                            ("enableStaticNat", {"ipaddressid": ip["id"], "virtualmachineid": vms[0]}),
                            ("createLoadBalancerRule", {"publicipid": ip["id"], "name": "x", "algorithm": "source",
                                                        "publicport": 80, "privateport": 80})):
        status, body = user_caller.call(command, **params)
        assert status == 531, (command, body)
    assert _counts(world.state) == before


# ---------------------------------------------------------------------------- port forwarding


def test_port_forward_with_its_firewall_rule_reaches_the_router_and_goes(world: World, admin: Caller) -> None:
    net, vms = _implemented(world)
    ip = _associate(world, admin, net)
    world.agents.sent.clear()
    pf = _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="TCP", publicport=8080,
                 publicendport=8081, privateport=80, privateendport=81, virtualmachineid=vms[1],
                 cidrlist="192.0.2.0/24,198.18.0.1/32")["portforwardingrule"]
    assert {k: pf[k] for k in ("publicport", "publicendport", "privateport", "privateendport", "protocol",
                               "virtualmachineid", "ipaddress", "state", "cidrlist", "vmguestip", "networkid")} == {
        "publicport": "8080", "publicendport": "8081", "privateport": "80", "privateendport": "81", "protocol": "tcp",
        "virtualmachineid": vms[1], "ipaddress": "198.51.100.11", "state": "Active",
        "cidrlist": "192.0.2.0/24,198.18.0.1/32", "vmguestip": "10.1.1.11", "networkid": net}
    assert _sent(world) == ["AggregationControlCommand", "SetFirewallRulesCommand", "SetPortForwardingRulesCommand",
                            "AggregationControlCommand"]
    [(_h, fw)] = world.agents.of_type(R.SetFirewallRulesCommand)
    [(_h, fwd)] = world.agents.of_type(R.SetPortForwardingRulesCommand)
    [rule] = fwd.rules
    assert (rule.srcIp, rule.srcPortRange, rule.dstIp, rule.dstPortRange, rule.protocol, rule.revoked) == \
        ("198.51.100.11", [8080, 8081], "10.1.1.11", [80, 81], "tcp", False)
    assert rule.sourceCidrList == ["192.0.2.0/24", "198.18.0.1/32"] and isinstance(rule.id, int)
    assert fw.rules[0].srcPortRange == [8080, 8081] and fw.rules[0].trafficType == "Ingress"
    assert admin.ok("listPortForwardingRules", ipaddressid=ip["id"])["portforwardingrule"] == [pf]
    [opened] = admin.ok("listFirewallRules", ipaddressid=ip["id"])["firewallrule"]
    assert (opened["startport"], opened["endport"], opened["protocol"]) == (8080, 8081, "tcp")
    # updating the private side sends the rule again
    world.agents.sent.clear()
    updated = _ok_job(admin, "updatePortForwardingRule", id=pf["id"], privateport=90)["portforwardingrule"]
    assert (updated["privateport"], updated["privateendport"]) == ("90", "91")
    assert world.agents.of_type(R.SetPortForwardingRulesCommand)[0][1].rules[0].dstPortRange == [90, 91]
    # deleting sends it revoked, with its firewall rule, and the rows go
    world.agents.sent.clear()
    assert _ok_job(admin, "deletePortForwardingRule", id=pf["id"]) == {"success": True}
    [(_h, gone)] = world.agents.of_type(R.SetPortForwardingRulesCommand)
    assert gone.rules[0].revoked is True
    assert world.agents.of_type(R.SetFirewallRulesCommand)[0][1].rules[0].revoked is True
    assert admin.ok("listPortForwardingRules") == {} and admin.ok("listFirewallRules") == {}


def test_tcp_and_udp_forwards_may_share_ports_and_openfirewall_false_opens_nothing(world: World,
                                                                                    admin: Caller) -> None:
    net, vms = _implemented(world)
    ip = _associate(world, admin, net)
    for proto in ("tcp", "udp"):
        _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol=proto, publicport=53,
                privateport=53, virtualmachineid=vms[0], openfirewall=False)
    assert admin.ok("listPortForwardingRules")["count"] == 2
    assert admin.ok("listFirewallRules") == {}


@pytest.mark.parametrize("params, code, field", [
    ({"publicport": 22, "privateport": 22, "protocol": "icmp"}, 431, "protocol"),
    ({"publicport": 0, "privateport": 22}, 431, "publicport"),
    ({"publicport": 70000, "privateport": 22}, 431, "publicport"),
    ({"publicport": 22, "privateport": 65536}, 431, "privateport"),
    ({"publicport": 30, "publicendport": 20, "privateport": 30, "privateendport": 40}, 431, "publicport"),
    ({"publicport": 20, "publicendport": 30, "privateport": 20, "privateendport": 25}, 431, "privateport"),
    ({"publicport": 22, "privateport": 22, "cidrlist": "10.0.0/33"}, 431, "cidrlist"),
    ({"publicport": 22, "privateport": 22, "cidrlist": "fe80::/64"}, 431, "cidrlist"),
    ({"publicport": 22, "privateport": 22, "cidrlist": "10.0.0.1"}, 431, "cidrlist"),
    ({"publicport": 22, "privateport": 22, "vmguestip": "10.1.1.99"}, 431, "vmguestip"),
    ({"publicport": "x", "privateport": 22}, 431, "publicport"),
    ({"publicport": 7000, "privateport": 22}, 537, "publicport"),  # overlaps 7000-7010
    ({"publicport": 7005, "publicendport": 7020, "privateport": 7005, "privateendport": 7020}, 537, "7000-7010"),
    ({"publicport": 6000, "privateport": 22, "virtualmachineid": "OTHERNET"}, 431, "virtualmachineid"),
    ({"publicport": 6000, "privateport": 22, "virtualmachineid": "00000000-0000-0000-0000-000000000000"}, 431,
     "virtualmachineid"),
    ({"publicport": 6000, "privateport": 22, "ipaddressid": "00000000-0000-0000-0000-000000000000"}, 431,
     "ipaddressid"),
])
def test_port_forward_bad_input_changes_nothing(world: World, admin: Caller, params: dict[str, Any], code: int,
                                                field: str) -> None:
    net, vms = _implemented(world, vms=1)
    _other, other_vms = _implemented(world, vms=1, name="other", cidr="10.1.2.0/24")
    ip = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=7000,
            publicendport=7010, privateport=7000, privateendport=7010, virtualmachineid=vms[0])
    call = {"ipaddressid": ip["id"], "protocol": "tcp", "virtualmachineid": vms[0], **params}
    if call["virtualmachineid"] == "OTHERNET":
        call["virtualmachineid"] = other_vms[0]
    before = _counts(world.state)
    status, body = admin.call("createPortForwardingRule", **call)
    assert status == code, body
    assert field in body["errortext"], body
    assert _counts(world.state) == before


def test_rules_on_an_address_being_released_are_refused(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    world.agents.refuse.add(R.IpAssocCommand)  # the release cannot finish: the address stays Releasing
    job = _job(admin, "disassociateIpAddress", id=ip["id"])
    assert job["jobstatus"] == 2 and "iptables-restore" in job["jobresult"]["errortext"], job
    assert admin.ok("listPublicIpAddresses", id=ip["id"])["publicipaddress"][0]["state"] == "Releasing"
    before = _counts(world.state)
    for command, params in (("createPortForwardingRule", {"protocol": "tcp", "publicport": 22, "privateport": 22,
                                                          "virtualmachineid": vms[0]}),
                            ("createFirewallRule", {"protocol": "tcp", "startport": 22}),
                            ("enableStaticNat", {"virtualmachineid": vms[0]})):
        status, body = admin.call(command, ipaddressid=ip["id"], **params)
        assert status == 431 and "being released" in body["errortext"], (command, body)
    assert _counts(world.state) == before


def test_a_router_that_fails_a_rule_leaves_it_in_add_and_fails_the_job(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    world.agents.refuse.add(R.SetPortForwardingRulesCommand)
    world.agents.sent.clear()
    job = _job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22,
               privateport=22, virtualmachineid=vms[0], openfirewall=False)
    assert job["jobstatus"] == 2 and job["jobresultcode"] == 530, job
    assert "iptables-restore" in job["jobresult"]["errortext"]
    [rule] = admin.ok("listPortForwardingRules")["portforwardingrule"]
    assert rule["state"] == "Add"
    # the router comes back: a restart sends everything and the rule becomes Active
    world.agents.refuse.clear()
    assert _job(admin, "restartNetwork", id=net)["jobstatus"] == 1
    assert admin.ok("listPortForwardingRules")["portforwardingrule"][0]["state"] == "Active"


def test_rules_of_a_network_without_a_router_wait_for_its_implementation(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    world.set_vm_state(vms[0], S.STOPPED)
    assert asyncio.run(RT.shutdown(world.steps(), net, destroy=True))
    world.agents.sent.clear()
    pf = _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22,
                 privateport=22, virtualmachineid=vms[0])["portforwardingrule"]
    assert pf["state"] == "Active" and world.agents.sent == [], "stored, nothing sent"
    world.set_vm_state(vms[0], S.STARTING)
    asyncio.run(routing.prepare_vm_start(world.steps(), vms[0], world.hosts[0]))
    [(_h, fwd)] = world.agents.of_type(R.SetPortForwardingRulesCommand)
    assert [(r.srcIp, r.srcPortRange) for r in fwd.rules] == [("198.51.100.11", [22, 22])]
    [(_h, assoc)] = world.agents.of_type(R.IpAssocCommand)
    assert [t.publicIp for t in assoc.ipAddresses] == ["198.51.100.10", "198.51.100.11"]


# ---------------------------------------------------------------------------- firewall and egress


def test_firewall_rules_and_their_conflicts(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    world.agents.sent.clear()
    rule = _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="icmp", icmptype=8, icmpcode=0,
                   cidrlist="192.0.2.0/24")["firewallrule"]
    assert (rule["protocol"], rule["icmptype"], rule["icmpcode"], rule["cidrlist"], rule["state"]) == \
        ("icmp", 8, 0, "192.0.2.0/24", "Active")
    [(_h, cmd)] = world.agents.of_type(R.SetFirewallRulesCommand)
    assert (cmd.rules[0].icmpType, cmd.rules[0].icmpCode, cmd.rules[0].srcIp) == (8, 0, "198.51.100.11")
    _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=22, endport=25)
    # the same ports from other sources are another rule; from the same sources a conflict
    _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=22, cidrlist="192.0.2.0/24")
    before = _counts(world.state)
    for params, code, text in (
            ({"protocol": "tcp", "startport": 24, "endport": 30}, 537, "conflicts with rule"),
            ({"protocol": "icmp", "icmptype": 8, "icmpcode": 0, "cidrlist": "192.0.2.0/24"}, 537, "conflicts"),
            ({"protocol": "icmp", "startport": 22}, 431, "startport"),
            ({"protocol": "tcp", "startport": 22, "icmptype": 8}, 431, "icmptype"),
            ({"protocol": "icmp", "icmptype": 300}, 431, "icmptype"),
            ({"protocol": "icmp", "icmpcode": 1}, 431, "icmpcode"),
            ({"protocol": "gre"}, 431, "protocol"),
            ({"protocol": "tcp", "startport": 30, "endport": 20}, 431, "startport"),
            ({"protocol": "tcp", "endport": 20}, 431, "endport"),
            ({"protocol": "tcp", "startport": 40, "cidrlist": "300.1.1.0/24"}, 431, "cidrlist"),
            ({"protocol": "tcp", "startport": 40, "cidrlist": ",".join(["10.0.0.0/8"] * 65)}, 431, "cidrlist"),
            ({"protocol": "tcp", "startport": 40, "type": "system"}, 431, "type")):
        status, body = admin.call("createFirewallRule", ipaddressid=ip["id"], **params)
        assert status == code, (params, body)
        assert text in body["errortext"], (params, body)
    assert _counts(world.state) == before
    assert _ok_job(admin, "deleteFirewallRule", id=rule["id"]) == {"success": True}
    assert admin.ok("listFirewallRules")["count"] == 2
    status, body = admin.call("deleteFirewallRule", id=rule["id"])
    assert status == 431, body


def test_egress_rules_carry_the_offering_default(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1, egress_allow=True)
    world.agents.sent.clear()
    rule = _ok_job(admin, "createEgressFirewallRule", networkid=net, protocol="tcp", startport=443,
                   destcidrlist="203.0.113.0/24")["firewallrule"]
    assert rule["destcidrlist"] == "203.0.113.0/24" and rule["networkid"] == net
    [(_h, cmd)] = world.agents.of_type(R.SetFirewallRulesCommand)
    [to] = cmd.rules
    assert (to.trafficType, to.defaultEgressPolicy, to.guestCidr, to.destCidrList, to.srcIp) == \
        ("Egress", True, "10.1.1.0/24", ["203.0.113.0/24"], None)
    assert admin.ok("listEgressFirewallRules", networkid=net)["firewallrule"][0]["id"] == rule["id"]
    assert admin.ok("listFirewallRules") == {}, "egress rules are not ingress rules"
    before = _counts(world.state)
    for params, text in (({"protocol": "tcp", "startport": 443}, "conflicts"),
                         ({"protocol": "tcp", "startport": 80, "cidrlist": "10.9.0.0/16"}, "cidrlist"),
                         ({"protocol": "all", "startport": 80}, "startport"),
                         ({"protocol": "tcp", "startport": 80, "destcidrlist": "nonsense"}, "destcidrlist")):
        status, body = admin.call("createEgressFirewallRule", networkid=net, **params)
        assert status in (431, 537) and text in body["errortext"], (params, body)
    assert _counts(world.state) == before
    assert _ok_job(admin, "deleteEgressFirewallRule", id=rule["id"]) == {"success": True}
    assert admin.ok("listEgressFirewallRules") == {}


# ---------------------------------------------------------------------------- static NAT


def test_static_nat_enable_list_and_disable(world: World, admin: Caller) -> None:
    net, vms = _implemented(world)
    source = _source_nat(admin, net)
    ip = _associate(world, admin, net)
    status, body = admin.call("enableStaticNat", ipaddressid=source["id"], virtualmachineid=vms[0])
    assert status == 431 and "source nat" in body["errortext"], body
    world.agents.sent.clear()
    assert admin.ok("enableStaticNat", ipaddressid=ip["id"], virtualmachineid=vms[0]) == {"success": "true"}
    # the change is applied by a job; the next call waits for it through the network's queue
    listed = admin.ok("listPublicIpAddresses", id=ip["id"])["publicipaddress"][0]
    assert listed["isstaticnat"] is True and listed["virtualmachineid"] == vms[0]
    assert listed["vmipaddress"] == "10.1.1.10"
    [rule] = admin.ok("listIpForwardingRules")["ipforwardingrule"]
    assert (rule["ipaddress"], rule["virtualmachineid"], rule["vmguestip"]) == ("198.51.100.11", vms[0], "10.1.1.10")
    assert (rule["protocol"], rule["startport"], rule["endport"]) == ("all", 1, 65535)
    [vm] = admin.ok("listVirtualMachines", id=vms[0])["virtualmachine"]
    assert (vm["publicip"], vm["publicipid"]) == ("198.51.100.11", ip["id"])
    assert (vm["nic"][0]["publicip"], vm["nic"][0]["publicipid"]) == ("198.51.100.11", ip["id"])
    assert admin.ok("listNics", virtualmachineid=vms[0])["nic"][0]["publicip"] == "198.51.100.11"
    [other_vm] = admin.ok("listVirtualMachines", id=vms[1])["virtualmachine"]
    assert "publicip" not in other_vm
    with world.state.sessions() as db:
        job = db.scalars(select(AsyncJob).order_by(AsyncJob.created.desc())).first()
        assert job is not None
        jobid = job.id
    assert admin.wait(jobid)["jobstatus"] == 1
    nat = world.agents.of_type(R.SetStaticNatRulesCommand)
    assert [(r.srcIp, r.dstIp, r.revoked) for r in nat[0][1].rules] == [("198.51.100.11", "10.1.1.10", False)]
    assert world.agents.of_type(R.IpAssocCommand)[0][1].ipAddresses[0].oneToOneNat is True
    before = _counts(world.state)
    for command, params, code in (
            ("createPortForwardingRule", {"protocol": "tcp", "publicport": 22, "privateport": 22,
                                          "virtualmachineid": vms[0]}, 537),
            ("enableStaticNat", {"virtualmachineid": vms[1]}, 431)):
        status, body = admin.call(command, ipaddressid=ip["id"], **params)
        assert status == code, (command, body)
    assert _counts(world.state) == before
    # a firewall rule on a static NAT address is what opens it
    _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=22)
    world.agents.sent.clear()
    assert _ok_job(admin, "disableStaticNat", ipaddressid=ip["id"]) == {"success": True}
    nat = world.agents.of_type(R.SetStaticNatRulesCommand)
    assert [(r.srcIp, r.dstIp, r.revoked) for r in nat[0][1].rules] == [("198.51.100.11", "10.1.1.10", True)]
    assert admin.ok("listIpForwardingRules") == {}
    status, body = admin.call("disableStaticNat", ipaddressid=ip["id"])
    assert status == 431, body


def test_static_nat_is_refused_on_an_address_with_forwards(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22, privateport=22,
            virtualmachineid=vms[0])
    before = _counts(world.state)
    status, body = admin.call("enableStaticNat", ipaddressid=ip["id"], virtualmachineid=vms[0])
    assert status == 537 and "PortForwarding" in body["errortext"], body
    assert _counts(world.state) == before


# ---------------------------------------------------------------------------- load balancers


def test_load_balancer_rule_members_and_deletion(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=3)
    ip = _associate(world, admin, net)
    world.agents.sent.clear()
    lb = _ok_job(admin, "createLoadBalancerRule", publicipid=ip["id"], name="web", algorithm="leastconn",
                 publicport=80, privateport=8080, description="front")["loadbalancer"]
    assert {k: lb[k] for k in ("name", "algorithm", "publicport", "privateport", "publicip", "state", "protocol",
                               "description", "zonename")} == {
        "name": "web", "algorithm": "leastconn", "publicport": "80", "privateport": "8080",
        "publicip": "198.51.100.11", "state": "Active", "protocol": "tcp", "description": "front",
        "zonename": "zone1"}
    assert _sent(world) == ["AggregationControlCommand", "SetFirewallRulesCommand", "LoadBalancerConfigCommand",
                            "AggregationControlCommand"]
    world.agents.sent.clear()
    assert _ok_job(admin, "assignToLoadBalancerRule", id=lb["id"], virtualmachineids=f"{vms[0]},{vms[1]}") == \
        {"success": True}
    [(_h, cfg)] = world.agents.of_type(R.LoadBalancerConfigCommand)
    [to] = cfg.loadBalancers
    assert (to.srcIp, to.srcPort, to.algorithm, to.protocol) == ("198.51.100.11", 80, "leastconn", "tcp")
    assert [(d.destIp, d.destPort, d.revoked) for d in to.destinations] == \
        [("10.1.1.10", 8080, False), ("10.1.1.11", 8080, False)]
    instances = admin.ok("listLoadBalancerRuleInstances", id=lb["id"])["loadbalancerruleinstance"]
    assert [v["id"] for v in instances] == vms[:2]
    assert admin.ok("listLoadBalancerRules", virtualmachineid=vms[0])["loadbalancerrule"][0]["id"] == lb["id"]
    assert admin.ok("listLoadBalancerRules", virtualmachineid=vms[2]) == {}
    before = _counts(world.state)
    for command, params in (("assignToLoadBalancerRule", {"virtualmachineids": vms[0]}),
                            ("assignToLoadBalancerRule", {}),
                            ("removeFromLoadBalancerRule", {"virtualmachineids": vms[2]}),
                            ("updateLoadBalancerRule", {"algorithm": "random"}),
                            ("updateLoadBalancerRule", {"protocol": "udp"})):
        status, body = admin.call(command, id=lb["id"], **params)
        assert status == 431, (command, body)
    assert _counts(world.state) == before
    world.agents.sent.clear()
    assert _ok_job(admin, "removeFromLoadBalancerRule", id=lb["id"], virtualmachineids=vms[0]) == {"success": True}
    [(_h, cfg)] = world.agents.of_type(R.LoadBalancerConfigCommand)
    assert [(d.destIp, d.revoked) for d in cfg.loadBalancers[0].destinations] == \
        [("10.1.1.10", True), ("10.1.1.11", False)]
    assert [v["id"] for v in admin.ok("listLoadBalancerRuleInstances", id=lb["id"])["loadbalancerruleinstance"]] \
        == [vms[1]]
    updated = _ok_job(admin, "updateLoadBalancerRule", id=lb["id"], algorithm="source", name="web2")["loadbalancer"]
    assert (updated["algorithm"], updated["name"]) == ("source", "web2")
    world.agents.sent.clear()
    assert _ok_job(admin, "deleteLoadBalancerRule", id=lb["id"]) == {"success": True}
    [(_h, cfg)] = world.agents.of_type(R.LoadBalancerConfigCommand)
    assert cfg.loadBalancers[0].revoked is True
    assert admin.ok("listLoadBalancerRules") == {} and admin.ok("listFirewallRules") == {}


@pytest.mark.parametrize("params, code, field", [
    ({"algorithm": "random"}, 431, "algorithm"),
    ({"publicport": 0}, 431, "publicport"),
    ({"privateport": 65536}, 431, "privateport"),
    ({"protocol": "sctp"}, 431, "protocol"),
    ({"cidrlist": "1.2.3.4/40"}, 431, "cidrlist"),
    ({"publicport": 22}, 537, "publicport"),  # a forward holds 22
    ({"publicipid": None}, 431, "publicipid"),
    ({"name": " "}, 431, "name"),
])
def test_load_balancer_bad_input_changes_nothing(world: World, admin: Caller, params: dict[str, Any], code: int,
                                                 field: str) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22, privateport=22,
            virtualmachineid=vms[0], openfirewall=False)
    call: dict[str, Any] = {"publicipid": ip["id"], "name": "web", "algorithm": "roundrobin", "publicport": 80,
                            "privateport": 80, **params}
    call = {k: v for k, v in call.items() if v is not None}
    before = _counts(world.state)
    status, body = admin.call("createLoadBalancerRule", **call)
    assert status == code, body
    assert field in body["errortext"], body
    assert _counts(world.state) == before


# ---------------------------------------------------------------------------- a VM goes


def test_an_expunged_vm_loses_its_forwards_static_nat_and_memberships(world: World, admin: Caller) -> None:
    net, vms = _implemented(world)
    ip = _associate(world, admin, net)
    nat = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22, privateport=22,
            virtualmachineid=vms[0])
    lb = _ok_job(admin, "createLoadBalancerRule", publicipid=ip["id"], name="web", algorithm="roundrobin",
                 publicport=80, privateport=80)["loadbalancer"]
    _ok_job(admin, "assignToLoadBalancerRule", id=lb["id"], virtualmachineids=f"{vms[0]},{vms[1]}")
    admin.ok("enableStaticNat", ipaddressid=nat["id"], virtualmachineid=vms[0])
    _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=443)
    world.agents.sent.clear()
    asyncio.run(rule_jobs.forget_vm(world.steps(), vms[0]))
    names = _sent(world)
    assert "SetPortForwardingRulesCommand" in names and "SetStaticNatRulesCommand" in names
    assert "LoadBalancerConfigCommand" in names
    assert admin.ok("listPortForwardingRules") == {}
    assert admin.ok("listIpForwardingRules") == {}
    assert [v["id"] for v in admin.ok("listLoadBalancerRuleInstances", id=lb["id"])["loadbalancerruleinstance"]] \
        == [vms[1]]
    assert sorted(r["startport"] for r in admin.ok("listFirewallRules")["firewallrule"]) == [80, 443], \
        "the forward's own firewall rule went with it; the others stay"


# ---------------------------------------------------------------------------- set up through the API


def test_a_zone_set_up_through_the_api_hands_out_public_addresses(admin: Caller) -> None:
    from tests.support.network_setup import add_physical_network, add_public_range, offering_id
    from tests.support.server_api import build_zone

    zone = build_zone(admin)
    pn = add_physical_network(admin, zone["zoneid"])
    rng = add_public_range(admin, zone["zoneid"], pn["id"], start="198.51.100.10", end="198.51.100.11")
    assert rng["forvirtualnetwork"] is True
    offering = offering_id(admin, "DefaultIsolatedNetworkOfferingWithSourceNatService")
    net = admin.ok("createNetwork", name="web", displaytext="web", zoneid=zone["zoneid"],
                   networkofferingid=offering)["network"]
    first = _ok_job(admin, "associateIpAddress", zoneid=zone["zoneid"])["ipaddress"]
    assert (first["ipaddress"], first["associatednetworkid"], first["vlanname"]) == ("198.51.100.10", net["id"],
                                                                                     "vlan://untagged")
    rule = _ok_job(admin, "createFirewallRule", ipaddressid=first["id"], protocol="tcp", startport=22)["firewallrule"]
    assert rule["state"] == "Active", "no router yet: stored for the network's implementation"
    status, body = admin.call("deleteVlanIpRange", id=rng["id"])
    assert status == 431 and "in use" in body["errortext"], body
    _ok_job(admin, "associateIpAddress", networkid=net["id"])
    status, body = admin.call("associateIpAddress", networkid=net["id"])
    assert status == 533, body
    # releasing gives the address and its rules back; then the range can go
    for ip in admin.ok("listPublicIpAddresses")["publicipaddress"]:
        assert _ok_job(admin, "disassociateIpAddress", id=ip["id"]) == {"success": True}
    assert admin.ok("listFirewallRules") == {}
    assert admin.ok("deleteVlanIpRange", id=rng["id"]) == {"success": "true"}


@pytest.mark.parametrize("value", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "-1", "' OR '1'='1",
                                   "x" * 300])
def test_unknown_ids_are_431_and_change_nothing(world: World, admin: Caller, value: str) -> None:
    net, _vms = _implemented(world, vms=1)
    _associate(world, admin, net)
    before = _counts(world.state)
    for command, params in (("disassociateIpAddress", {"id": value}),
                            ("enableStaticNat", {"ipaddressid": value, "virtualmachineid": value}),
                            ("disableStaticNat", {"ipaddressid": value}),
                            ("deletePortForwardingRule", {"id": value}),
                            ("updatePortForwardingRule", {"id": value, "privateport": 80}),
                            ("deleteFirewallRule", {"id": value}),
                            ("deleteEgressFirewallRule", {"id": value}),
                            ("createEgressFirewallRule", {"networkid": value, "protocol": "tcp"}),
                            ("deleteLoadBalancerRule", {"id": value}),
                            ("assignToLoadBalancerRule", {"id": value, "virtualmachineids": value}),
                            ("listLoadBalancerRuleInstances", {"id": value})):
        status, body = admin.call(command, **params)
        assert status == 431, (command, body)
    assert _counts(world.state) == before


@pytest.mark.parametrize("params", [
    {"state": "Gone"}, {"account": "admin"}, {"page": "1"}, {"pagesize": "100000", "page": "1"},
    {"domainid": "00000000-0000-0000-0000-000000000000"},
])
def test_list_public_ips_bad_input_is_431(world: World, admin: Caller, params: dict[str, str]) -> None:
    status, body = admin.call("listPublicIpAddresses", **params)
    assert status == 431, body


def test_a_deleted_rule_of_another_kind_is_not_found(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    pf = _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22,
                 privateport=22, virtualmachineid=vms[0])["portforwardingrule"]
    before = _counts(world.state)
    for command in ("deleteFirewallRule", "deleteEgressFirewallRule", "deleteLoadBalancerRule"):
        status, body = admin.call(command, id=pf["id"])
        assert status == 431, (command, body)
    assert _counts(world.state) == before


def test_reboot_and_agent_side_loss_send_the_public_side_again(world: World, admin: Caller) -> None:
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22, privateport=22,
            virtualmachineid=vms[0])
    [router] = world.routers(net)
    world.agents.sent.clear()
    assert _job(admin, "rebootRouter", id=router.id)["jobstatus"] == 1
    names = _sent(world)
    assert names[0] == "RebootCommand" and "SetPortForwardingRulesCommand" in names
    # the host forgot the router (rebuilt): the next change finds it gone, and the router is started
    # again by the next VM start with everything replayed
    world.agents.routers.clear()
    _ok_job(admin, "createFirewallRule", ipaddressid=ip["id"], protocol="tcp", startport=443)
    assert world.routers(net)[0].state == RT.STOPPED
    world.agents.sent.clear()
    vm = world.vm(net)
    asyncio.run(routing.prepare_vm_start(world.steps(), vm, world.hosts[0]))
    [(_h, fw)] = [(h, c) for h, c in world.agents.of_type(R.SetFirewallRulesCommand)
                  if c.rules and c.rules[0].trafficType == "Ingress"]
    assert sorted(r.srcPortRange[0] for r in fw.rules if r.srcPortRange) == [22, 443]


def test_associate_is_charged_to_the_public_ip_limit(world: World, admin: Caller, user_caller: Caller) -> None:
    alices, _vms = _implemented(world, vms=1, owner="alice", name="alices", cidr="10.1.2.0/24")
    domain = admin.ok("listDomains")["domain"][0]["id"]
    admin.ok("updateResourceLimit", resourcetype=1, max=2, account="alice", domainid=domain)
    ip = _ok_job(user_caller, "associateIpAddress", networkid=alices)["ipaddress"]  # the source NAT counts too
    before = _counts(world.state)
    status, body = user_caller.call("associateIpAddress", networkid=alices)
    assert status == 535, body
    assert _counts(world.state) == before
    [limit] = user_caller.ok("listResourceLimits", resourcetype=1)["resourcelimit"]
    assert limit["max"] == 2
    _ok_job(user_caller, "disassociateIpAddress", id=ip["id"])
    assert _ok_job(user_caller, "associateIpAddress", networkid=alices)["ipaddress"]["ipaddress"] == ip["ipaddress"]


def test_an_address_another_server_took_meanwhile_is_skipped(world: World, admin: Caller,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from hvcloud.server.orchestration.networks import public_ips as IP

    net, _vms = _implemented(world, vms=1)  # holds .10 (source NAT)
    monkeypatch.setattr(IP, "_held", lambda db, zone_id: set())  # as if this server had read before that
    ip = _associate(world, admin, net)
    assert ip["ipaddress"] == "198.51.100.11"
    with world.state.sessions() as db:
        keys = list(db.scalars(select(UserIpAddress.ip_key).where(UserIpAddress.ip_key.is_not(None))))
    assert len(keys) == len(set(keys)) == 2


def test_a_removed_nic_takes_only_its_own_networks_rules(world: World, admin: Caller) -> None:
    from hvcloud.server.db.models import Nic

    net, vms = _implemented(world, vms=1)
    _other, other_vms = _implemented(world, vms=1, name="other", cidr="10.1.2.0/24")
    ip = _associate(world, admin, net)
    _ok_job(admin, "createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22, privateport=22,
            virtualmachineid=vms[0])
    with world.state.sessions() as db:
        own = db.scalars(select(Nic.id).where(Nic.vm_id == vms[0])).one()
        foreign = db.scalars(select(Nic.id).where(Nic.vm_id == other_vms[0])).one()
    asyncio.run(rule_jobs.forget_vm(world.steps(), vms[0], [foreign]))
    assert admin.ok("listPortForwardingRules")["count"] == 1, "a NIC of another network: the rule stays"
    world.agents.sent.clear()
    asyncio.run(routing.withdraw_vm(world.steps(), vms[0], [own]))
    assert admin.ok("listPortForwardingRules") == {}
    assert world.agents.of_type(R.SetPortForwardingRulesCommand)[0][1].rules[0].revoked is True


def test_allocatedonly_false_lists_the_free_addresses_too(world: World, admin: Caller) -> None:
    net, _vms = _implemented(world, vms=1)
    _associate(world, admin, net)
    listed = admin.ok("listPublicIpAddresses", allocatedonly=False)
    assert listed["count"] == 11, "the range .10-.20"
    states = [(i["ipaddress"], i["state"]) for i in listed["publicipaddress"]]
    assert states[:3] == [("198.51.100.10", "Allocated"), ("198.51.100.11", "Allocated"), ("198.51.100.12", "Free")]
    free = admin.ok("listPublicIpAddresses", allocatedonly=False, state="Free", page=2, pagesize=4)
    assert free["count"] == 9 and [i["ipaddress"] for i in free["publicipaddress"]] == \
        [f"198.51.100.{n}" for n in (16, 17, 18, 19)]
    assert admin.ok("listPublicIpAddresses", allocatedonly=False, ipaddress="198.51.100.20")["publicipaddress"][0][
        "state"] == "Free"
    assert admin.ok("listPublicIpAddresses", allocatedonly=False, issourcenat=True)["count"] == 1
    assert admin.ok("listPublicIpAddresses", allocatedonly=False, associatednetworkid=net)["count"] == 2
    status, body = admin.call("listPublicIpAddresses", allocatedonly=False, page=1)
    assert status == 431, body


def test_a_rule_deleted_while_its_creation_is_on_the_wire_is_still_withdrawn(world: World, admin: Caller) -> None:
    """The delete's rows change while the create's batch is being sent: the create's job must not
    take the revoked rule for applied (nor delete it unsent); the delete's job sends it revoked."""
    net, vms = _implemented(world, vms=1)
    ip = _associate(world, admin, net)
    hosts = world.agents
    assert isinstance(hosts, FailingHosts)
    seen: list[str] = []

    def revoke_meanwhile(db: Any) -> None:
        for rule in db.scalars(select(FirewallRule).where(FirewallRule.purpose == "PortForwarding")):
            rule.state = "Revoke"
            seen.append(rule.id)

    original = hosts.send

    async def send(host_id: str, command: Command, wait: float | None = None) -> Answer:
        answer = await original(host_id, command, wait)
        if isinstance(command, R.SetPortForwardingRulesCommand) and not seen:
            world.tx(revoke_meanwhile)
        return answer

    hosts.send = send  # type: ignore[method-assign]
    status, body = admin.call("createPortForwardingRule", ipaddressid=ip["id"], protocol="tcp", publicport=22,
                              privateport=22, virtualmachineid=vms[0], openfirewall=False)
    assert status == 200, body
    assert admin.wait(body["jobid"])["jobstatus"] == 1
    assert seen and admin.ok("listPortForwardingRules")["portforwardingrule"][0]["state"] == "Revoke", \
        "left for the delete's job"
    hosts.sent.clear()
    asyncio.run(rule_jobs.apply_change(world.steps(), net, rule_jobs.RR.Change(rule_ids=seen)))
    [(_h, gone)] = hosts.of_type(R.SetPortForwardingRulesCommand)
    assert gone.rules[0].revoked is True
    assert admin.ok("listPortForwardingRules") == {}
