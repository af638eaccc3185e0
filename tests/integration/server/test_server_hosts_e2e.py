"""End to end with real processes: ``hvcloud server run`` (SQLite and PostgreSQL) and one simulator
agent process serving three hosts on loopback, driven by the real ``cs`` client library.

A host whose agent is killed (SIGKILL) goes Disconnected, then Down; it comes back Up when the agent
is restarted. Timings are scaled down with ``--setting`` (ping every 0.5 s, Down after 10 pings).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack, CloudStackApiException

from tests.support.agent_process import AgentProcess
from tests.support.ports import free_port
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

SETTINGS = ["--setting", "ping.interval=0.5", "--setting", "ping.timeout=10", "--setting", "host.stats.interval=1",
            "--setting", "agent.connect.timeout=2"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, AgentProcess, Path]]:
    db_url = request.getfixturevalue("module_pg_database") if request.param == "postgresql" else None
    base = tmp_path_factory.mktemp(f"hosts-{request.param}")
    (base / "server" / "data").mkdir(parents=True)
    (base / "agent").mkdir()
    agent = AgentProcess(base / "agent" / "data", hosts=3).start()
    try:
        server = ServerProcess(base / "server" / "data", db_url, SETTINGS)
    except BaseException:
        agent.stop()
        raise
    yield server, agent, base
    server.stop()
    agent.stop()


@pytest.fixture(scope="module")
def cs(stack: tuple[ServerProcess, AgentProcess, Path]) -> CloudStack:
    server = stack[0]
    return CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                      fetch_result=True, timeout=60)


@pytest.fixture(scope="module")
def cloud(cs: CloudStack, stack: tuple[ServerProcess, AgentProcess, Path]) -> dict[str, Any]:
    """A zone built with cs, and the agent's three hosts added to it."""
    _, agent, base = stack
    zone = cs.createZone(name=f"zone-{uuid.uuid4().hex[:8]}", networktype="Advanced", dns1="8.8.8.8",
                         internaldns1="10.0.0.1", localstorageenabled=True)["zone"]
    pod = cs.createPod(name="pod1", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                       startip="10.1.0.10", endip="10.1.0.100")["pod"]
    cluster = cs.addCluster(clustername="c1", clustertype="CloudManaged", hypervisor="Simulator",
                            podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pool = cs.createStoragePool(name="primary", url=f"file://{base}/primary", zoneid=zone["id"], podid=pod["id"],
                                clusterid=cluster["id"], method="post")["storagepool"]
    ids = {"zoneid": zone["id"], "podid": pod["id"], "clusterid": cluster["id"]}
    hosts = []
    for i in range(3):
        added = cs.addHost(hypervisor="Simulator", url=agent.url(i), username=agent.username,
                           password=agent.password, method="post", **ids)
        assert added["count"] == 1
        hosts.append(added["host"][0])
    return {"ids": ids, "hosts": hosts, "pool": pool}




def states(cs: CloudStack, zone_id: str) -> dict[str, str]:
    return {h["id"]: h["state"] for h in cs.listHosts(zoneid=zone_id, fetch_list=True)}


def test_hosts_are_discovered_and_up(cs: CloudStack, cloud: dict[str, Any],
                                     stack: tuple[ServerProcess, AgentProcess, Path]) -> None:
    agent = stack[1]
    assert [h["ipaddress"] for h in cloud["hosts"]] == agent.addresses
    for h in cloud["hosts"]:
        assert h["state"] == "Up" and h["hypervisor"] == "Simulator" and h["cpunumber"] > 0
        assert len(h["certfingerprint"]) == 95
    assert len({h["certfingerprint"] for h in cloud["hosts"]}) == 1  # one agent process, one certificate
    zone_id = cloud["ids"]["zoneid"]
    def pinged() -> list[dict[str, Any]]:
        hosts = [h for h in cs.listHosts(zoneid=zone_id, fetch_list=True) if h.get("lastpinged") and "cpuused" in h]
        return hosts if len(hosts) == 3 else []

    assert all(h["state"] == "Up" for h in wait_for("pings and stats of all hosts", pinged))
    local = cs.listStoragePools(zoneid=zone_id, scope="host", fetch_list=True)
    assert sorted(p["hostid"] for p in local) == sorted(h["id"] for h in cloud["hosts"])
    primary = cs.listStoragePools(id=cloud["pool"]["id"])["storagepool"][0]
    assert primary["disksizetotal"] > 0
    capacity = {c["type"]: c for c in cs.listCapacity(zoneid=zone_id)["capacity"]}
    assert capacity[0]["capacitytotal"] == sum(h["memorytotal"] for h in cloud["hosts"])
    assert capacity[9]["capacitytotal"] == sum(p["disksizetotal"] for p in local)


def test_clear_errors(cs: CloudStack, cloud: dict[str, Any], stack: tuple[ServerProcess, AgentProcess, Path]) -> None:
    agent = stack[1]
    ids = cloud["ids"]
    with pytest.raises(CloudStackApiException) as exc:
        cs.addHost(hypervisor="Simulator", url=agent.url(0), username=agent.username, password=agent.password,
                   **ids)
    assert exc.value.error["errorcode"] == 431 and "already exists" in exc.value.error["errortext"]
    spare = AgentProcess(stack[2] / "agent" / "spare", hosts=1, password="another-password").start()
    try:
        with pytest.raises(CloudStackApiException) as exc:
            cs.addHost(hypervisor="Simulator", url=spare.url(0), username=spare.username, password="not-it", **ids)
        assert exc.value.error["errorcode"] == 530 and "refused the credentials" in exc.value.error["errortext"]
    finally:
        spare.stop()
    with pytest.raises(CloudStackApiException) as exc:
        cs.addHost(hypervisor="Simulator", url=spare.url(0), username=spare.username, password=spare.password,
                   **ids)
    assert exc.value.error["errorcode"] == 530 and "not reachable" in exc.value.error["errortext"]
    port = free_port(["127.0.0.1"])
    with pytest.raises(CloudStackApiException) as exc:
        cs.addHost(hypervisor="Simulator", url=f"http://127.0.0.1:{port}", username="u", password="p", **ids)
    assert "not reachable" in exc.value.error["errortext"]
    assert len(states(cs, ids["zoneid"])) == 3


def test_killed_agent_goes_disconnected_then_down_and_comes_back(
        cs: CloudStack, cloud: dict[str, Any], stack: tuple[ServerProcess, AgentProcess, Path]) -> None:
    agent = stack[1]
    zone_id = cloud["ids"]["zoneid"]
    wait_for("all hosts Up", lambda: set(states(cs, zone_id).values()) == {"Up"})
    agent.kill()
    seen: dict[str, list[str]] = {h["id"]: [] for h in cloud["hosts"]}

    def all_down() -> bool:
        for host_id, state in states(cs, zone_id).items():
            if not seen[host_id] or seen[host_id][-1] != state:
                seen[host_id].append(state)
        return all(s and s[-1] == "Down" for s in seen.values())

    wait_for("all hosts Down", all_down)
    for history in seen.values():
        assert history.index("Disconnected") < history.index("Down"), history
    down = cs.listHosts(id=cloud["hosts"][0]["id"])["host"][0]
    assert "disconnected" in down
    agent.start()
    wait_for("all hosts Up again", lambda: set(states(cs, zone_id).values()) == {"Up"})
    subjects = [a["description"] for a in cs.listAlerts(fetch_list=True)
                if cloud["hosts"][0]["id"] in a["description"]]
    for prefix in ("Host disconnected", "Host is down", "Host is up"):
        assert any(s.startswith(prefix) for s in subjects), (prefix, subjects)


def last_pinged(cs: CloudStack) -> dict[str, str | None]:
    return {h["id"]: h.get("lastpinged") for h in cs.listHosts(fetch_list=True)}


def pinged_again(cs: CloudStack) -> None:
    """Wait until every listed host's ``lastpinged`` has moved on from what it is now."""
    before = last_pinged(cs)
    wait_for("the hosts to be pinged again", lambda: all(seen != before[h] for h, seen in last_pinged(cs).items()))


def test_delete_host_stops_pinging(cs: CloudStack, cloud: dict[str, Any]) -> None:
    host = cloud["hosts"][2]
    job = cs.prepareHostForMaintenance(id=host["id"])
    assert job["host"]["resourcestate"] == "Maintenance"
    assert cs.deleteHost(id=host["id"])["success"] == "true"
    assert cs.listHosts(id=host["id"]) == {}
    # the server pings the other hosts twice more (the process's ping counter, seen from outside):
    # had the deleted host come back, its ping loop would have brought it back by then
    for _ in range(2):
        pinged_again(cs)
    assert cs.listHosts(id=host["id"]) == {}
    assert len(cs.listStoragePools(zoneid=cloud["ids"]["zoneid"], scope="host", fetch_list=True)) == 2
