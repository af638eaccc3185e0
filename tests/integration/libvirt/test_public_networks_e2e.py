"""Guest networks part 2 end to end: public addresses, NAT, firewall, load balancing and security
groups, proven with real libvirt guests (TCG) through the API.

The cloud is ``tests/support/net_e2e.py``'s with an **outside** world: a namespace on a bridge of its
own holding the gateway of the zone's public range (198.51.100.0/24) and an HTTP server that answers
each client with the address it came from. The test guest serves ``/`` (``<hostname> <address>``)
on port 80, so every assertion below is a real packet's fate: what the outside saw of a guest, what
a guest saw of the outside, what a client on a security-group network could reach.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from hvcloud.network.bridges import vxlan_bridge_name
from hvcloud.storage import guest_image
from tests.support import guest_console
from tests.support.net_e2e import OUTSIDE_PORT, PUBLIC_GATEWAY, NetCloud, net_cloud, outside_world
from tests.support.public_lab import Outside, fetch
from tests.support.wait import wait_for

WHOAMI = (f"for i in $(seq 1 60); do r=$(timeout 5 wget -qO- http://{PUBLIC_GATEWAY}:{OUTSIDE_PORT}/cgi-bin/whoami) "
          "&& break; sleep 1; done; echo \"outside $r\"")


@dataclass
class World:
    cloud: NetCloud
    outside: Outside
    net: dict[str, Any]
    vms: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, libvirt_ok: None, guest: guest_image.GuestImage,
          bridge: str) -> Iterator[World]:
    for tool in ("dnsmasq", "nft", "haproxy"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (scripts/setup installs it)")
    with outside_world(uuid.uuid4().hex[:6]) as outside, \
            net_cloud(tmp_path_factory.mktemp("pubcloud"), guest, bridge, public_bridge=outside.bridge) as cloud:
        cs = cloud.cs
        isolated = cs.listNetworkOfferings(
            name="DefaultIsolatedNetworkOfferingWithSourceNatService")["networkoffering"][0]
        assert isolated["egressdefaultpolicy"] is False  # CloudStack's default offering: egress denied
        net = cs.createNetwork(name="web", displaytext="web", networkofferingid=isolated["id"],
                               zoneid=cloud.zone["id"])["network"]
        # the guests may reach the outside's web server, nothing else
        cs.createEgressFirewallRule(networkid=net["id"], protocol="tcp", startport=OUTSIDE_PORT, endport=OUTSIDE_PORT,
                                    destcidrlist=f"{PUBLIC_GATEWAY}/32")
        yield World(cloud, outside, net, {})


def _ip(cs: Any, network: dict[str, Any]) -> dict[str, Any]:
    return dict(cs.associateIpAddress(networkid=network["id"])["ipaddress"])


def _fetch(outside: Outside, url: str) -> str | None:
    return fetch(outside.ns, url)


def _name(body: str | None) -> str | None:
    return body.split()[0] if body else None


def _vm(world: World, name: str, script: str = WHOAMI) -> dict[str, Any]:
    if name not in world.vms:
        world.vms[name] = world.cloud.deploy(name, world.net, script)
        world.cloud.boot(world.vms[name])
    return world.vms[name]


def test_a_guest_leaves_through_source_nat_and_is_reached_through_a_port_forward(world: World) -> None:
    cs, outside = world.cloud.cs, world.outside
    vm = _vm(world, "web-1")
    snat = cs.listPublicIpAddresses(associatednetworkid=world.net["id"], issourcenat="true")["publicipaddress"]
    assert len(snat) == 1 and snat[0]["issourcenat"] is True
    # the outside saw the guest coming from the network's source NAT address
    assert f"outside {snat[0]['ipaddress']}" in guest_console.script_lines(world.cloud.boot(vm))

    public = _ip(cs, world.net)
    assert public["issourcenat"] is False and public["associatednetworkid"] == world.net["id"]
    url = f"http://{public['ipaddress']}:8080/"
    assert _fetch(outside, url) is None  # nothing forwarded yet
    rule = cs.createPortForwardingRule(ipaddressid=public["id"], privateport=80, publicport=8080, protocol="tcp",
                                       virtualmachineid=vm["id"], openfirewall="true")["portforwardingrule"]
    assert rule["virtualmachineid"] == vm["id"] and rule["publicport"] == "8080"
    wait_for("the forward to reach web-1", lambda: _name(_fetch(outside, url)) == "web-1", 30, interval=0.5)

    # openfirewall made the firewall rule; without it the address takes no new connection
    (fw,) = cs.listFirewallRules(ipaddressid=public["id"])["firewallrule"]
    cs.deleteFirewallRule(id=fw["id"])
    assert _fetch(outside, url) is None
    cs.createFirewallRule(ipaddressid=public["id"], protocol="tcp", startport=8080, endport=8080,
                          cidrlist="10.99.0.0/16")  # not the outside's address
    assert _fetch(outside, url) is None
    cs.createFirewallRule(ipaddressid=public["id"], protocol="tcp", startport=8080, endport=8080,
                          cidrlist=f"{PUBLIC_GATEWAY}/32")
    assert _name(_fetch(outside, url)) == "web-1"
    cs.deletePortForwardingRule(id=rule["id"])
    assert _fetch(outside, url) is None
    assert not cs.listPortForwardingRules(ipaddressid=public["id"]).get("portforwardingrule")


def test_static_nat_maps_an_address_to_a_guest_both_ways(world: World) -> None:
    cs, outside = world.cloud.cs, world.outside
    vm = _vm(world, "web-2")
    public = _ip(cs, world.net)
    cs.enableStaticNat(ipaddressid=public["id"], virtualmachineid=vm["id"])
    listed = cs.listPublicIpAddresses(id=public["id"])["publicipaddress"][0]
    assert listed["isstaticnat"] is True and listed["virtualmachineid"] == vm["id"]
    (forwarding,) = cs.listIpForwardingRules(ipaddressid=public["id"])["ipforwardingrule"]
    assert forwarding["virtualmachineid"] == vm["id"]
    url = f"http://{public['ipaddress']}/"
    assert _fetch(outside, url) is None  # static NAT opens nothing by itself
    cs.createFirewallRule(ipaddressid=public["id"], protocol="tcp", startport=80, endport=80, cidrlist="0.0.0.0/0")
    wait_for("static NAT to reach web-2", lambda: _name(_fetch(outside, url)) == "web-2", 30, interval=0.5)
    boots = world.cloud.boots(vm)
    cs.rebootVirtualMachine(id=vm["id"])
    # what the guest sends leaves from its own public address now, not the source NAT address
    lines = guest_console.script_lines(world.cloud.boot(vm, boots + 1))
    assert f"outside {public['ipaddress']}" in lines, lines
    cs.disableStaticNat(ipaddressid=public["id"])
    assert _fetch(outside, url) is None


def test_a_load_balancer_spreads_requests_and_skips_a_stopped_guest(world: World) -> None:
    cs, outside = world.cloud.cs, world.outside
    one, two = _vm(world, "web-1"), _vm(world, "web-2")
    public = _ip(cs, world.net)
    lb = cs.createLoadBalancerRule(publicipid=public["id"], name="web", publicport=80, privateport=80,
                                   algorithm="roundrobin", openfirewall="true")["loadbalancer"]
    cs.assignToLoadBalancerRule(id=lb["id"], virtualmachineids=f"{one['id']},{two['id']}")
    members = cs.listLoadBalancerRuleInstances(id=lb["id"])["loadbalancerruleinstance"]
    assert {m["id"] for m in members} == {one["id"], two["id"]}
    url = f"http://{public['ipaddress']}/"
    seen: set[str | None] = set()
    wait_for("both guests to answer through the balancer",
             lambda: bool(seen.add(_name(_fetch(outside, url)))) or {"web-1", "web-2"} <= seen, 60, interval=0.2)
    cs.stopVirtualMachine(id=two["id"])
    try:
        def only_one() -> bool:
            return all(_name(_fetch(outside, url)) == "web-1" for _ in range(6))
        wait_for("the balancer to skip the stopped guest", only_one, 60, interval=0.5)
    finally:
        cs.startVirtualMachine(id=two["id"])
    cs.deleteLoadBalancerRule(id=lb["id"])
    assert _fetch(outside, url) is None


def test_rules_survive_a_network_restart_an_agent_restart_and_a_router_reboot(world: World) -> None:
    cs, outside = world.cloud.cs, world.outside
    vm = _vm(world, "web-1")
    public = _ip(cs, world.net)
    cs.createPortForwardingRule(ipaddressid=public["id"], privateport=80, publicport=8081, protocol="tcp",
                                virtualmachineid=vm["id"], openfirewall="true")
    url = f"http://{public['ipaddress']}:8081/"
    wait_for("the forward", lambda: _name(_fetch(outside, url)) == "web-1", 30, interval=0.5)
    before = cs.listRouters(networkid=world.net["id"])["router"][0]
    cs.restartNetwork(id=world.net["id"], cleanup="true")
    after = cs.listRouters(networkid=world.net["id"])["router"][0]
    assert after["id"] != before["id"] and after["state"] == "Running"
    assert _name(_fetch(outside, url)) == "web-1"
    world.cloud.agent.kill()
    world.cloud.agent.start()
    wait_for("the host back Up", lambda: cs.listHosts(type="Routing")["host"][0]["state"] == "Up", 90, interval=0.5)
    assert _name(_fetch(outside, url)) == "web-1"
    cs.rebootRouter(id=after["id"])
    wait_for("the forward after the router's reboot", lambda: _name(_fetch(outside, url)) == "web-1", 30,
             interval=0.5)


# ------------------------------------------------------------------------------- security groups

def _client(cloud: NetCloud, vni: int, address: str) -> tuple[str, str]:
    """A namespace on the shared network's segment holding ``address``/24 (a client in the network)."""
    ns, host_end = f"hvcl{uuid.uuid4().hex[:6]}", f"hvc{uuid.uuid4().hex[:6]}"
    for args in (["ip", "netns", "add", ns],
                 ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns],
                 ["ip", "link", "set", host_end, "master", vxlan_bridge_name(vni), "up"],
                 ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0"],
                 ["ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up"]):
        subprocess.run(args, check=True, capture_output=True)  # noqa: S603
    return ns, host_end


def _fetch_from(ns: str, url: str) -> str | None:
    done = subprocess.run(["ip", "netns", "exec", ns, "timeout", "3", "busybox", "wget", "-q", "-O", "-", url],  # noqa: S603
                          capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def test_security_groups_admit_only_what_their_rules_allow_and_stop_spoofing(world: World) -> None:
    cloud = world.cloud
    cs = cloud.cs
    offering = cs.listNetworkOfferings(name="DefaultSharedNetworkOfferingWithSGService")["networkoffering"][0]
    vni = cloud.first_vni + 90
    shared = cs.createNetwork(name="sg", displaytext="sg", networkofferingid=offering["id"], zoneid=cloud.zone["id"],
                              vlan=str(vni), gateway="10.30.0.1", netmask="255.255.255.0", startip="10.30.0.10",
                              endip="10.30.0.50")["network"]
    group = cs.createSecurityGroup(name="web")["securitygroup"]
    cs.authorizeSecurityGroupIngress(securitygroupid=group["id"], protocol="tcp", startport=80, endport=80,
                                     cidrlist="10.30.0.200/32")
    spoof = ("ip addr add 10.30.0.99/24 dev eth0; for i in $(seq 1 20); do "
             "ping -c1 -W1 10.30.0.200 >/dev/null 2>&1 && { echo real-ok; break; }; sleep 1; done; "
             "ping -c2 -W2 -I 10.30.0.99 10.30.0.200 >/dev/null 2>&1 && echo spoof-ok; echo spoof-done")
    vm = cloud.deploy("sg-1", shared, spoof, securitygroupids=group["id"])
    address = vm["nic"][0]["ipaddress"]
    assert vm["securitygroup"][0]["id"] == group["id"]
    ns, host_end = _client(cloud, vni, "10.30.0.200")
    try:
        lines = guest_console.script_lines(cloud.boot(vm))
        # egress is open and replies come back; a packet from an address that is not the VM's never leaves
        assert "real-ok" in lines and "spoof-done" in lines and "spoof-ok" not in lines, lines
        url = f"http://{address}/"
        wait_for("the allowed client to reach sg-1", lambda: _name(fetch(ns, url)) == "sg-1", 30, interval=0.5)
        rules = cs.listSecurityGroups(id=group["id"])["securitygroup"][0]["ingressrule"]
        cs.revokeSecurityGroupIngress(id=rules[0]["ruleid"])
        assert fetch(ns, url) is None
        cs.authorizeSecurityGroupIngress(securitygroupid=group["id"], protocol="tcp", startport=80, endport=80,
                                         cidrlist="10.30.0.201/32")
        assert fetch(ns, url) is None
        cs.authorizeSecurityGroupIngress(securitygroupid=group["id"], protocol="tcp", startport=80, endport=80,
                                         cidrlist="10.30.0.0/24")
        assert _name(fetch(ns, url)) == "sg-1"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)  # noqa: S603
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)  # noqa: S603
