"""NIC hot-plug and VXLAN NICs through the agent's HTTP app with the simulator driver."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from hvcloud.hypervisor.driver import NicInfo
from tests.support.agent_harness import AgentHarness
from tests.support.fake_routers import FakeRouterHost
from tests.support.wire_samples import sample

START = "com.cloud.agent.api.StartCommand"
PLUG = "com.cloud.agent.api.PlugNicCommand"
UNPLUG = "com.cloud.agent.api.UnPlugNicCommand"
VM = "i-2-17-VM"


@pytest.fixture
def vm(agent: AgentHarness) -> str:
    assert agent.answer(START, sample("StartCommand"))[1]["result"] is True
    return VM


def nics(agent: AgentHarness) -> list[NicInfo]:
    out: list[NicInfo] = agent.host.driver.list_nics(VM)
    return out


def test_vxlan_nic_at_start(agent: AgentHarness) -> None:
    body = sample("StartCommand")
    body["vm"]["nics"][0].update(broadcastUri="vxlan://5001", isolationUri="vxlan://5001", name="cloudbr1")
    assert agent.answer(START, body)[1]["result"] is True
    assert [(n.vlan, n.vxlan, n.network) for n in nics(agent)] == [(None, 5001, "cloudbr1")]


def test_plug_and_unplug(agent: AgentHarness, vm: str) -> None:
    cls, fields = agent.answer(PLUG, sample("PlugNicCommand"))
    assert cls == "com.cloud.agent.api.PlugNicAnswer" and fields["result"] is True, fields
    assert [(n.mac, n.device_id, n.vlan, n.vxlan) for n in nics(agent)] == [
        ("02:00:51:2c:00:0e", 0, 261, None), ("02:00:2b:44:00:05", 1, None, 5001)]
    # the same NIC again is success, and changes nothing
    fields = agent.answer(PLUG, sample("PlugNicCommand"))[1]
    assert fields["result"] is True and "already has" in fields["details"]
    assert len(nics(agent)) == 2

    cls, fields = agent.answer(UNPLUG, sample("UnPlugNicCommand"))
    assert cls == "com.cloud.agent.api.UnPlugNicAnswer" and fields["result"] is True
    assert [n.mac for n in nics(agent)] == ["02:00:51:2c:00:0e"]
    # a NIC that is not there is already unplugged
    fields = agent.answer(UNPLUG, sample("UnPlugNicCommand"))[1]
    assert fields["result"] is True and "has no NIC" in fields["details"]


def test_plug_takes_a_free_device_when_the_id_is_taken(agent: AgentHarness, vm: str) -> None:
    body = sample("PlugNicCommand")
    body["nic"]["deviceId"] = 0
    assert agent.answer(PLUG, body)[1]["result"] is True
    assert [n.device_id for n in nics(agent)] == [0, 1]


def refused(agent: AgentHarness, fqcn: str, body: Any) -> str:
    r = agent.post(fqcn, body)
    assert r.status_code == 200, r.text
    ((_cls, fields),) = r.json()[0].items()
    assert fields["result"] is False, fields
    details: str = fields["details"]
    return details


@pytest.mark.parametrize("fqcn,change,needle", [
    (PLUG, lambda b: b.update(instanceName=None), "names no VM"),
    (PLUG, lambda b: b.update(instanceName="i-2-99-VM"), "not found"),
    (PLUG, lambda b: b.update(instanceName="../i-2-17-VM"), "invalid VM name"),
    (PLUG, lambda b: b.update(nic=None), "carries no NIC"),
    (PLUG, lambda b: b["nic"].update(mac="02:00:2b:44:00"), "invalid MAC"),
    (PLUG, lambda b: b["nic"].update(broadcastUri="vxlan://0"), "out of range"),
    (PLUG, lambda b: b["nic"].update(broadcastUri="nvgre://3"), "unsupported network isolation"),
    (PLUG, lambda b: b.update(vmType="DomainRouter"), "issue #16"),
    (UNPLUG, lambda b: b.update(instanceName=None), "names no VM"),
    (UNPLUG, lambda b: b.update(instanceName="i-2-99-VM"), "not found"),
    (UNPLUG, lambda b: b.update(nic=None), "carries no NIC"),
    (UNPLUG, lambda b: b["nic"].update(mac=None), "invalid MAC"),
])
def test_hostile_plug_commands(agent: AgentHarness, vm: str, fqcn: str, change: Any, needle: str) -> None:
    body = copy.deepcopy(sample("PlugNicCommand" if fqcn == PLUG else "UnPlugNicCommand"))
    change(body)
    assert needle in refused(agent, fqcn, body)
    assert len(nics(agent)) == 1


def test_no_nic_is_plugged_into_a_router(agent: AgentHarness) -> None:
    agent.host.routers = FakeRouterHost()
    assert agent.answer(START, sample("StartCommand-router"))[1]["result"] is True
    body = sample("PlugNicCommand")
    body["instanceName"] = "r-12-VM"
    assert "issue #16" in refused(agent, PLUG, body)
