"""Guest networks end to end: real libvirt guests (TCG) on isolated networks served by real routers.

The cloud is ``tests/support/net_e2e.py``'s (server and libvirt agent processes, an Advanced zone
isolating guest segments by VXLAN over a bridge the test creates, driven with the real ``cs``
client), with two isolated networks. Each network's router runs in a network namespace on the
agent's host (dnsmasq, the metadata and password services). The test guest prints what it learns
on its serial console (its lease, its metadata, and the output of a ``#!/bin/sh`` user-data script),
so every assertion below is about what a real guest saw on the wire.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hvcloud.storage import guest_image
from tests.support import guest_console
from tests.support.net_e2e import NetCloud, net_cloud, netns_routers
from tests.support.wait import wait_for

PUBLIC_KEY = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, libvirt_ok: None, guest: guest_image.GuestImage,
          bridge: str) -> Iterator[NetCloud]:
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (scripts/setup installs dnsmasq-base)")
    with net_cloud(tmp_path_factory.mktemp("netcloud"), guest, bridge) as built:
        cs = built.cs
        isolated = cs.listNetworkOfferings(
            name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]
        built.networks["a"] = cs.createNetwork(name="a", displaytext="a", networkofferingid=isolated["id"],
                                               zoneid=built.zone["id"])["network"]
        built.networks["b"] = cs.createNetwork(name="b", displaytext="b", networkofferingid=isolated["id"],
                                               zoneid=built.zone["id"], gateway="10.2.2.1",
                                               netmask="255.255.255.0")["network"]
        cs.registerSSHKeyPair(name="e2e", publickey=PUBLIC_KEY)
        yield built


def _resolve(fqdn: str) -> str:
    """A user-data snippet: resolve ``fqdn`` through the DHCP-given DNS server (the router), retrying
    while the peer is not deployed yet, and print ``resolved <fqdn> <address>``."""
    return (f"for i in $(seq 1 120); do a=$(nslookup {fqdn} 2>/dev/null | awk '/^Address/ {{print $NF}}' | "
            f"grep -v ':53$' | tail -n1); [ -n \"$a\" ] && break; sleep 1; done; echo \"resolved {fqdn} $a\"")


def test_two_vms_on_a_network_get_their_addresses_names_and_own_metadata(cloud: NetCloud) -> None:
    cs = cloud.cs
    domain = cloud.networks["a"]["networkdomain"]
    vm1 = cloud.deploy("web-1", cloud.networks["a"], _resolve(f"web-2.{domain}"), keypair="e2e")
    vm2 = cloud.deploy("web-2", cloud.networks["a"], _resolve(f"web-1.{domain}"))
    nic1, nic2 = vm1["nic"][0], vm2["nic"][0]
    assert nic1["networkid"] == nic2["networkid"] == cloud.networks["a"]["id"]
    assert nic1["ipaddress"] != nic2["ipaddress"]
    assert "e2e" in str(vm1.get("keypairs", vm1.get("keypair")))
    lease1, lease2 = cloud.lease(vm1), cloud.lease(vm2)
    assert lease1["ip"] == nic1["ipaddress"] and lease2["ip"] == nic2["ipaddress"]
    assert lease1["router"] == cloud.networks["a"]["gateway"] == lease1["dns"]
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
    routers = cs.listRouters(networkid=cloud.networks["a"]["id"])["router"]
    assert len(routers) == 1 and routers[0]["state"] == "Running"
    assert routers[0]["guestipaddress"] == cloud.networks["a"]["gateway"]


def test_a_vm_on_another_network_cannot_reach_the_first(cloud: NetCloud) -> None:
    vms = cloud.cs.listVirtualMachines(networkid=cloud.networks["a"]["id"]).get("virtualmachine", [])
    assert vms, "the first test deployed VMs on network a"
    target, gw_a = vms[0]["nic"][0]["ipaddress"], cloud.networks["a"]["gateway"]
    script = "; ".join(
        f"if arping -c 2 -w 3 -I eth0 {ip} >/dev/null 2>&1; then echo reach {ip} yes; else echo reach {ip} no; fi"
        for ip in (target, gw_a, "10.2.2.1"))
    other = cloud.deploy("other-1", cloud.networks["b"], script)
    lease = cloud.lease(other)
    assert lease["ip"] == other["nic"][0]["ipaddress"] and lease["router"] == "10.2.2.1"
    lines = guest_console.script_lines(cloud.boot(other))
    # its own router answers (the check can fail), the other network's VM and router do not
    assert "reach 10.2.2.1 yes" in lines, lines
    assert f"reach {target} no" in lines and f"reach {gw_a} no" in lines, lines


def _web1(cloud: NetCloud) -> dict[str, Any]:
    (vm,) = [v for v in cloud.cs.listVirtualMachines(networkid=cloud.networks["a"]["id"])["virtualmachine"]
             if v["name"] == "web-1"]
    return dict(vm)


def test_restart_with_cleanup_and_an_agent_restart_keep_leases_and_metadata(cloud: NetCloud) -> None:
    cs = cloud.cs
    vm = _web1(cloud)
    address = vm["nic"][0]["ipaddress"]
    before = cs.listRouters(networkid=cloud.networks["a"]["id"])["router"][0]
    cs.restartNetwork(id=cloud.networks["a"]["id"], cleanup="true")
    after = cs.listRouters(networkid=cloud.networks["a"]["id"])["router"][0]
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
    router = cs.listRouters(networkid=cloud.networks["a"]["id"])["router"][0]
    cs.destroyRouter(id=router["id"])
    assert not cs.listRouters(networkid=cloud.networks["a"]["id"]).get("router")
    assert not [ns for ns in netns_routers(cloud.suffix) if router["name"] in ns]
    vm = cloud.deploy("web-3", cloud.networks["a"], "echo hello")
    assert cloud.lease(vm)["ip"] == vm["nic"][0]["ipaddress"]
    (again,) = cs.listRouters(networkid=cloud.networks["a"]["id"])["router"]
    assert again["state"] == "Running" and again["id"] != router["id"]
    # the new router replayed the entries of the VMs already on the network
    web1 = _web1(cloud)
    boots = cloud.log(web1).count(guest_image.BOOT_MARKER)
    cs.rebootVirtualMachine(id=web1["id"])
    assert cloud.lease(web1, boots + 1)["ip"] == web1["nic"][0]["ipaddress"]
