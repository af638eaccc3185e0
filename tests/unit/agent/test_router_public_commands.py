"""The router's public-side commands through the agent's real HTTP app against the simulated router
host (the same validation as the namespace runtime): the wire → RuleChange translation, per-rule
results as CloudStack's Set*Answers, aggregation as one change, and clean ``result:false`` answers
naming the field for bad, hostile and oversized TOs, with nothing applied."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hvcloud.router.simulated import SimulatedRouterHost
from hvcloud.wire import routing as R
from tests.support.agent_harness import AgentHarness
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
ROUTER = "r-12-VM"
ACCESS = {"router.name": ROUTER, "router.ip": "169.254.2.17", "router.guest.ip": "10.1.1.1"}
SNAT, PUB = "192.0.2.40", "192.0.2.41"


def ip_to(ip: str, source_nat: bool = False, add: bool = True) -> dict[str, Any]:
    return {"publicIp": ip, "sourceNat": source_nat, "add": add, "broadcastUri": "vlan://untagged",
            "vlanGateway": "192.0.2.1", "vlanNetmask": "255.255.255.0", "vifMacAddress": "1e:00:4a:00:00:10",
            "trafficType": "Public", "networkName": "cloudbr0"}


def pf_to(rid: int, src: list[int], dst: list[int], dst_ip: str = "10.1.1.10", revoked: bool = False,
          proto: str = "TCP") -> dict[str, Any]:
    return {"id": rid, "srcIp": PUB, "protocol": proto, "srcPortRange": src, "dstIp": dst_ip, "dstPortRange": dst,
            "revoked": revoked, "purpose": "PortForwarding", "trafficType": "Ingress"}


def fw_to(rid: int, ports: list[int] | None = None, cidrs: list[str] | None = None, revoked: bool = False,
          proto: str = "tcp", **kw: Any) -> dict[str, Any]:
    return {"id": rid, "srcIp": PUB, "protocol": proto, "srcPortRange": ports, "revoked": revoked,
            "sourceCidrList": cidrs or ["0.0.0.0/0"], "purpose": "Firewall", "trafficType": "Ingress", **kw}


@pytest.fixture
def routers(agent: AgentHarness) -> SimulatedRouterHost:
    host = SimulatedRouterHost()
    agent.host.routers = host
    _, fields = agent.answer(START, sample("StartCommand-router"))
    assert fields["result"] is True, fields
    _cls, fields = agent.answer(R.IpAssocCommand.FQCN, {"ipAddresses": [ip_to(SNAT, True), ip_to(PUB)],
                                                       "accessDetails": ACCESS})
    assert fields["result"] is True and fields["results"] == [SNAT, PUB], fields
    return host


def test_ip_assoc_makes_addresses_and_release_drops_their_rules(agent: AgentHarness,
                                                                routers: SimulatedRouterHost) -> None:
    state = routers.public_state(ROUTER)
    assert [(a.ip, a.source_nat, a.segment.trunk, a.prefix) for a in state.addresses] == [
        (SNAT, True, "cloudbr0", 24), (PUB, False, "cloudbr0", 24)]
    agent.answer(R.SetPortForwardingRulesCommand.FQCN, {"rules": [pf_to(7, [80], [8080])], "accessDetails": ACCESS})
    _, fields = agent.answer(R.IpAssocCommand.FQCN, {"ipAddresses": [ip_to(PUB, add=False)], "accessDetails": ACCESS})
    assert fields["result"] is True
    state = routers.public_state(ROUTER)
    assert [a.ip for a in state.addresses] == [SNAT] and state.port_forwards == ()


def test_port_forwards_firewall_and_static_nat(agent: AgentHarness, routers: SimulatedRouterHost) -> None:
    cls, fields = agent.answer(R.SetPortForwardingRulesCommand.FQCN, {
        "rules": [pf_to(7, [8000, 8010], [9000, 9010]), pf_to(8, [53], [53], proto="udp")], "accessDetails": ACCESS})
    assert cls == "com.cloud.agent.api.routing.SetPortForwardingRulesAnswer"
    assert fields["result"] is True and fields["results"] == ["7", "8"]
    cls, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {
        "rules": [fw_to(9, [8000, 8010], ["203.0.113.0/24"]), fw_to(10, proto="icmp", icmpType=-1, icmpCode=-1)],
        "accessDetails": ACCESS})
    assert cls == "com.cloud.agent.api.routing.SetFirewallRulesAnswer" and fields["results"] == ["9", "10"]
    state = routers.public_state(ROUTER)
    f = {x.rule_id: x for x in state.port_forwards}
    assert f["7"].public_ports == (8000, 8010) and f["7"].private_ports == (9000, 9010) and f["8"].protocol == "udp"
    fw = {x.rule_id: x for x in state.firewall}
    assert fw["9"].cidrs == ("203.0.113.0/24",) and fw["10"].icmp_type is None and fw["10"].protocol == "icmp"
    # revoked: removed
    agent.answer(R.SetPortForwardingRulesCommand.FQCN, {"rules": [pf_to(7, [8000, 8010], [9000, 9010], revoked=True)],
                                                         "accessDetails": ACCESS})
    assert [x.rule_id for x in routers.public_state(ROUTER).port_forwards] == ["8"]
    # static NAT on the source NAT address: refused, nothing applied
    cls, fields = agent.answer(R.SetStaticNatRulesCommand.FQCN, {
        "rules": [{"id": 3, "srcIp": SNAT, "dstIp": "10.1.1.20", "revoked": False}], "accessDetails": ACCESS})
    assert cls == "com.cloud.agent.api.routing.SetStaticNatRulesAnswer"
    assert fields["result"] is False and fields["results"] == ["Failed"] and "source NAT" in fields["details"]
    assert routers.public_state(ROUTER).static_nats == ()


def test_egress_rules_and_default(agent: AgentHarness, routers: SimulatedRouterHost) -> None:
    _cls, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [
        {"id": 20, "protocol": "tcp", "srcPortRange": [443, 443], "destCidrList": ["198.51.100.0/24"],
         "sourceCidrList": ["10.1.1.0/24"], "trafficType": "Egress", "defaultEgressPolicy": False,
         "purpose": "Firewall"}], "accessDetails": ACCESS})
    assert fields["result"] is True, fields
    state = routers.public_state(ROUTER)
    assert state.egress_default_allow is False
    (rule,) = state.firewall
    assert rule.direction == "egress" and rule.cidrs == ("198.51.100.0/24",) and rule.public_ip is None
    # CloudStack's default egress rule (type System, id 0, protocol all): the default only
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [
        {"id": 0, "protocol": "all", "sourceCidrList": ["10.1.1.0/24"], "destCidrList": ["0.0.0.0/0"],
         "trafficType": "Egress", "type": "System", "defaultEgressPolicy": True, "purpose": "Firewall"}],
        "accessDetails": ACCESS})
    assert fields["result"] is True, fields
    state = routers.public_state(ROUTER)
    assert state.egress_default_allow is True and [r.rule_id for r in state.firewall] == ["20"]


def test_load_balancer_config_is_the_whole_set(agent: AgentHarness, routers: SimulatedRouterHost) -> None:
    lb = {"uuid": "lb-1", "srcIp": PUB, "srcPort": 80, "protocol": "tcp", "algorithm": "leastconn",
          "destinations": [{"destIp": "10.1.1.10", "destPort": 8080}, {"destIp": "10.1.1.11", "destPort": 8080},
                           {"destIp": "10.1.1.12", "destPort": 8080, "revoked": True}]}
    _cls, fields = agent.answer(R.LoadBalancerConfigCommand.FQCN, {"loadBalancers": [lb], "accessDetails": ACCESS})
    assert fields["result"] is True, fields
    (b,) = routers.public_state(ROUTER).load_balancers
    assert (b.rule_id, b.public_port, b.private_port, b.algorithm, b.backends) == (
        "lb-1", 80, 8080, "leastconn", ("10.1.1.10", "10.1.1.11"))
    agent.answer(R.LoadBalancerConfigCommand.FQCN, {"loadBalancers": [dict(lb, revoked=True)], "accessDetails": ACCESS})
    assert routers.public_state(ROUTER).load_balancers == ()


def test_aggregation_applies_one_change(agent: AgentHarness, routers: SimulatedRouterHost) -> None:
    loads = routers._routers[ROUTER].rule_loads
    agg = R.AggregationControlCommand.FQCN
    assert agent.answer(agg, {"action": "Start", "accessDetails": ACCESS})[1]["result"] is True
    _, fields = agent.answer(R.SetPortForwardingRulesCommand.FQCN, {"rules": [pf_to(7, [80], [80])],
                                                                     "accessDetails": ACCESS})
    assert fields["result"] is True and "queued" in fields["details"]
    agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(9, [80])], "accessDetails": ACCESS})
    agent.answer(R.SetPortForwardingRulesCommand.FQCN, {"rules": [pf_to(7, [80], [80], revoked=True),
                                                                  pf_to(8, [81], [81])], "accessDetails": ACCESS})
    assert routers.public_state(ROUTER).port_forwards == ()  # nothing yet
    _, fields = agent.answer(agg, {"action": "Finish", "accessDetails": ACCESS})
    assert fields["result"] is True, fields
    state = routers.public_state(ROUTER)
    assert [f.rule_id for f in state.port_forwards] == ["8"] and [r.rule_id for r in state.firewall] == ["9"]
    assert routers._routers[ROUTER].rule_loads == loads + 1
    # cleanup drops a batch
    agent.answer(agg, {"action": "Start", "accessDetails": ACCESS})
    agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(9, [80], revoked=True)], "accessDetails": ACCESS})
    agent.answer(agg, {"action": "Cleanup", "accessDetails": ACCESS})
    # nothing to finish: the server learns its batch was not applied
    assert agent.answer(agg, {"action": "Finish", "accessDetails": ACCESS})[1]["result"] is False
    assert [r.rule_id for r in routers.public_state(ROUTER).firewall] == ["9"]
    assert agent.answer(agg, {"action": "Explode", "accessDetails": ACCESS})[1]["result"] is False


@pytest.mark.parametrize("fqcn,rules,needle", [
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [80, 90], [80])], "rules[0].dstPortRange"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [90, 80], [90, 80])], "rules[0].srcPortRange"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [0], [80])], "rules[0].srcPortRange"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [1, 2, 3], [1, 2, 3])], "rules[0].srcPortRange"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [80], [80], proto="icmp")], "rules[0].protocol"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [80], [80], dst_ip="10.2.2.2")], "private_ip"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [80], [80], dst_ip="10.1.1.10\nflush ruleset")], "dstIp"),
    (R.SetPortForwardingRulesCommand.FQCN, [pf_to(1, [80, 90], [80, 90]), pf_to(2, [85], [85])],
     "port_forwards[1].public_ports"),
    (R.SetPortForwardingRulesCommand.FQCN, [dict(pf_to(1, [80], [80]), id=None)], "rules[0].id"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, cidrs=["10.0.0.0/40"])], "rules[0].sourceCidrList[0]"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, cidrs=["x; drop"])], "rules[0].sourceCidrList[0]"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, [22], proto="icmp")], "rules[0].srcPortRange"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, proto="icmp", icmpType=300)], "rules[0].icmpType"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, proto="sctp")], "rules[0].protocol"),
    (R.SetFirewallRulesCommand.FQCN, [dict(fw_to(1), srcIp="192.0.2.99")], "public_ip"),
    (R.SetFirewallRulesCommand.FQCN, [fw_to(1, cidrs=["10.0.0.0/8"] * 300)], "sourceCidrList"),
])
def test_bad_rules_are_refused_naming_the_field_and_nothing_applied(
        agent: AgentHarness, routers: SimulatedRouterHost, fqcn: str, rules: list[dict[str, Any]],
        needle: str) -> None:
    before = routers.public_state(ROUTER)
    good = pf_to(99, [7000], [7000]) if "PortForwarding" in fqcn else fw_to(99, [7000])
    _, fields = agent.answer(fqcn, {"rules": [good, *copy.deepcopy(rules)], "accessDetails": ACCESS})
    assert fields["result"] is False, fields
    assert fields["results"] == ["Failed"] * (len(rules) + 1)
    assert needle.replace("rules[0]", "rules[1]").replace("[1].public_ports", "[2].public_ports") in fields["details"] \
        or needle in fields["details"], fields["details"]
    assert routers.public_state(ROUTER) == before


def test_oversized_and_unknown_router(agent: AgentHarness, routers: SimulatedRouterHost) -> None:
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [{"id": i} for i in range(10_001)],
                                                               "accessDetails": ACCESS})
    assert fields["result"] is False and "at most" in fields["details"]
    other = dict(ACCESS, **{"router.name": "r-9-VM"})
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(1)], "accessDetails": other})
    assert fields["result"] is False and "does not exist" in fields["details"]


def test_hosts_without_routers_refuse(agent: AgentHarness) -> None:
    agent.host.routers = None
    _, fields = agent.answer(R.IpAssocCommand.FQCN, {"ipAddresses": [ip_to(SNAT, True)], "accessDetails": ACCESS})
    assert fields["result"] is False and fields["results"] == ["Failed"]
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(1)], "accessDetails": ACCESS})
    assert fields["result"] is False and "does not run virtual routers" in fields["details"]


def test_an_abandoned_batch_expires(agent: AgentHarness, routers: SimulatedRouterHost,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hvcloud.agent.handlers import router as handlers

    agg = R.AggregationControlCommand.FQCN
    agent.answer(agg, {"action": "Start", "accessDetails": ACCESS})
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(9, [80])], "accessDetails": ACCESS})
    assert "queued" in fields["details"]
    monkeypatch.setattr(handlers, "BATCH_TTL", -1.0)
    _, fields = agent.answer(R.SetFirewallRulesCommand.FQCN, {"rules": [fw_to(10, [81])], "accessDetails": ACCESS})
    assert fields["result"] is True and "queued" not in fields["details"]
    assert [r.rule_id for r in routers.public_state(ROUTER).firewall] == ["10"]
    assert agent.answer(agg, {"action": "Finish", "accessDetails": ACCESS})[1]["result"] is False
