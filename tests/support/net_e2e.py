"""The cloud the guest-network end-to-end tests drive: ``hvcloud server run`` (SQLite) and one
``hvcloud agent run --driver libvirt`` host, built with the real ``cs`` client as CloudStack's zone
wizard builds an Advanced zone — a physical network isolating guest segments by VXLAN over the
test's bridge, the VirtualRouter provider enabled — and, for part 2, an **outside** world: a
network namespace on a bridge of its own holding the gateway of the zone's public range, running a
small HTTP server that tells each client the address it came from. No packet leaves the machine.
"""

from __future__ import annotations

import base64
import contextlib
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cs import CloudStack

from hvcloud.network.bridges import Bridges, vxlan_bridge_name
from hvcloud.storage import guest_image
from tests.integration.libvirt.conftest import remove_domains
from tests.integration.libvirt.test_agent_over_http import rate_limit_args
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console
from tests.support import guest_console
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.image_server import serve_images
from tests.support.public_lab import Outside, serve
from tests.support.router_lab import run
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

#: the outside world's addresses (TEST-NET-2: documentation space, never routed)
PUBLIC_PREFIX = "198.51.100"
PUBLIC_GATEWAY = f"{PUBLIC_PREFIX}.1"
OUTSIDE_PORT = 8000
@contextlib.contextmanager
def outside_world(tag: str) -> Iterator[Outside]:
    """``tests/support/public_lab.py``'s outside (a bridge and a namespace holding
    ``PUBLIC_GATEWAY``/24) serving HTTP on :data:`OUTSIDE_PORT` (``/cgi-bin/whoami`` answers the
    client's address)."""
    outside = Outside(tag, PUBLIC_GATEWAY, 24)
    try:
        serve(outside.ns, Path(f"/tmp/{outside.ns}"), OUTSIDE_PORT, "outside\n")
        yield outside
    finally:
        outside.close()
        shutil.rmtree(f"/tmp/{outside.ns}", ignore_errors=True)


@dataclass
class NetCloud:
    cs: CloudStack
    base: Path
    agent: AgentProcess
    zone: dict[str, Any]
    physical: dict[str, Any]
    template: dict[str, Any]
    offering: dict[str, Any]
    suffix: str
    #: the first of the 100 VXLAN ids the physical network hands out (this run's)
    first_vni: int
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def console_dir(self) -> Path:
        return self.base / "agent" / "console"

    def log(self, vm: dict[str, Any]) -> str:
        return console(self.console_dir, vm["instancename"])

    def deploy(self, name: str, network: dict[str, Any], script: str, **extra: Any) -> dict[str, Any]:
        userdata = base64.b64encode(f"#!/bin/sh\n{script}\n".encode()).decode()
        vm = self.cs.deployVirtualMachine(serviceofferingid=self.offering["id"], templateid=self.template["id"],
                                          zoneid=self.zone["id"], name=name, networkids=network["id"],
                                          userdata=userdata, method="post", **extra)["virtualmachine"]
        assert vm["state"] == "Running", vm
        return dict(vm)

    def boot(self, vm: dict[str, Any], boots: int = 1) -> str:
        """The console of the guest's ``boots``-th boot, once it ran its user data (or has none)."""
        def done() -> bool:
            text = self.log(vm)
            return (text.count(guest_image.BOOT_MARKER) >= boots
                    and guest_console.script_rc(guest_console.last_boot(text)) is not None)
        wait_for(f"boot {boots} of {vm['name']} through its user data", done, BOOT_TIMEOUT, interval=0.5)
        return guest_console.last_boot(self.log(vm))

    def boots(self, vm: dict[str, Any]) -> int:
        return self.log(vm).count(guest_image.BOOT_MARKER)

    def lease(self, vm: dict[str, Any], boots: int = 1) -> dict[str, str]:
        got = guest_console.lease(self.boot(vm, boots))
        assert got is not None, f"{vm['name']} got no lease: {self.log(vm)[-3000:]}"
        return got


def netns_routers(suffix: str) -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line and suffix in line.split()[0]]


@contextlib.contextmanager
def net_cloud(base: Path, guest: guest_image.GuestImage, bridge: str, *,
              public_bridge: str | None = None) -> Iterator[NetCloud]:
    """The cloud (see the module docstring); with ``public_bridge``, the physical network also
    carries Public traffic on that bridge and the zone has a public range
    ``PUBLIC_PREFIX.10`` to ``.60`` behind ``PUBLIC_GATEWAY``. Everything it made is removed after."""
    suffix = f"hvn{uuid.uuid4().hex[:8]}"
    (base / "images").mkdir()
    shutil.copyfile(guest.qcow2, base / "images" / "guest.qcow2")
    agent = AgentProcess(base / "agent", address="127.0.0.1", driver="libvirt",
                         args=["--libvirt-domain-type", "qemu", "--bridge", bridge, "--local-pool", str(base / "local"),
                               "--store-root", str(base / "secondary"), *rate_limit_args()])
    (base / "server").mkdir()
    server: ServerProcess | None = None
    agent.start()
    # VNIs of this run only: VXLAN bridges (brvx-<vni>) are host-wide
    first_vni = random.randrange(100_000, 16_000_000, 100)
    try:
        with serve_images(base / "images") as images:
            server = ServerProcess(base / "server", None, [
                "--allow-loopback-downloads", "--setting", "ping.interval=1", "--setting",
                f"instance.name={suffix}", "--setting", "api.throttling.enabled=false"])
            cs = CloudStack(endpoint=server.endpoint, key=server.keys["apikey"], secret=server.keys["secretkey"],
                            fetch_result=True, timeout=300, poll_interval=0.5)
            zone = cs.createZone(name="net", networktype="Advanced", dns1="10.250.0.53",
                                 internaldns1="10.250.0.53", domain="e2e.internal")["zone"]
            phys = cs.createPhysicalNetwork(zoneid=zone["id"], name="phys", isolationmethods="VXLAN",
                                            vlan=f"{first_vni}-{first_vni + 99}")["physicalnetwork"]
            cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Guest", kvmnetworklabel=bridge)
            if public_bridge is not None:
                cs.addTrafficType(physicalnetworkid=phys["id"], traffictype="Public", kvmnetworklabel=public_bridge)
            for name in ("VirtualRouter", "SecurityGroupProvider") if public_bridge else ("VirtualRouter",):
                found = cs.listNetworkServiceProviders(physicalnetworkid=phys["id"], name=name)
                for provider in found.get("networkserviceprovider", []):
                    if name == "VirtualRouter":
                        element = cs.listVirtualRouterElements(nspid=provider["id"])["virtualrouterelement"][0]
                        cs.configureVirtualRouterElement(id=element["id"], enabled="true")
                    cs.updateNetworkServiceProvider(id=provider["id"], state="Enabled")
            cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
            if public_bridge is not None:
                cs.createVlanIpRange(zoneid=zone["id"], physicalnetworkid=phys["id"], forvirtualnetwork="true",
                                     vlan="untagged", gateway=PUBLIC_GATEWAY, netmask="255.255.255.0",
                                     startip=f"{PUBLIC_PREFIX}.10", endip=f"{PUBLIC_PREFIX}.60")
            pod = cs.createPod(name="p", zoneid=zone["id"], gateway="10.1.0.1", netmask="255.255.255.0")["pod"]
            cluster = cs.addCluster(clustername="c", clustertype="CloudManaged", hypervisor="KVM", podid=pod["id"],
                                    zoneid=zone["id"])["cluster"][0]
            cs.createStoragePool(name="primary", url=f"file://{base / 'primary'}", zoneid=zone["id"],
                                 podid=pod["id"], clusterid=cluster["id"], method="post")
            (base / "secondary").mkdir()
            cs.addImageStore(provider="NFS", name="images", url=f"file://{base / 'secondary'}", zoneid=zone["id"])
            host = cs.addHost(hypervisor="KVM", url=f"http://127.0.0.1:{agent.port}", username=USER,
                              password=PASSWORD, zoneid=zone["id"], podid=pod["id"], clusterid=cluster["id"],
                              method="post")["host"][0]
            assert host["state"] == "Up"
            cs.updateZone(id=zone["id"], allocationstate="Enabled")
            template = cs.registerTemplate(name="guest", displaytext="guest", format="QCOW2", hypervisor="KVM",
                                           url=images.url("guest.qcow2"), zoneid=zone["id"], passwordenabled="true",
                                           ostypeid=cs.listOsTypes()["ostype"][0]["id"])["template"][0]
            wait_for("the template download",
                     lambda: bool(cs.listTemplates(templatefilter="all", id=template["id"])["template"][0]["isready"]),
                     120, interval=0.25)
            offering = cs.createServiceOffering(name="net", displaytext="net", cpunumber=1, cpuspeed=500,
                                                memory=192)["serviceoffering"]
            yield NetCloud(cs, base, agent, zone, phys, template, offering, suffix, first_vni)
            for vm in cs.listVirtualMachines(listall="true").get("virtualmachine", []):
                cs.destroyVirtualMachine(id=vm["id"], expunge="true")
            for router in cs.listRouters(listall="true").get("router", []):
                cs.destroyRouter(id=router["id"])
    finally:
        if server is not None:
            server.stop()
        agent.kill()
        remove_domains(lambda name: name.endswith(f"-{suffix}"))
        for ns in netns_routers(suffix):
            run(["ip", "netns", "del", ns], check=False)
        # the segments' bridges stay on the host after their networks shut down (as CloudStack's KVM agent
        # leaves them); this run's go with it
        bridges = Bridges()
        for vni in range(first_vni, first_vni + 100):
            if bridges.exists(vxlan_bridge_name(vni)):
                bridges.remove_vxlan_bridge(vni)
