"""Regression: a reconnect to an agent that accepts connections but hangs on commands must fail
within the quick-step deadline (the ping timeout), not wait out the step deadline sized for pool
mounts; otherwise the host sits in Disconnected and never goes Down on the ``ping.timeout`` schedule.

The hang lasts 8 s and the long step deadline is 30 s: with the quick deadline the connect fails
(SetupCommand unanswered); without it, it would succeed once the hang ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hvcloud.server.orchestration import discovery
from hvcloud.server.orchestration.agents import AgentUnavailable
from tests.support.agent_process import AgentProcess


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path / "data", hosts=1).start()
    yield proc
    proc.stop()


def _request(agent: AgentProcess) -> discovery.ConnectRequest:
    return discovery.ConnectRequest(host_id=str(uuid.uuid4()), guid=str(uuid.uuid4()),
                                    address=discovery.AgentAddress(agent.addresses[0], agent.addresses[0],
                                                                   agent.port),
                                    zone_id=str(uuid.uuid4()), pod_id=str(uuid.uuid4()),
                                    cluster_id=str(uuid.uuid4()), hypervisor="Hyperv", need_setup=False)


def test_reconnect_to_a_hung_agent_fails_within_the_quick_deadline(agent: AgentProcess) -> None:
    async def connect(quick: float | None) -> discovery.ConnectResult:
        async with agent.client(0) as client:
            return await discovery.connect(client, _request(agent), 30.0, quick)

    assert asyncio.run(connect(None)).fingerprint, "a healthy agent connects"
    agent.faults(0, {"SetupCommand": {"mode": "hang", "seconds": 8}})
    with pytest.raises(AgentUnavailable, match="SetupCommand: no answer within 1 s"):
        asyncio.run(connect(1.0))
