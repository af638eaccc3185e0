"""A virtual router driven through a real agent process over HTTPS (simulator driver): the
DomainRouter StartCommand reaches the simulated host's RouterHost, its commands follow, the router
is in the host's VM state report, and it is back after the agent is killed and restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvcloud.wire import routing as R
from tests.support.agent_process import AgentProcess
from tests.support.wire_samples import sample

pytest.importorskip("hvcloud.router.simulated", reason="the simulated router runtime (H-routerrt) is not merged")

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"
CHECK = "com.cloud.agent.api.CheckVirtualMachineCommand"
ROUTER = "r-12-VM"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path / "agent", hosts=2).start()
    yield proc
    proc.kill()


def report(agent: AgentProcess, index: int) -> dict[str, str]:
    async def go() -> dict[str, str]:
        async with agent.client(index) as c:
            return await c.vm_state_report()
    return asyncio.run(go())


def ok(agent: AgentProcess, fqcn: str, body: dict[str, Any]) -> dict[str, Any]:
    fields = agent.send_body(1, fqcn, body)
    assert fields["result"] is True, fields
    return fields


def test_router_lifecycle_over_a_real_agent(agent: AgentProcess) -> None:
    fields = ok(agent, START, sample("StartCommand-router"))
    assert fields["vm"]["name"] == ROUTER  # type: ignore[index]
    assert ok(agent, CHECK, {"vmName": ROUTER})["state"] == "PowerOn"
    assert report(agent, 1) == {ROUTER: "PowerOn"}
    assert ROUTER not in report(agent, 0), "the router runs on the host it was started on only"

    ok(agent, R.DnsMasqConfigCommand.FQCN, sample("DnsMasqConfigCommand"))
    ok(agent, R.DhcpEntryCommand.FQCN, sample("DhcpEntryCommand"))
    ok(agent, R.VmDataCommand.FQCN, sample("VmDataCommand"))
    ok(agent, R.SavePasswordCommand.FQCN, sample("SavePasswordCommand"))
    bad = sample("DhcpEntryCommand")
    bad["vmName"] = "web-1\ndhcp-option=6,6.6.6.6"
    refused = agent.send_body(1, R.DhcpEntryCommand.FQCN, bad)
    assert refused["result"] is False and "invalid host name" in str(refused["details"])

    # the agent dies and comes back: the router is recovered from the host's state
    agent.kill()
    agent.start()
    assert report(agent, 1) == {ROUTER: "PowerOn"}
    ok(agent, R.DhcpEntryCommand.FQCN, sample("DhcpEntryCommand"))

    ok(agent, STOP, {"vmName": ROUTER, "expungeVM": False})
    assert report(agent, 1) == {ROUTER: "PowerOff"}
    ok(agent, START, sample("StartCommand-router"))
    assert ok(agent, STOP, {"vmName": ROUTER, "expungeVM": True})["details"] == f"router {ROUTER} destroyed"
    assert report(agent, 1) == {}
