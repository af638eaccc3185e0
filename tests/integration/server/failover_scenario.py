"""Two ``hvcloud server run`` processes on one PostgreSQL database, one simulator agent serving N
hosts; SIGKILL one server and watch the other take over its hosts and its jobs.

Shared by ``test_failover_e2e.py`` (which asserts on what it sees) and ``bench/failover.py`` (which
prints the figures). Times are measured from the SIGKILL:

* **detect**: the survivor first acts on the death (owns one of the dead server's hosts);
* **server down**: ``listManagementServers`` shows the dead server ``Down``;
* **recover**: the survivor owns every host, every host is ``Up`` and has been pinged since the kill,
  and none of the dead server's jobs is still held by it.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cs import CloudStack

from tests.support.agent_process import AgentProcess
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

LEASE_SECONDS = 3.0
SETTINGS = ["--setting", "ping.interval=0.5", "--setting", "ping.timeout=60", "--setting", "host.stats.interval=1",
            "--setting", "agent.connect.timeout=2"]
PLUGINS = ["--plugin", "tests.integration.server.job_test_plugin", "--plugin",
           "tests.integration.server.host_test_plugin"]
ROLLED_BACK_PREFIX = "The job was interrupted by a management server failure"


@dataclass
class FailoverResult:
    hosts: list[str]
    servers: list[str]
    split: dict[str, int]
    victim: str
    survivor: str
    victim_hosts: list[str]
    remote_send: dict[str, Any]
    victim_jobs: dict[str, str]
    detect_seconds: float = 0.0
    server_down_seconds: float = 0.0
    recover_seconds: float = 0.0
    jobs_seconds: float = 0.0
    states_seen: dict[str, list[str]] = field(default_factory=dict)
    job_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    management_servers: list[dict[str, Any]] = field(default_factory=list)
    final_hosts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resumed(self) -> int:
        return sum(1 for j, mode in self.victim_jobs.items()
                   if mode == "resume" and self.job_results.get(j, {}).get("jobstatus") == 1)

    @property
    def rolled_back(self) -> int:
        return sum(1 for j, mode in self.victim_jobs.items() if mode == "rollback" and str(
            self.job_results.get(j, {}).get("jobresult", {}).get("errortext", "")).startswith(ROLLED_BACK_PREFIX))


def client(server: ServerProcess) -> CloudStack:
    return CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                      fetch_result=True, timeout=60)




def parse_date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


def job_owner(db_url: str, job_id: str) -> str | None:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT owner_server_id FROM async_job WHERE id = %s", (job_id,)).fetchone()
        return None if row is None else row[0]


def build_cloud(cs: CloudStack, agent: AgentProcess, base: Path) -> list[str]:
    zone = cs.createZone(name=f"zone-{uuid.uuid4().hex[:8]}", networktype="Advanced", dns1="8.8.8.8",
                         internaldns1="10.0.0.1")["zone"]
    pod = cs.createPod(name="pod1", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                       startip="10.1.0.10", endip="10.1.0.100")["pod"]
    cluster = cs.addCluster(clustername="c1", clustertype="CloudManaged", hypervisor="Simulator",
                            podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    cs.createStoragePool(name="primary", url=f"file://{base}/primary", zoneid=zone["id"], podid=pod["id"],
                         clusterid=cluster["id"], method="post")
    hosts = []
    for i in range(len(agent.addresses)):
        added = cs.addHost(hypervisor="Simulator", url=agent.url(i), username=agent.username,
                           password=agent.password, method="post", zoneid=zone["id"], podid=pod["id"],
                           clusterid=cluster["id"])
        hosts.append(added["host"][0]["id"])
    return hosts


def start_servers(base: Path, db_url: str, lease_seconds: float) -> list[ServerProcess]:
    servers: list[ServerProcess] = []
    for name in ("a", "b"):
        (base / name).mkdir()
        if servers:  # servers on one database share the key that encrypts its secrets
            shutil.copy2(servers[0].data_dir / "secret.key", base / name / "secret.key")
        servers.append(ServerProcess(base / name, db_url,
                                     [*PLUGINS, *SETTINGS, "--lease-seconds", str(lease_seconds)]))
    return servers


def run(base: Path, db_url: str, *, hosts: int = 6, lease_seconds: float = LEASE_SECONDS,
        resume_jobs: int = 2, rollback_jobs: int = 1, job_seconds: int = 20,
        deadline: float = 60.0) -> FailoverResult:
    (base / "agent").mkdir()
    markers = base / "markers"
    markers.mkdir()
    agent = AgentProcess(base / "agent" / "data", hosts=hosts).start()
    servers: list[ServerProcess] = []
    try:
        servers = start_servers(base, db_url, lease_seconds)
        ids = [s.server_id for s in servers]
        clients = {s.server_id: client(s) for s in servers}
        first = clients[ids[0]]
        host_ids = build_cloud(first, agent, base)

        def split() -> dict[str, int] | None:
            listed = first.listHosts(fetch_list=True)
            owners = [h.get("managementserverid") for h in listed]
            counts = {i: owners.count(i) for i in ids}
            even = sorted(counts.values()) == sorted([hosts // 2, hosts - hosts // 2])
            return counts if even and all(h["state"] == "Up" for h in listed) else None

        counts = wait_for("the hosts to split between the servers", split, 60)

        jobs: dict[str, str] = {}
        submitter = clients[ids[1]]
        for mode in ["resume"] * resume_jobs + ["rollback"] * rollback_jobs:
            job = submitter.testSleepJob(mode=mode, seconds=job_seconds, markerdir=str(markers),
                                         objectid=str(uuid.uuid4()), fetch_result=False)["jobid"]
            jobs[job] = mode
        wait_for("the jobs to start", lambda: all((markers / f"{j}.started.1").exists() for j in jobs), 30)
        job_owners = {j: job_owner(db_url, j) for j in jobs}
        victim_id = job_owners[next(iter(jobs))] or ids[1]
        survivor_id = next(i for i in ids if i != victim_id)
        victim = next(s for s in servers if s.server_id == victim_id)
        cs = clients[survivor_id]
        before = {h["id"]: h for h in cs.listHosts(fetch_list=True)}
        victim_hosts = sorted(h for h, row in before.items() if row.get("managementserverid") == victim_id)
        remote = cs.testHostHealth(hostid=victim_hosts[0])["health"]
        result = FailoverResult(hosts=host_ids, servers=ids, split=counts, victim=victim_id, survivor=survivor_id,
                                victim_hosts=victim_hosts, remote_send=remote,
                                victim_jobs={j: m for j, m in jobs.items() if job_owners[j] == victim_id})
        result.states_seen = {h: [before[h]["state"]] for h in host_ids}

        killed_wall = datetime.now(UTC)
        killed = time.monotonic()
        victim.kill()

        def observe() -> bool:
            now = time.monotonic() - killed
            listed = {h["id"]: h for h in cs.listHosts(fetch_list=True)}
            for host_id, row in listed.items():
                if result.states_seen[host_id][-1] != row["state"]:
                    result.states_seen[host_id].append(row["state"])
            if not result.detect_seconds and any(listed[h].get("managementserverid") == survivor_id
                                                 for h in victim_hosts):
                result.detect_seconds = now
            if not result.server_down_seconds:
                ms = {m["id"]: m for m in cs.listManagementServers(fetch_list=True)}
                if ms.get(victim_id, {}).get("state") == "Down":
                    result.server_down_seconds = now
            owned = all(row.get("managementserverid") == survivor_id and row["state"] == "Up"
                        for row in listed.values())
            pinged = all("lastpinged" in listed[h] and parse_date(listed[h]["lastpinged"]) > killed_wall
                         for h in victim_hosts)
            jobs_free = all(job_owner(db_url, j) != victim_id for j in result.victim_jobs)
            if owned and pinged and jobs_free:
                result.recover_seconds = now
                return True
            return False

        wait_for("the survivor to own every host and the dead server's jobs", observe, deadline)

        def finished() -> bool:
            for j in jobs:
                if j not in result.job_results:
                    answer = cs.queryAsyncJobResult(jobid=j, fetch_result=False)
                    if answer["jobstatus"] != 0:
                        result.job_results[j] = answer
            return len(result.job_results) == len(jobs)

        wait_for("every job to finish", finished, job_seconds + deadline)
        result.jobs_seconds = time.monotonic() - killed
        result.management_servers = cs.listManagementServers(fetch_list=True)
        last = {h["id"]: h.get("lastpinged") for h in cs.listHosts(fetch_list=True)}
        time.sleep(2.5)  # the survivor keeps pinging: every lastpinged moves on
        result.final_hosts = cs.listHosts(fetch_list=True)
        for row in result.final_hosts:
            row["previouslastpinged"] = last[row["id"]]
        return result
    finally:
        for s in servers:
            s.stop()
        agent.stop()


def figures(result: FailoverResult) -> list[tuple[str, str]]:
    return [
        ("hosts", str(len(result.hosts))),
        ("split before the kill", " / ".join(str(v) for v in result.split.values())),
        ("hosts moved", str(len(result.victim_hosts))),
        ("time to detect (s)", f"{result.detect_seconds:.2f}"),
        ("dead server listed Down (s)", f"{result.server_down_seconds:.2f}"),
        ("time to recover (s)", f"{result.recover_seconds:.2f}"),
        ("dead server's jobs finished (s)", f"{result.jobs_seconds:.2f}"),
        ("jobs resumed / rolled back", f"{result.resumed} / {result.rolled_back} of {len(result.victim_jobs)}"),
        ("host states seen during failover", ", ".join(sorted({s for v in result.states_seen.values() for s in v}))),
    ]
