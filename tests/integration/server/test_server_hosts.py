"""addHost, the ping loop, stats, capacity, power sync and AgentManager.send against a real simulator
agent process (three hosts on loopback), with the server in-process on SQLite."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from hvcloud.server.config import ServerConfig
from hvcloud.server.db.models import Host, StoragePool, VmPowerReport
from hvcloud.server.orchestration.agents import AgentUnavailable, HostNotConnected
from hvcloud.server.state import ServerState
from hvcloud.wire import commands as C
from tests.support.agent_process import AgentProcess
from tests.support.ports import free_port
from tests.support.server_api import Caller
from tests.support.server_in_process import in_process_server
from tests.support.wait import wait_for, wait_for_count
from tests.support.wire_samples import sample

with warnings.catch_warnings():
    warnings.simplefilter("ignore")

START = "com.cloud.agent.api.StartCommand"
STOP = "com.cloud.agent.api.StopCommand"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    proc = AgentProcess(tmp_path_factory.mktemp("agent") / "data", hosts=3).start()
    yield proc
    proc.stop()


@pytest.fixture
def managed(tmp_path: Path) -> Iterator[tuple[ServerState, Caller]]:
    config = replace(ServerConfig.build(tmp_path / "data"), ping_interval_seconds=0.3, ping_timeout_multiplier=30,
                     host_stats_interval_seconds=0.3, agent_connect_timeout_seconds=2)
    with in_process_server(config) as managed:
        yield managed




def zone_with_pools(admin: Caller, tmp_path: Path) -> dict[str, str]:
    zone = admin.ok("createZone", name="z", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1",
                    localstorageenabled=True)["zone"]
    pod = admin.ok("createPod", name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                   startip="10.1.0.10", endip="10.1.0.50")["pod"]
    cluster = admin.ok("addCluster", clustername="c", clustertype="CloudManaged", hypervisor="Simulator",
                       podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    admin.ok("createStoragePool", name="cluster-pool", url=f"file://{tmp_path}/cluster-pool", zoneid=zone["id"],
             podid=pod["id"], clusterid=cluster["id"])
    admin.ok("createStoragePool", name="zone-pool", url="nfs://10.0.0.9/export/zone", zoneid=zone["id"],
             scope="zone", hypervisor="Simulator")
    return {"zoneid": zone["id"], "podid": pod["id"], "clusterid": cluster["id"]}


def add_host(admin: Caller, ids: dict[str, str], agent: AgentProcess, index: int, **extra: Any) -> tuple[int, Any]:
    params = {"hypervisor": "Simulator", "url": agent.url(index), "username": agent.username,
              "password": agent.password, **ids, **extra}
    return admin.call("addHost", **params)


def test_add_host_discovers_pings_and_reports(managed: tuple[ServerState, Caller], agent: AgentProcess,
                                              tmp_path: Path) -> None:
    state, admin = managed
    ids = zone_with_pools(admin, tmp_path)
    status, body = add_host(admin, ids, agent, 0, hosttags="fast")
    assert status == 200, body
    assert body["count"] == 1
    host = body["host"][0]
    assert host["state"] == "Up" and host["name"] == agent.addresses[0] and host["ipaddress"] == agent.addresses[0]
    assert host["cpunumber"] > 0 and host["memorytotal"] == 128 << 30 and host["hosttags"] == "fast"
    assert host["capabilities"] == "hvm" and host["clusterid"] == ids["clusterid"]
    fingerprint = host["certfingerprint"]
    assert len(fingerprint.split(":")) == 32
    with state.sessions() as db:
        row = db.get(Host, host["id"])
        assert row is not None and row.agent_password_enc and agent.password not in row.agent_password_enc
        assert row.guid is not None and row.guid.endswith("-HypervResource")
        local = db.query(StoragePool).filter_by(host_id=host["id"]).one()
        assert local.scope == "HOST" and local.capacity_bytes > 0 and local.external_uuid == row.guid
        shared = {p.name: p for p in db.query(StoragePool).filter(StoragePool.host_id.is_(None))}
        assert shared["cluster-pool"].capacity_bytes > 0 and shared["zone-pool"].capacity_bytes > 0
    first_ping = host["lastpinged"]
    listed = wait_for("stats and a newer ping", lambda: next(
        (h for h in [admin.ok("listHosts", id=host["id"])["host"][0]]
         if "cpuused" in h and h["lastpinged"] != first_ping), None))
    assert listed["state"] == "Up" and listed["certfingerprint"] == fingerprint
    assert listed["memoryused"] >= 0 and listed["cpuused"].endswith("%")

    capacity = admin.ok("listCapacity", zoneid=ids["zoneid"])["capacity"]
    by_type = {c["type"]: c for c in capacity}
    assert by_type[0]["capacitytotal"] == 128 << 30 and by_type[0]["zonename"] == "z"
    assert by_type[1]["capacitytotal"] == host["cpunumber"] * host["cpuspeed"]
    assert by_type[9]["capacitytotal"] == local.capacity_bytes
    assert by_type[2]["capacitytotal"] > 0
    assert admin.ok("listCapacity", zoneid=ids["zoneid"], type=9)["count"] == 1
    assert admin.call("listCapacity", sortby="sideways")[0] == 431

    # the same host again, by address and by name: refused with a clear message
    status, err = add_host(admin, ids, agent, 0)
    assert status == 431 and "already exists" in err["errortext"]

    # VM power sync: a VM started and then stopped behind the server's back
    body = sample("StartCommand")
    body["vm"]["name"] = "i-9-99-VM"
    assert agent.send_body(0, START, body)["result"] is True

    def report(name: str) -> str | None:
        with state.sessions() as db:
            r = db.query(VmPowerReport).filter_by(host_id=host["id"], instance_name=name).one_or_none()
            return None if r is None else r.power_state

    wait_for("PowerOn report", lambda: report("i-9-99-VM") == "PowerOn")
    stop = sample("StopCommand")
    stop["vmName"] = "i-9-99-VM"
    assert agent.send_body(0, STOP, stop)["result"] is True
    wait_for("missing flagged after the grace period", lambda: report("i-9-99-VM") == "PowerReportMissing")


def test_add_host_errors(managed: tuple[ServerState, Caller], agent: AgentProcess, tmp_path: Path) -> None:
    state, admin = managed
    ids = zone_with_pools(admin, tmp_path)
    status, err = add_host(admin, ids, agent, 1, password="wrong-password")
    assert status == 530 and "refused the credentials" in err["errortext"]
    nobody = free_port([agent.addresses[0]])
    status, err = admin.call("addHost", hypervisor="Simulator", url=f"http://{agent.addresses[0]}:{nobody}",
                             username=agent.username, password=agent.password, **ids)
    assert status == 530 and "not reachable" in err["errortext"]
    for bad in ({"url": "https://10.0.0.1"}, {"url": "http://a/b"}, {"hypervisor": "KVM"},
                {"username": "only-user", "password": None}, {"allocationstate": "Sideways"},
                {"details[0].key": "agent.port", "details[0].value": "70000"}):
        params = {"hypervisor": "Simulator", "url": agent.url(1), "username": agent.username,
                  "password": agent.password, **ids, **bad}
        status, err = admin.call("addHost", **{k: v for k, v in params.items() if v is not None})
        assert status == 431, (bad, err)
    status, err = admin.call("addHost", hypervisor="Simulator", url=agent.url(1), zoneid=ids["zoneid"],
                             podid=ids["podid"])
    assert status == 431 and "cluster" in err["errortext"]
    with state.sessions() as db:
        assert db.query(Host).count() == 0


def test_port_override_send_reconnect_and_delete(managed: tuple[ServerState, Caller], agent: AgentProcess,
                                                  tmp_path: Path) -> None:
    state, admin = managed
    ids = zone_with_pools(admin, tmp_path)
    status, body = admin.call("addHost", hypervisor="Simulator", url=f"http://{agent.addresses[2]}",
                              username=agent.username, password=agent.password, clustername="c",
                              **{"details[0].key": "agent.port", "details[0].value": str(agent.port)},
                              zoneid=ids["zoneid"], podid=ids["podid"])
    assert status == 200, body
    host_id = body["host"][0]["id"]
    manager = state.agents
    assert manager is not None
    wait_for("the manager to adopt the host", lambda: host_id in manager.host_ids())

    answer = manager.send_sync(host_id, C.CheckHealthCommand())
    assert answer.result is True
    with pytest.raises(HostNotConnected):
        manager.send_sync("00000000-0000-4000-8000-000000000000", C.CheckHealthCommand())
    agent.faults(2, {"CheckHealthCommand": {"mode": "hang", "seconds": 3, "count": 1}})
    with pytest.raises(AgentUnavailable, match=r"no answer within 0\.5 s"):
        manager.send_sync(host_id, C.CheckHealthCommand(), wait=0.5)

    # the fault stays until cleared, so the ping loop's own reconnects cannot bring the host back early
    agent.faults(2, {"SetupCommand": {"mode": "fail", "message": "no vswitch"}})
    job = admin.wait(admin.ok("reconnectHost", id=host_id)["jobid"])
    assert job["jobstatus"] == 2 and "SetupCommand failed" in job["jobresult"]["errortext"]
    assert admin.ok("listHosts", id=host_id)["host"][0]["state"] == "Alert"
    agent.faults(2, {})
    job = admin.wait(admin.ok("reconnectHost", id=host_id)["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"]["host"]["state"] == "Up"
    alerts = [a["description"] for a in admin.ok("listAlerts")["alert"]]
    assert any(a.startswith("Host is in alert state") and "no vswitch" in a for a in alerts)
    assert any(a.startswith("Host is up") for a in alerts)

    assert admin.call("deleteHost", id=host_id)[0] == 536
    assert admin.ok("deleteHost", id=host_id, forced=True) == {"success": "true"}
    wait_for("the manager to forget the host", lambda: host_id not in manager.host_ids())
    # three passes of the ping scheduler: the deleted host must not come back
    wait_for_count("ping scheduler passes", lambda: manager.stats.ticks, 3)
    assert host_id not in manager.host_ids()
    with state.sessions() as db:
        assert db.query(StoragePool).filter_by(host_id=host_id).count() == 0
