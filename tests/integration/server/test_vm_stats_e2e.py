"""VM statistics collected from a real simulator agent process: the ping loop sends GetVmStatsCommand
every ``vm.stats.interval`` for the VMs the host reports running, the writer stores them per VM, and
listVirtualMachinesMetrics shows them; ``vm.stats.interval=0`` stops the collection."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Host, VMInstance, VmStats
from hvcloud.server.orchestration import planner
from hvcloud.server.state import ServerState
from tests.integration.server.test_server_hosts import START, add_host, zone_with_pools
from tests.support.agent_process import AgentProcess
from tests.support.server_api import Caller, ready_template
from tests.support.server_in_process import in_process_server
from tests.support.wait import wait_for, wait_for_count
from tests.support.wire_samples import sample

MiB = 1 << 20


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("agent") / "data", hosts=1).start()
    yield proc
    proc.stop()


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[tuple[ServerState, Caller]]:
    config = replace(ServerConfig.build(tmp_path / "data"), ping_interval_seconds=0.2, ping_timeout_multiplier=50,
                     host_stats_interval_seconds=0.2, vm_stats_interval_seconds=0.2,
                     agent_connect_timeout_seconds=2)
    with in_process_server(config) as managed:
        yield managed


def _running_vm(state: ServerState, admin: Caller, agent: AgentProcess, zone_id: str, host_id: str) -> str:
    """A VM of the API, placed on the host in the database and started on the agent by its instance name."""
    with state.sessions.begin() as db:
        template = ready_template(db, zone_id).id
    offering = admin.ok("listServiceOfferings", name="Small Instance")["serviceoffering"][0]["id"]
    vm = admin.job("deployVirtualMachine", serviceofferingid=offering, templateid=template, zoneid=zone_id,
                   startvm="false")["jobresult"]["virtualmachine"]
    with state.sessions.begin() as db:
        row, host = db.get(VMInstance, vm["id"]), db.get(Host, host_id)
        assert row is not None and host is not None
        assert planner.reserve_host(db, row, host, planner.Need(row.cpu_number * row.cpu_speed, row.memory * MiB))
        row.state, row.host_id = "Running", host_id
        name = row.instance_name
    body = sample("StartCommand")
    body["vm"]["name"] = name
    assert agent.send_body(0, START, body)["result"] is True
    return str(vm["id"])


def test_vm_stats_are_collected_and_shown(managed: tuple[ServerState, Caller], agent: AgentProcess,
                                          tmp_path: Path) -> None:
    state, admin = managed
    ids = zone_with_pools(admin, tmp_path)
    status, body = add_host(admin, ids, agent, 0)
    assert status == 200, body
    host_id = body["host"][0]["id"]
    vm_id = _running_vm(state, admin, agent, ids["zoneid"], host_id)

    def stored() -> VmStats | None:
        with state.sessions() as db:
            return db.get(VmStats, vm_id)

    first = wait_for("the VM's stats collected", stored)
    assert first.host_id == host_id and 5.0 <= first.cpu_used_percent <= 35.0  # the simulator's 20 +- 15 %
    assert first.memory_kbs == 512 * 1024 and first.disk_read_ios == 0.0
    later = wait_for("a newer collection", lambda: next(
        (s for s in [stored()] if s is not None and s.collected > first.collected), None))
    assert later.network_read_kbs >= first.network_read_kbs  # counters since the VM started

    # vm.stats.interval=0: the pings go on, the collection stops (and the stored row holds still)
    admin.ok("updateConfiguration", name="vm.stats.interval", value="0")
    manager = state.agents
    assert manager is not None
    wait_for_count("pings", lambda: manager.stats.pings, 3)  # a visit under way may still have collected
    collected = manager.stats.vm_stats
    row = stored()
    assert row is not None
    item = admin.ok("listVirtualMachinesMetrics", id=vm_id)["virtualmachine"][0]
    assert item["state"] == "Running" and item["hostid"] == host_id
    assert item["cpuused"] == f"{row.cpu_used_percent:.2f}%"
    assert item["memorykbs"] == 512 * 1024 and item["diskiopstotal"] == 0
    assert item["networkkbsread"] == int(row.network_read_kbs)
    assert item["networkread"] == f"{int(row.network_read_kbs) / 1024:.2f} MiB"
    assert item["cputotal"] == "0.5 Ghz" and item["memorytotal"] == "0.50 GiB"
    wait_for_count("pings", lambda: manager.stats.pings, 5)
    assert manager.stats.vm_stats == collected
    again = stored()
    assert again is not None and again.collected == row.collected
