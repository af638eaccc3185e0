"""A cloud for VM tests: a server process, a simulator agent process serving several hosts, a zone
with a file:// image store and primary pool, and a template served from a loopback HTTP server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cs import CloudStack
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hvcloud.server.db.engine import default_sqlite_url, make_engine, make_session_factory
from hvcloud.server.db.models import Host, StoragePool, VMInstance, Volume
from hvcloud.server.orchestration import planner
from hvcloud.storage import qemu_img
from tests.support.agent_process import AgentProcess
from tests.support.image_server import ImageServer, serve_images
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

SETTINGS = ["--setting", "ping.interval=0.5", "--setting", "ping.timeout=20", "--setting",
            "host.stats.interval=5", "--setting", "agent.connect.timeout=2",
            "--allow-loopback-downloads", "--job-workers", "32",
            # the fault scenarios submit 100 deploys at once from one address (many clients in one test);
            # on a busy machine more than the default 64 of them can be waiting to be read at once
            "--max-pending-per-source", "256"]
TEMPLATE_BYTES = 64 * 1024 * 1024




def client(server: ServerProcess) -> CloudStack:
    return CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                      fetch_result=True, timeout=120, poll_interval=0.2)


@dataclass
class Cloud:
    server: ServerProcess
    agent: AgentProcess
    base: Path
    db_url: str | None
    zone: dict[str, Any] = field(default_factory=dict)
    cluster: dict[str, Any] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)
    hosts: list[dict[str, Any]] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict)
    iso: dict[str, Any] = field(default_factory=dict)
    _sessions: sessionmaker[Session] | None = None

    @property
    def cs(self) -> CloudStack:
        return client(self.server)

    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            url = self.db_url or default_sqlite_url(self.server.data_dir)
            self._sessions = make_session_factory(make_engine(url))
        return self._sessions

    def restart_server(self, *extra: str) -> None:
        """Start the server again (after a kill or stop), with ``extra`` arguments if given."""
        self.server = ServerProcess(self.server.data_dir, self.db_url, [*SETTINGS, *extra])

    def capacity_matches_recount(self) -> None:
        with self.sessions()() as db:
            hosts, pools = planner.recount(db)
            for h in db.scalars(select(Host)):
                assert (h.cpu_allocated, h.memory_allocated) == hosts.get(h.id, (0, 0)), \
                    f"host {h.name}: {(h.cpu_allocated, h.memory_allocated)} booked, {hosts.get(h.id)} counted"
            for p in db.scalars(select(StoragePool)):
                assert p.allocated_bytes == pools.get(p.id, 0), \
                    f"pool {p.name}: {p.allocated_bytes} booked, {pools.get(p.id, 0)} counted"

    def vm_rows(self) -> list[VMInstance]:
        with self.sessions()() as db:
            return list(db.scalars(select(VMInstance)))

    def live_volumes(self) -> list[Volume]:
        with self.sessions()() as db:
            return list(db.scalars(select(Volume).where(Volume.removed.is_(None))))

    def agent_files(self) -> dict[str, set[str]]:
        """Files per pool uuid on every simulated host (the simulator keeps them in storage.json)."""
        out: dict[str, set[str]] = {}
        for state in (self.agent.data_dir / "hosts").glob("*/storage.json"):
            for pool_uuid, rec in json.loads(state.read_text()).get("pools", {}).items():
                out.setdefault(pool_uuid, set()).update(rec["files"])
        return out

    def agent_file(self, pool_uuid: str, path: str) -> dict[str, Any]:
        """The simulator's record of one file (``virtual``, ``physical`` sizes …) on any simulated host."""
        for state in (self.agent.data_dir / "hosts").glob("*/storage.json"):
            found = json.loads(state.read_text()).get("pools", {}).get(pool_uuid, {}).get("files", {}).get(path)
            if found is not None:
                return dict(found)
        raise AssertionError(f"no simulated host has {path} in pool {pool_uuid}")

    def agent_cdrom(self, instance_name: str) -> str | None:
        """The file in the optical drive of a VM on any simulated host (None when it is empty)."""
        for state in (self.agent.data_dir / "hosts").glob("*/vms.json"):
            found = json.loads(state.read_text()).get("vms", {}).get(instance_name)
            if found is not None:
                drives = [d for d in found["spec"]["disks"] if d["device"] == "cdrom"]
                return next((d["path"] for d in drives if d["path"]), None)
        raise AssertionError(f"no simulated host has VM {instance_name}")

    def running_on_agent(self) -> set[str]:
        """Names of the VMs powered on on any simulated host (the agent's HostVmStateReport)."""
        async def one(i: int) -> set[str]:
            async with self.agent.client(i) as c:
                return {n for n, s in (await c.vm_state_report()).items() if s == "PowerOn"}

        async def every() -> set[str]:
            found: set[str] = set()
            for i in range(len(self.agent.addresses)):
                found |= await one(i)
            return found
        return asyncio.run(every())


def build(server: ServerProcess, agent: AgentProcess, base: Path, db_url: str | None,
          image_url: str, hypervisor: str = "Simulator", guest_label: str = "cloudbr-guest",
          network_type: str = "Advanced") -> Cloud:
    """Every host ``agent`` serves is added to one cluster (a simulator agent's several hosts, or a
    libvirt agent's one); ``guest_label`` names the guest bridge; ``network_type`` the zone's."""
    cloud = Cloud(server, agent, base, db_url)
    cs = cloud.cs
    zone = cs.createZone(name=f"vmz-{uuid.uuid4().hex[:8]}", networktype=network_type, dns1="8.8.8.8",
                         internaldns1="10.0.0.1")["zone"]
    pod = cs.createPod(name="pod1", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0",
                       startip="10.1.0.10", endip="10.1.0.100")["pod"]
    cluster = cs.addCluster(clustername="c1", clustertype="CloudManaged", hypervisor=hypervisor,
                            podid=pod["id"], zoneid=zone["id"])["cluster"][0]
    pool = cs.createStoragePool(name="primary", url=f"file://{base}/primary", zoneid=zone["id"], podid=pod["id"],
                                clusterid=cluster["id"], method="post")["storagepool"]
    (base / "secondary").mkdir(exist_ok=True)
    cs.addImageStore(provider="NFS", name="images", url=f"file://{base}/secondary", zoneid=zone["id"])
    for i in range(len(agent.addresses)):
        cloud.hosts.append(cs.addHost(hypervisor=hypervisor, url=agent.url(i), username=agent.username,
                                      password=agent.password, method="post", zoneid=zone["id"], podid=pod["id"],
                                      clusterid=cluster["id"])["host"][0])
    cs.updateZone(id=zone["id"], allocationstate="Enabled", **{"details[0].key": "guest.network.label",
                                                               "details[0].value": guest_label})
    template = cs.registerTemplate(name="tiny", displaytext="tiny", format="QCOW2", hypervisor=hypervisor,
                                   url=image_url, zoneid=zone["id"], ostypeid=_os_type(cs))["template"][0]
    wait_for("the template download", lambda: cs.listTemplates(templatefilter="all", id=template["id"])
             ["template"][0]["isready"])
    cloud.zone, cloud.cluster, cloud.pool, cloud.template = zone, cluster, pool, template
    return cloud


def _os_type(cs: CloudStack) -> str:
    return str(cs.listOsTypes()["ostype"][0]["id"])


def job_result(cs: CloudStack, jobid: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = cs.queryAsyncJobResult(jobid=jobid, fetch_result=False)
        return job if job["jobstatus"] != 0 else None
    return dict(wait_for(f"job {jobid}", done, timeout))


@contextmanager
def simulator_cloud(base: Path, hosts: int = 1, db_url: str | None = None,
                    **build_args: Any) -> Iterator[tuple[Cloud, ImageServer]]:
    """A server process and a simulator agent process serving ``hosts`` hosts, built into one zone
    (``build``) with a tiny template; and the loopback image server, which serves whatever else the
    caller writes into ``base / "images"``. Both processes are stopped afterwards (the cloud's server
    as it is then: a test may have restarted it)."""
    (base / "server" / "data").mkdir(parents=True)
    (base / "agent").mkdir()
    (base / "images").mkdir()
    qemu_img.create(str(base / "images" / "tiny.qcow2"), "qcow2", TEMPLATE_BYTES)
    with serve_images(base / "images") as images:
        agent = AgentProcess(base / "agent" / "data", hosts=hosts).start()
        server = ServerProcess(base / "server" / "data", db_url, SETTINGS)
        cloud: Cloud | None = None
        try:
            cloud = build(server, agent, base, db_url, images.url("tiny.qcow2"), **build_args)
            yield cloud, images
        finally:
            (cloud.server if cloud else server).stop()
            agent.stop()
