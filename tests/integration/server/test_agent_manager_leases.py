"""The AgentManager under host leases, in-process on SQLite against a real simulator agent: it pings
only hosts it owns, stops writing a host another live server took, sends to such a host over its own
client, and takes the host back (Up at once, pings resuming) when that server's lease runs out."""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Host, ManagementServer
from hvcloud.server.jobs import leases, store
from hvcloud.server.orchestration import host_leases
from hvcloud.server.orchestration.agents import AgentUnavailable, HostNotConnected
from hvcloud.server.state import ServerState
from hvcloud.wire import commands as C
from tests.support.agent_process import AgentProcess
from tests.support.server_api import Caller
from tests.support.server_in_process import in_process_server
from tests.support.wait import wait_for, wait_for_count

with warnings.catch_warnings():
    warnings.simplefilter("ignore")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("agent") / "data", hosts=2).start()
    yield proc
    proc.stop()


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[tuple[ServerState, Caller]]:
    config = replace(ServerConfig.build(tmp_path / "data"), ping_interval_seconds=0.3, ping_timeout_multiplier=100,
                     host_stats_interval_seconds=60, agent_connect_timeout_seconds=2, lease_seconds=1.5)
    with in_process_server(config) as managed:
        yield managed




def host_row(state: ServerState, host_id: str) -> Host:
    with state.sessions() as db:
        host = db.get(Host, host_id)
        assert host is not None
        return host


def add_host(admin: Caller, agent: AgentProcess, index: int) -> dict[str, Any]:
    """A zone, pod and cluster holding the agent's host ``index``, added through the API."""
    zone = admin.ok("createZone", name="z", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")["zone"]
    pod = admin.ok("createPod", name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                   startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = admin.ok("addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    added = admin.ok("addHost", hypervisor="Simulator", url=agent.url(index), username=agent.username,
                     password=agent.password, zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"])
    host: dict[str, Any] = added["host"][0]
    return host


def other_server(state: ServerState, *, alive: bool) -> str:
    """A second server known only by its row: alive with a heartbeat in the future, dead in the past."""
    server_id = str(uuid.UUID(int=1))
    offset = timedelta(seconds=600 if alive else -600)
    with state.sessions.begin() as db:
        leases.register(db, server_id)
        db.execute(update(ManagementServer).where(ManagementServer.id == server_id)
                   .values(heartbeat=store.precise_now() + offset))
    return server_id


def test_owner_pings_others_send_and_a_dead_owner_is_replaced(managed: tuple[ServerState, Caller],
                                                              agent: AgentProcess, tmp_path: Path) -> None:
    state, admin = managed
    manager = state.agents
    assert manager is not None and manager.server_id == state.server_id
    added = add_host(admin, agent, 0)
    host_id = added["id"]
    assert added["managementserverid"] == state.server_id  # the adding server owns it
    wait_for("the manager to own and ping the host", lambda: host_id in manager.owned_host_ids()
             and host_id in manager.host_ids())

    peer = other_server(state, alive=True)
    with state.sessions.begin() as db:
        assert host_leases.take(db, host_id, peer)
    wait_for("the manager to drop the host", lambda: host_id not in manager.host_ids()
             and host_id not in manager.owned_host_ids())
    frozen = host_row(state, host_id).last_pinged
    assert frozen is not None
    # five passes of the ping scheduler: nobody here pings or writes the host any more
    wait_for_count("ping scheduler passes", lambda: manager.stats.ticks, 5)
    assert host_row(state, host_id).last_pinged == frozen
    assert admin.ok("listHosts", id=host_id)["host"][0]["managementserverid"] == peer

    sent = manager.stats.remote_sends
    assert manager.send_sync(host_id, C.CheckHealthCommand(), wait=10).result is True
    assert manager.stats.remote_sends == sent + 1 and host_id not in manager.host_ids()

    with state.sessions.begin() as db:  # the owner says the host is not Up: nobody may send to it
        db.execute(update(Host).where(Host.id == host_id).values(status="Disconnected"))
    with pytest.raises(HostNotConnected):
        manager.send_sync(host_id, C.CheckHealthCommand(), wait=5)
    with state.sessions.begin() as db:
        db.execute(update(Host).where(Host.id == host_id).values(status="Up"))

    claimed = manager.stats.claimed
    other_server(state, alive=False)  # the peer's lease runs out
    wait_for("the manager to take the host back", lambda: host_row(state, host_id).owner_server_id == state.server_id)
    wait_for("pings to resume", lambda: (host_row(state, host_id).last_pinged or frozen) > frozen)
    assert host_row(state, host_id).status == "Up" and manager.stats.claimed == claimed + 1
    assert manager.send_sync(host_id, C.CheckHealthCommand(), wait=10).result is True
    assert manager.stats.remote_sends == sent + 1  # sent over its own link again


def test_a_command_outstanding_on_another_servers_host_fails_when_that_host_goes_down(
        managed: tuple[ServerState, Caller], agent: AgentProcess) -> None:
    state, admin = managed
    manager = state.agents
    assert manager is not None
    host_id = add_host(admin, agent, 1)["id"]
    wait_for("the manager to ping the host", lambda: host_id in manager.host_ids())
    peer = other_server(state, alive=True)
    with state.sessions.begin() as db:
        assert host_leases.take(db, host_id, peer)
    wait_for("the manager to drop the host", lambda: host_id not in manager.host_ids())

    agent.faults(1, {"CheckHealthCommand": {"mode": "hang", "seconds": 60}})
    outcome: dict[str, Any] = {}

    def send() -> None:
        started = time.monotonic()
        try:
            manager.send_sync(host_id, C.CheckHealthCommand(), wait=50)
            outcome["error"] = None
        except Exception as exc:
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    sender = threading.Thread(target=send)
    try:
        sender.start()
        # three passes of the ping scheduler: the command is outstanding and nothing abandons it
        wait_for_count("ping scheduler passes", lambda: manager.stats.ticks, 3)
        assert sender.is_alive(), outcome
        with state.sessions.begin() as db:  # its owner declares the host Down
            db.execute(update(Host).where(Host.id == host_id).values(status="Down"))
        sender.join(timeout=10)
        assert not sender.is_alive(), "the command still waits on a host its owner declared Down"
    finally:
        agent.faults(1, {})
        sender.join(timeout=60)
    assert isinstance(outcome["error"], AgentUnavailable), outcome
    assert "went Down before it answered" in str(outcome["error"])
