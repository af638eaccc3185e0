"""SecurityGroupRulesCmd through the agent's HTTP app with the simulator driver, and the
translation of its rules and of security-group NICs."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from hvcloud.agent import sg_translate
from hvcloud.agent.translate import TranslationError, nic_spec
from hvcloud.hypervisor.driver import NotSupported
from hvcloud.network.security_groups import NicPolicy, SgRule
from hvcloud.wire.security_groups import IpPortAndProto, SecurityGroupRulesCmd
from hvcloud.wire.to import NicTO
from tests.support.agent_harness import AgentHarness
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"
SG = "com.cloud.agent.api.SecurityGroupRulesCmd"
ANSWER = "com.cloud.agent.api.SecurityGroupRuleAnswer"
VM = "i-2-17-VM"
MAC = "02:00:51:2c:00:0e"


def cmd(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "guestIp": "10.1.1.67", "vmName": VM, "guestMac": MAC, "seqNum": 5, "vmId": 17,
        "ingressRuleSet": [
            {"proto": "tcp", "startPort": 22, "endPort": 22, "allowedCidrs": ["0.0.0.0/0"]},
            {"proto": "icmp", "startPort": 8, "endPort": -1, "allowedCidrs": ["10.1.1.0/24"]},
            {"proto": "udp", "startPort": 53, "endPort": 53, "allowedCidrs": []},
        ],
        "egressRuleSet": [{"proto": "6", "startPort": 443, "endPort": 443, "allowedCidrs": ["192.0.2.7/32"]}],
        "secIps": ["10.1.1.68"], "wait": 0,
    }
    body.update(over)
    return body


@pytest.fixture
def vm(agent: AgentHarness) -> str:
    body = sample("StartCommand")
    body["vm"]["nics"][0]["isSecurityGroupEnabled"] = True
    body["vm"]["nics"][0]["nicSecIps"] = ["10.1.1.68"]
    assert agent.answer(START, body)[1]["result"] is True
    return VM


def policy(agent: AgentHarness) -> NicPolicy | None:
    got: NicPolicy | None = agent.host.driver.security_policy(VM, MAC)
    return got


def test_start_puts_defaults_on_security_group_nics(agent: AgentHarness, vm: str) -> None:
    p = policy(agent)
    assert p is not None and p.seq == -1 and p.ingress == () and p.ips == ("10.1.1.67", "10.1.1.68")


def test_rules_are_applied_and_answered_as_cloudstack_does(agent: AgentHarness, vm: str) -> None:
    cls, fields = agent.answer(SG, cmd())
    assert cls == ANSWER
    assert fields["result"] is True and fields["reason"] == "NONE"
    assert fields["logSequenceNumber"] == 5 and fields["vmId"] == 17
    p = policy(agent)
    assert p is not None and p.seq == 5
    assert p.ingress == (SgRule("tcp", ("0.0.0.0/0",), (22, 22)), SgRule("icmp", ("10.1.1.0/24",), None, 8, None))
    assert p.egress == (SgRule("tcp", ("192.0.2.7/32",), (443, 443)),)
    # an older command is ignored (success: the newer rules stay)
    fields = agent.answer(SG, cmd(seqNum=4, ingressRuleSet=[]))[1]
    assert fields["result"] is True
    assert policy(agent) == p


@pytest.mark.parametrize(("over", "field"), [
    ({"guestMac": None}, "guestMac"),
    ({"guestMac": "02:00:51:2c:00"}, "guestMac"),
    ({"guestIp": "10.1.1.300"}, "guestIp"),
    ({"secIps": ["x"]}, r"secIps\[0\]"),
    ({"vmName": "../../etc"}, "invalid VM name"),
    ({"seqNum": -3}, "seqNum"),
    ({"ingressRuleSet": [{"proto": "tcp", "startPort": 22, "endPort": 22, "allowedCidrs": ["10.0.0.0/99"]}]},
     r"ingressRuleSet\[0\]\.allowedCidrs\[0\]"),
    ({"ingressRuleSet": [{"proto": "tcp", "startPort": 0, "endPort": 70000, "allowedCidrs": ["10.0.0.0/8"]}]},
     r"ingressRuleSet\[0\]\.endPort"),
    ({"ingressRuleSet": [{"proto": "tcp", "startPort": 90, "endPort": 80, "allowedCidrs": ["10.0.0.0/8"]}]},
     "startPort 90 is above endPort 80"),
    ({"ingressRuleSet": [{"proto": "udp", "endPort": 80, "allowedCidrs": ["10.0.0.0/8"]}]},
     r"ingressRuleSet\[0\]\.startPort"),
    ({"egressRuleSet": [{"proto": "sctp", "startPort": 1, "endPort": 2, "allowedCidrs": ["10.0.0.0/8"]}]},
     r"egressRuleSet\[0\]\.proto"),
    ({"egressRuleSet": [{"proto": "icmp", "startPort": -1, "endPort": 0, "allowedCidrs": ["10.0.0.0/8"]}]},
     "needs a type"),
    ({"egressRuleSet": [{"proto": "icmp", "startPort": 300, "endPort": -1, "allowedCidrs": ["10.0.0.0/8"]}]},
     r"egressRuleSet\[0\]\.startPort"),
    ({"ingressRuleSet": [{"startPort": 1, "endPort": 2, "allowedCidrs": ["10.0.0.0/8"]}]},
     r"ingressRuleSet\[0\]\.proto"),
])
def test_malformed_commands_are_refused_naming_the_field(agent: AgentHarness, vm: str, over: dict[str, Any],
                                                         field: str) -> None:
    assert agent.answer(SG, cmd())[1]["result"] is True
    before = policy(agent)
    cls, fields = agent.answer(SG, cmd(**{"seqNum": 9, **over}))
    assert cls == ANSWER and fields["result"] is False and fields["reason"] == "UNKNOWN"
    assert fields["logSequenceNumber"] == over.get("seqNum", 9)
    assert re.search(field, fields["details"]), fields["details"]
    assert policy(agent) == before


def test_oversized_commands_are_refused(agent: AgentHarness, vm: str) -> None:
    rule = {"proto": "all", "allowedCidrs": ["10.0.0.1/32"]}
    fields = agent.answer(SG, cmd(ingressRuleSet=[rule] * 2000))[1]
    assert fields["result"] is False and "ingressRuleSet: more than" in fields["details"]
    fields = agent.answer(SG, cmd(ingressRuleSet=[{"proto": "all", "allowedCidrs": ["10.0.0.1/32"] * 20000}]))[1]
    assert fields["result"] is False and "allowedCidrs: more than" in fields["details"]
    fields = agent.answer(SG, cmd(secIps=[f"10.9.0.{i}" for i in range(100)]))[1]
    assert fields["result"] is False and "secIps" in fields["details"]


def test_hostile_json_types_are_refused(agent: AgentHarness, vm: str) -> None:
    before = policy(agent)
    for over, field in (({"ingressRuleSet": [{"proto": "tcp", "startPort": "22; drop", "endPort": 22}]},
                         "startPort"),
                        ({"ingressRuleSet": "tcp:22"}, "ingressRuleSet"),
                        ({"egressRuleSet": [{"proto": "tcp", "allowedCidrs": "0.0.0.0/0"}]}, "allowedCidrs"),
                        ({"seqNum": 2**70}, "seqNum"),
                        ({"guestMac": ["02:00:51:2c:00:0e"]}, "guestMac")):
        cls, fields = agent.answer(SG, cmd(**over))
        assert cls == ANSWER and fields["result"] is False and field in fields["details"], fields
    assert policy(agent) == before


def test_a_stopped_vm_or_unknown_nic_is_a_programming_failure(agent: AgentHarness, vm: str) -> None:
    fields = agent.answer(SG, cmd(guestMac="02:00:00:00:00:99"))[1]
    assert fields["result"] is False and fields["reason"] == "PROGRAMMING_FAILED"
    assert "no NIC" in fields["details"]
    agent.host.driver.stop_vm(VM, 0, force=True)
    fields = agent.answer(SG, cmd())[1]
    assert fields["result"] is False and fields["reason"] == "PROGRAMMING_FAILED"
    assert policy(agent) is None
    fields = agent.answer(SG, cmd(vmName="i-9-99-VM"))[1]
    assert fields["result"] is False and fields["reason"] == "PROGRAMMING_FAILED"


def test_a_driver_without_security_groups_cannot_bridge_firewall(agent: AgentHarness, vm: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str, p: NicPolicy) -> None:
        raise NotSupported("the test driver cannot enforce security groups")

    monkeypatch.setattr(agent.host.driver, "apply_security_groups", refuse)
    fields = agent.answer(SG, cmd())[1]
    assert fields["result"] is False and fields["reason"] == "CANNOT_BRIDGE_FIREWALL"


def test_rule_translation_details() -> None:
    c = SecurityGroupRulesCmd(vmName=VM, guestMac="02-00-51-2C-00-0E", guestIp="10.1.1.67", seqNum=None,
                              ingressRuleSet=[IpPortAndProto(proto="ALL", startPort=-1, endPort=-1,
                                                             allowedCidrs=["10.0.0.5/8", "::/0"]),
                                              IpPortAndProto(proto="17", startPort=0, endPort=65535,
                                                             allowedCidrs=["10.0.0.0/8"]),
                                              IpPortAndProto(proto="1", startPort=-1, endPort=-1,
                                                             allowedCidrs=["10.0.0.0/8"])])
    name, p = sg_translate.policy_of(c)
    assert name == VM and p.mac == MAC and p.seq == 0 and p.egress == ()
    assert p.ingress == (SgRule("all", ("10.0.0.0/8", "::/0")), SgRule("udp", ("10.0.0.0/8",), (0, 65535)),
                         SgRule("icmp", ("10.0.0.0/8",)))


def test_nic_translation_fills_security_group_fields() -> None:
    body = copy.deepcopy(sample("StartCommand")["vm"]["nics"][0])
    body.update(isSecurityGroupEnabled=True, nicSecIps=["10.1.1.70", "10.1.1.67", ""])
    spec = nic_spec(NicTO.model_validate(body), 0)
    assert spec.security_groups and spec.ips == ("10.1.1.67", "10.1.1.70")
    body.update(isSecurityGroupEnabled=None, nicSecIps=None)
    spec = nic_spec(NicTO.model_validate(body), 0)
    assert not spec.security_groups and spec.ips == ("10.1.1.67",)
    body.update(nicSecIps=["10.1.1.999"])
    with pytest.raises(TranslationError, match=r"nicSecIps\[0\]"):
        nic_spec(NicTO.model_validate(body), 0)
