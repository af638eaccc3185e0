"""The agent fuzzer's cases for the router and NIC commands, with a router runtime on the host (an
in-memory one): every answer is well formed, nothing crashes a handler or reaches a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud import logs
from hvcloud.wire import routing as R
from tests.fuzz import agent_fuzz
from tests.support.agent_harness import AgentHarness
from tests.support.fake_routers import FakeRouterHost
from tests.support.wire_samples import sample

MAX_BODY = 64 * 1024
ROUTER_COMMANDS = {R.DhcpEntryCommand.FQCN, R.VmDataCommand.FQCN, R.SavePasswordCommand.FQCN,
                   R.DnsMasqConfigCommand.FQCN, R.IpAssocCommand.FQCN, "com.cloud.agent.api.StartCommand",
                   "com.cloud.agent.api.StopCommand", "com.cloud.agent.api.RebootCommand",
                   "com.cloud.agent.api.CheckVirtualMachineCommand", "com.cloud.agent.api.PlugNicCommand",
                   "com.cloud.agent.api.UnPlugNicCommand", R.SetSourceNatCommand.FQCN,
                   R.SetPortForwardingRulesCommand.FQCN, R.SetStaticNatRulesCommand.FQCN,
                   R.SetFirewallRulesCommand.FQCN, R.LoadBalancerConfigCommand.FQCN,
                   R.AggregationControlCommand.FQCN}


@pytest.fixture
def configured_logs() -> Iterator[None]:
    logs.configure("warning", json_output=False)
    yield


def test_router_commands_under_fuzzing(tmp_path: Path, configured_logs: None) -> None:
    agent = AgentHarness(tmp_path / "agent", max_body=MAX_BODY)
    routers = FakeRouterHost()
    agent.host.routers = routers
    for fqcn, body in agent_fuzz.warm_up_bodies():
        assert agent.post(fqcn, body).status_code == 200
    assert agent.answer("com.cloud.agent.api.StartCommand", sample("StartCommand-router"))[1]["result"] is True
    tally = agent_fuzz.Tally.empty()
    seen: set[str] = set()
    for case in agent_fuzz.cases(20261207, 4000, MAX_BODY):
        if case.fqcn not in ROUTER_COMMANDS:
            continue
        seen.add(case.fqcn)
        r = agent.post(case.fqcn, case.body)
        agent_fuzz.judge(case, r.status_code, r.headers.get("content-type", ""), r.content, {}, {}, tally)
    assert seen == ROUTER_COMMANDS
    assert tally.failures == []
    assert tally.counts.get("accepted", 0) > 0 and tally.counts.get("failed-in-band", 0) > 0
    # what reached the runtime is what the agent validated: no entry carries a control character
    for name, router in routers.held.items():
        texts = [name, *(json.dumps(e.__dict__) for e in router.entries.values())]
        assert not any(ch in t for t in texts for ch in "\n\r\x00"), texts
    # and so is every public-side change: no control character in any address, id or CIDR (a
    # fuzzed AggregationControlCommand Start may have left a batch open: drop it, then one good one)
    agg = {"action": "Cleanup", "accessDetails": sample("SetFirewallRulesCommand")["accessDetails"]}
    assert agent.answer(R.AggregationControlCommand.FQCN, agg)[1]["result"] is True
    assert agent.answer(R.SetFirewallRulesCommand.FQCN, sample("SetFirewallRulesCommand"))[1]["result"] is True
    changes = [repr(call[1]) for call in routers.calls if call[0] == "apply"]
    assert changes
    assert not any(ch in t for t in changes for ch in ("\\n", "\\r", "\\x00")), changes[:3]
