"""Guest networks end to end: real libvirt guests (TCG) on isolated networks served by real routers.

Processes: ``hvcloud server run`` (SQLite), ``hvcloud agent run --driver libvirt``; the cloud is built
and driven with the real ``cs`` client: an Advanced zone whose physical network isolates guest
segments by VXLAN over a bridge the test creates, the VirtualRouter provider enabled, two isolated
networks. Each network's router runs in a network namespace on the agent's host (dnsmasq, the
metadata and password services). The test guest prints what it learns on its serial console (its
lease, its metadata, and the output of a ``#!/bin/sh`` user-data script), so every assertion below is
about what a real guest saw on the wire.
"""

from __future__ import annotations

import base64
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cs import CloudStack

from hvcloud.network.bridges import Bridges, vxlan_bridge_name
from hvcloud.storage import guest_image
from tests.integration.libvirt.conftest import remove_domains
from tests.integration.libvirt.test_agent_over_http import rate_limit_args
from tests.integration.libvirt.test_libvirt_driver import BOOT_TIMEOUT, console
from tests.support import guest_console
from tests.support.agent_process import PASSWORD, USER, AgentProcess
from tests.support.image_server import serve_images
from tests.support.server_process import ServerProcess
from tests.support.wait import wait_for

PUBLIC_KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


@dataclass
class NetCloud:
    cs: CloudStack
    base: Path
    agent: AgentProcess
    zone: dict[str, Any]
    template: dict[str, Any]
    offering: dict[str, Any]
    net_a: dict[str, Any]
    net_b: dict[str, Any]
    suffix: str

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

    def lease(self, vm: dict[str, Any], boots: int = 1) -> dict[str, str]:
        got = guest_console.lease(self.boot(vm, boots))
        assert got is not None, f"{vm['name']} got no lease: {self.log(vm)[-3000:]}"
        return got


def _netns_routers(suffix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line and suffix in line.split()[0]]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, libvirt_ok: None, guest: guest_image.GuestImage,
          bridge: str) -> Iterator[NetCloud]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (scripts/setup installs dnsmasq-base)")
    base = tmp_path_factory.mktemp("netcloud")
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
            provider = cs.listNetworkServiceProviders(physicalnetworkid=phys["id"],
                                                      name="VirtualRouter")["networkserviceprovider"][0]
            element = cs.listVirtualRouterElements(nspid=provider["id"])["virtualrouterelement"][0]
            cs.configureVirtualRouterElement(id=element["id"], enabled="true")
            cs.updateNetworkServiceProvider(id=provider["id"], state="Enabled")
            cs.updatePhysicalNetwork(id=phys["id"], state="Enabled")
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
            isolated = cs.listNetworkOfferings(
                name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]
            net_a = cs.createNetwork(name="a", displaytext="a", networkofferingid=isolated["id"],
                                     zoneid=zone["id"])["network"]
            net_b = cs.createNetwork(name="b", displaytext="b", networkofferingid=isolated["id"], zoneid=zone["id"],
                                     gateway="10.2.2.1", netmask="255.255.255.0")["network"]
            cs.registerSSHKeyPair(name="e2e", publickey=PUBLIC_KEY)
            yield NetCloud(cs, base, agent, zone, template, offering, net_a, net_b, suffix)
            for vm in cs.listVirtualMachines(listall="true").get("virtualmachine", []):
                cs.destroyVirtualMachine(id=vm["id"], expunge="true")
            for router in cs.listRouters(listall="true").get("router", []):
                cs.destroyRouter(id=router["id"])
    finally:
        if server is not None:
            server.stop()
        agent.kill()
        remove_domains(lambda name: name.endswith(f"-{suffix}"))
        for ns in _netns_routers(suffix):
            subprocess.run(["ip", "netns", "del", ns], check=False)  # noqa: S603 - fallback cleanup
        # the segments' bridges stay on the host after their networks shut down (as CloudStack's KVM agent
        # leaves them); this run's go with it
        bridges = Bridges()
        for vni in range(first_vni, first_vni + 100):
            if bridges.exists(vxlan_bridge_name(vni)):
                bridges.remove_vxlan_bridge(vni)


def _resolve(fqdn: str) -> str:
    """A user-data snippet: resolve ``fqdn`` through the DHCP-given DNS server (the router), retrying
    while the peer is not deployed yet, and print ``resolved <fqdn> <address>``."""
    return (f"for i in $(seq 1 120); do a=$(nslookup {fqdn} 2>/dev/null | awk '/^Address/ {{print $NF}}' | "
            f"grep -v ':53$' | tail -n1); [ -n \"$a\" ] && break; sleep 1; done; echo \"resolved {fqdn} $a\"")


def test_two_vms_on_a_network_get_their_addresses_names_and_own_metadata(cloud: NetCloud) -> None:
    cs = cloud.cs
    domain = cloud.net_a["networkdomain"]
    vm1 = cloud.deploy("web-1", cloud.net_a, _resolve(f"web-2.{domain}"), keypair="e2e")
    vm2 = cloud.deploy("web-2", cloud.net_a, _resolve(f"web-1.{domain}"))
    nic1, nic2 = vm1["nic"][0], vm2["nic"][0]
    assert nic1["networkid"] == nic2["networkid"] == cloud.net_a["id"]
    assert nic1["ipaddress"] != nic2["ipaddress"]
    assert "e2e" in str(vm1.get("keypairs", vm1.get("keypair")))
    lease1, lease2 = cloud.lease(vm1), cloud.lease(vm2)
    assert lease1["ip"] == nic1["ipaddress"] and lease2["ip"] == nic2["ipaddress"]
    assert lease1["router"] == cloud.net_a["gateway"] == lease1["dns"]
    # each resolves the other by name through the router
    assert f"resolved web-2.{domain} {nic2['ipaddress']}" in guest_console.script_lines(cloud.boot(vm1))
    assert f"resolved web-1.{domain} {nic1['ipaddress']}" in guest_console.script_lines(cloud.boot(vm2))
    # each fetched its own metadata: its own user data and address; only vm1 has the key
    meta1, meta2 = guest_console.meta(cloud.boot(vm1)), guest_console.meta(cloud.boot(vm2))
    assert meta1["local-ipv4"] == nic1["ipaddress"] and meta2["local-ipv4"] == nic2["ipaddress"]
    assert meta1["instance-id"] == vm1["id"] and meta2["instance-id"] == vm2["id"]
    assert "web-2" in meta1["user-data"] and "web-1" in meta2["user-data"]
    assert PUBLIC_KEY.split()[1] in meta1["public-keys"]
    assert PUBLIC_KEY.split()[1] not in meta2.get("public-keys", "")
    # the password-enabled template's password reached each guest through the password server
    assert meta1["password"] == vm1["password"] and meta2["password"] == vm2["password"]
    routers = cs.listRouters(networkid=cloud.net_a["id"])["router"]
    assert len(routers) == 1 and routers[0]["state"] == "Running"
    assert routers[0]["guestipaddress"] == cloud.net_a["gateway"]


def test_a_vm_on_another_network_cannot_reach_the_first(cloud: NetCloud) -> None:
    vms = cloud.cs.listVirtualMachines(networkid=cloud.net_a["id"]).get("virtualmachine", [])
    assert vms, "the first test deployed VMs on network a"
    target, gw_a = vms[0]["nic"][0]["ipaddress"], cloud.net_a["gateway"]
    script = "; ".join(
        f"if arping -c 2 -w 3 -I eth0 {ip} >/dev/null 2>&1; then echo reach {ip} yes; else echo reach {ip} no; fi"
        for ip in (target, gw_a, "10.2.2.1"))
    other = cloud.deploy("other-1", cloud.net_b, script)
    lease = cloud.lease(other)
    assert lease["ip"] == other["nic"][0]["ipaddress"] and lease["router"] == "10.2.2.1"
    lines = guest_console.script_lines(cloud.boot(other))
    # its own router answers (the check can fail), the other network's VM and router do not
    assert "reach 10.2.2.1 yes" in lines, lines
    assert f"reach {target} no" in lines and f"reach {gw_a} no" in lines, lines


def _web1(cloud: NetCloud) -> dict[str, Any]:
    (vm,) = [v for v in cloud.cs.listVirtualMachines(networkid=cloud.net_a["id"])["virtualmachine"]
             if v["name"] == "web-1"]
    return dict(vm)


def test_restart_with_cleanup_and_an_agent_restart_keep_leases_and_metadata(cloud: NetCloud) -> None:
    cs = cloud.cs
    vm = _web1(cloud)
    address = vm["nic"][0]["ipaddress"]
    before = cs.listRouters(networkid=cloud.net_a["id"])["router"][0]
    cs.restartNetwork(id=cloud.net_a["id"], cleanup="true")
    after = cs.listRouters(networkid=cloud.net_a["id"])["router"][0]
    assert after["id"] != before["id"] and after["state"] == "Running"
    boots = cloud.log(vm).count(guest_image.BOOT_MARKER)
    cs.rebootVirtualMachine(id=vm["id"])
    assert cloud.lease(vm, boots + 1)["ip"] == address
    assert guest_console.meta(cloud.boot(vm, boots + 1))["local-ipv4"] == address
    cloud.agent.kill()
    cloud.agent.start()
    wait_for("the host back Up", lambda: cs.listHosts(type="Routing")["host"][0]["state"] == "Up", 90, interval=0.5)
    cs.rebootVirtualMachine(id=vm["id"])
    assert cloud.lease(vm, boots + 2)["ip"] == address
    meta = guest_console.meta(cloud.boot(vm, boots + 2))
    assert meta["local-ipv4"] == address and PUBLIC_KEY.split()[1] in meta["public-keys"]


def test_a_destroyed_router_is_recreated_by_the_next_deploy(cloud: NetCloud) -> None:
    cs = cloud.cs
    router = cs.listRouters(networkid=cloud.net_a["id"])["router"][0]
    cs.destroyRouter(id=router["id"])
    assert not cs.listRouters(networkid=cloud.net_a["id"]).get("router")
    assert not [ns for ns in _netns_routers(cloud.suffix) if router["name"] in ns]
    vm = cloud.deploy("web-3", cloud.net_a, "echo hello")
    assert cloud.lease(vm)["ip"] == vm["nic"][0]["ipaddress"]
    (again,) = cs.listRouters(networkid=cloud.net_a["id"])["router"]
    assert again["state"] == "Running" and again["id"] != router["id"]
    # the new router replayed the entries of the VMs already on the network
    web1 = _web1(cloud)
    boots = cloud.log(web1).count(guest_image.BOOT_MARKER)
    cs.rebootVirtualMachine(id=web1["id"])
    assert cloud.lease(web1, boots + 1)["ip"] == web1["nic"][0]["ipaddress"]
