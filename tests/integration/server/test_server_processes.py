"""``hvcloud server run --processes 2`` end to end: two management servers behind one address and one
SQLite file, splitting the hosts of a real simulator agent; a child killed with SIGKILL is restarted
with its identity; SIGTERM stops them all; a supervisor killed with SIGKILL takes its children with it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from tests.support.agent_process import AgentProcess
from tests.support.server_process import ServerProcess, spawned_servers
from tests.support.vm_stack import client
from tests.support.wait import wait_for

SETTINGS = ["--setting", "ping.interval=0.5", "--setting", "ping.timeout=10", "--lease-seconds", "3"]


def children(pid: int) -> set[int]:
    return set(spawned_servers(pid))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProcess]:
    (tmp_path / "agent").mkdir()
    proc = AgentProcess(tmp_path / "agent" / "data", hosts=4).start()
    yield proc
    proc.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    (tmp_path / "server" / "data").mkdir(parents=True)
    proc = ServerProcess(tmp_path / "server" / "data", None, [*SETTINGS, "--processes", "2"])
    yield proc
    proc.stop()


def _servers(cs: CloudStack) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in cs.listManagementServers(fetch_list=True)}


def test_two_processes_share_one_address_and_split_the_hosts(server: ServerProcess, agent: AgentProcess) -> None:
    cs = client(server)
    ids = wait_for("two servers Up", lambda: (s := _servers(cs)) and len(s) == 2
                   and {m["state"] for m in s.values()} == {"Up"} and s)
    data = server.data_dir
    assert set(ids) == {(data / "server-id").read_text().strip(), (data / "server-id.1").read_text().strip()}

    zone = cs.createZone(name="z", networktype="Basic", dns1="8.8.8.8", internaldns1="8.8.8.8")["zone"]
    pod = cs.createPod(zoneid=zone["id"], name="p", gateway="10.0.0.1", netmask="255.255.255.0",
                       startip="10.0.0.10", endip="10.0.0.200")["pod"]
    cluster = cs.addCluster(zoneid=zone["id"], podid=pod["id"], clustername="c", clustertype="CloudManaged",
                            hypervisor="Simulator")["cluster"][0]
    for i in range(4):
        cs.addHost(zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"], hypervisor="Simulator",
                   url=agent.url(i), username=agent.username, password=agent.password, method="post")

    def split() -> dict[str, int] | None:
        counts = {i: int(m.get("agentscount", 0)) for i, m in _servers(cs).items()}
        up = [h for h in cs.listHosts(type="Routing", fetch_list=True) if h["state"] == "Up"]
        return counts if sorted(counts.values()) == [2, 2] and len(up) == 4 else None
    counts = wait_for("the four hosts split two and two, all Up", split)
    assert set(counts) == set(ids)

    # a child killed with SIGKILL is restarted under the same server id, and the API keeps answering
    before = children(server.proc.pid)
    assert len(before) == 2, before
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = wait_for("a new child", lambda: (c := children(server.proc.pid)) and len(c) == 2 and victim not in c
                     and c)
    assert len(after & before) == 1
    wait_for("both servers Up again", lambda: len(s := _servers(cs)) == 2 and {m["state"] for m in s.values()}
             == {"Up"})
    assert set(_servers(cs)) == set(ids), "the restarted process keeps its server id"
    wait_for("all hosts Up", lambda: all(h["state"] == "Up" for h in cs.listHosts(type="Routing", fetch_list=True)))

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=45) == 0
    assert not any(alive(pid) for pid in after), "SIGTERM stops every child"


def test_children_stop_when_the_supervisor_is_killed(server: ServerProcess) -> None:
    kids = wait_for("two children", lambda: (c := children(server.proc.pid)) and len(c) == 2 and c)
    server.kill()
    wait_for("the children to stop", lambda: not any(alive(pid) for pid in kids), 30)
    again = ServerProcess(server.data_dir, None, [*SETTINGS, "--processes", "2"])
    try:
        cs = client(again)
        wait_for("two servers Up after the restart", lambda: (s := _servers(cs)) and len(s) == 2
                 and {m["state"] for m in s.values()} == {"Up"})
    finally:
        again.stop()


def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="in-memory"):
        ServerProcess(tmp_path, "sqlite://", ["--processes", "2"])
