"""A cloud on the real libvirtd for API-level tests: ``hvcloud server run`` (SQLite), one
``hvcloud agent run --driver libvirt`` (QEMU/TCG), a zone with a file:// primary pool and image store,
the test guest as a template and a tiny ISO, served from a loopback HTTP server, driven with ``cs``."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs import CloudStack
from sqlalchemy import select

from hvcloud.server.db.engine import default_sqlite_url, make_engine, make_session_factory
from hvcloud.server.db.models import Host, StoragePool
from hvcloud.server.orchestration import planner
from hvcloud.storage import guest_image
from tests.integration.libvirt.conftest import remove_domains
from tests.integration.libvirt.test_agent_over_http import rate_limit_args
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.image_server import serve_images
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for


@dataclass
class LibvirtCloud:
    cs: CloudStack
    base: Path
    zone: dict[str, Any]
    host: dict[str, Any]
    template: dict[str, Any]
    iso: dict[str, Any]
    offering: dict[str, Any]
    image_url: Callable[[str], str]
    server: ServerProcess

    @property
    def console_dir(self) -> Path:
        return self.base / "agent" / "console"

    def capacity_matches_recount(self) -> None:
        engine = make_engine(default_sqlite_url(self.base / "server"))
        try:
            with make_session_factory(engine)() as db:
                hosts, pools = planner.recount(db)
                for h in db.scalars(select(Host)):
                    assert (h.cpu_allocated, h.memory_allocated) == hosts.get(h.id, (0, 0)), h.name
                for p in db.scalars(select(StoragePool)):
                    assert p.allocated_bytes == pools.get(p.id, 0), p.name
        finally:
            engine.dispose()

    def register(self, name: str, path: Path, **extra: Any) -> dict[str, Any]:
        """A template from a file in the images directory, ready on the image store."""
        template = self.cs.registerTemplate(name=name, displaytext=name, format="QCOW2", hypervisor="KVM",
                                            url=self.image_url(path.name), zoneid=self.zone["id"],
                                            ostypeid=self.cs.listOsTypes()["ostype"][0]["id"], **extra)["template"][0]
        wait_for(f"the download of {name}",
                 lambda: bool(self.cs.listTemplates(templatefilter="all", id=template["id"])["template"][0]["isready"]),
                 120, interval=0.25)
        return dict(template)

    def store_file(self, template_id: str) -> Path:
        (found,) = [p for p in (self.base / "secondary").rglob("*.qcow2") if template_id in str(p)]
        return found


@contextmanager
def libvirt_cloud(base: Path, guest: guest_image.GuestImage, bridge: str,
                  server_args: Sequence[str] = ()) -> Iterator[LibvirtCloud]:
    """The cloud, torn down afterwards (server, agent and every domain it named)."""
    suffix = f"hvt{uuid.uuid4().hex[:10]}"
    (base / "images").mkdir()
    shutil.copyfile(guest.qcow2, base / "images" / "guest.qcow2")
    iso = bytearray(0x9000)
    iso[0x8001:0x8006] = b"CD001"
    (base / "images" / "tools.iso").write_bytes(bytes(iso))
    agent = AgentProcess(base / "agent", address="127.0.0.1", driver="libvirt", args=["--libvirt-domain-type", "qemu",
                                                       "--bridge", bridge, "--local-pool", str(base / "local"),
                                                       "--store-root", str(base / "secondary"), *rate_limit_args()])
    (base / "server").mkdir()
    server: ServerProcess | None = None
    agent.start()
    try:
        with serve_images(base / "images") as images:
            server = ServerProcess(base / "server", None, [
                "--allow-loopback-downloads", "--setting", "ping.interval=1", "--setting",
                f"instance.name={suffix}", *server_args])
            cs = CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                            fetch_result=True, timeout=300, poll_interval=0.5)
            zone = cs.createZone(name="lv", networktype="Advanced", dns1="8.8.8.8", internaldns1="10.0.0.1")["zone"]
            pod = cs.createPod(name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0")["pod"]
            cluster = cs.addCluster(clustername="c", clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"],
                                    zoneid=zone["id"])["cluster"][0]
            cs.createStoragePool(name="primary", url=f"file://{base / 'primary'}", zoneid=zone["id"],
                                 podid=pod["id"], clusterid=cluster["id"], method="post")
            (base / "secondary").mkdir()
            cs.addImageStore(provider="NFS", name="images", url=f"file://{base / 'secondary'}",
                             zoneid=zone["id"])
            host = cs.addHost(hypervisor="KVM", url=f"http://127.0.0.1:{agent.port}", username=USER,
                              password=PASSWORD, zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
                              method="post")["host"][0]
            assert host["state"] == "Up"
            cs.updateZone(id=zone["id"], allocationstate="Enabled",
                          **{"details[0].key": "guest.network.label", "details[0].value": bridge})
            template = cs.registerTemplate(name="guest", displaytext="guest", format="QCOW2", hypervisor="KVM",
                                           url=images.url("guest.qcow2"), zoneid=zone["id"],
                                           ostypeid=cs.listOsTypes()["ostype"][0]["id"])["template"][0]
            iso_row = cs.registerIso(name="tools", displaytext="tools", url=images.url("tools.iso"),
                                     zoneid=zone["id"])["iso"][0]
            wait_for("the template download",
                     lambda: bool(cs.listTemplates(templatefilter="all", id=template["id"])["template"][0]["isready"]),
                     120, interval=0.25)
            wait_for("the ISO download",
                     lambda: bool(cs.listIsos(isofilter="all", id=iso_row["id"])["iso"][0]["isready"]), 120,
                     interval=0.25)
            offering = cs.createServiceOffering(name="lv", displaytext="lv", cpunumber=1, cpuspeed=500,
                                                memory=192)["serviceoffering"]
            yield LibvirtCloud(cs, base, zone, host, template, iso_row, offering, images.url, server)
    finally:
        if server is not None:
            server.stop()
        agent.kill()
        remove_domains(lambda name: name.endswith(f"-{suffix}"))
