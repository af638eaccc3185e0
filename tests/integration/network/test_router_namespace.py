"""The namespace router against the real kernel, dnsmasq and busybox clients.

A test bridge, a router on it, and "VM" namespaces plugged into the bridge with the MACs of their
static leases: DHCP, DNS, metadata and passwords are asked for exactly as a guest asks.
Skipped (with the reason) when not root or without dnsmasq / ``ip netns`` / busybox.
"""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hvcloud.network.bridges import Bridges, vxlan_bridge_name
from hvcloud.router import processes
from hvcloud.router.api import DhcpEntry, RouterError, RouterSpec, Segment
from hvcloud.router.namespace import NamespaceRouterHost, RouterDir
from hvcloud.router.netns import namespace_name, veth_name
from tests.support.router_lab import Client, Lab, missing_tools, run
from tests.support.wait import wait_for

ROUTER_IP = "10.77.0.1"
MAC_A, MAC_B, MAC_C, MAC_D = "02:77:00:00:00:0a", "02:77:00:00:00:0b", "02:77:00:00:00:0c", "02:77:00:00:00:0d"


@dataclass
class Setup:
    lab: Lab
    host: NamespaceRouterHost
    name: str
    state: Path
    a: Client
    b: Client


def _spec(name: str, bridge: str) -> RouterSpec:
    return RouterSpec(name=name, segment=Segment(bridge), mac="02:77:00:00:00:01", address=ROUTER_IP, prefix=24,
                      domain="net77.internal", dns=("192.0.2.53",))


def _vm_data(ip: str, vm: str, key: str) -> list[tuple[str, str, str | None]]:
    return [("userdata", "user-data", base64.b64encode(f"#cloud-config\nhostname: {vm}\n".encode()).decode()),
            ("metadata", "local-ipv4", ip), ("metadata", "local-hostname", vm),
            ("metadata", "instance-id", f"i-{vm}"), ("metadata", "public-keys", key),
            ("metadata", "availability-zone", "zone77"), ("metadata", "service-offering", "Small")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("router")
    lab = Lab(work / "lab")
    name = f"r-{lab.suffix}"
    host = NamespaceRouterHost(work / "state")
    try:
        host.start(_spec(name, lab.bridge))
        host.dhcp_entry(name, DhcpEntry(MAC_A, "10.77.0.10", "vm-a"))
        host.dhcp_entry(name, DhcpEntry(MAC_B, "10.77.0.11", "vm-b"))
        host.vm_data(name, "10.77.0.10", _vm_data("10.77.0.10", "vm-a", "ssh-ed25519 AAAA key-of-a"))
        host.vm_data(name, "10.77.0.11", _vm_data("10.77.0.11", "vm-b", "ssh-ed25519 BBBB key-of-b"))
        yield Setup(lab, host, name, work / "state", lab.client(MAC_A), lab.client(MAC_B))
    finally:
        NamespaceRouterHost(work / "state").destroy(name)
        lab.close()


def _dnsmasq_pid(s: Setup) -> int | None:
    d = RouterDir(s.state / s.name)
    return processes.running(d.dnsmasq.pid, d.dnsmasq_marker)


def test_each_client_gets_its_listed_address(setup: Setup) -> None:
    lease_a, lease_b = setup.a.dhcp(), setup.b.dhcp()
    assert lease_a is not None and lease_a["ip"] == "10.77.0.10"
    assert lease_b is not None and lease_b["ip"] == "10.77.0.11"
    assert lease_a["router"] == ROUTER_IP and lease_a["dns"].split() == [ROUTER_IP]
    assert lease_a["domain"] == "net77.internal" and lease_a["mask"] == "24"
    assert setup.a.address() == "10.77.0.10"


def test_unknown_mac_gets_no_lease(setup: Setup) -> None:
    stranger = setup.lab.client("02:77:00:00:00:ee")
    assert stranger.dhcp(tries=2) is None
    assert stranger.address() is None


def test_clients_resolve_each_other_through_the_router(setup: Setup) -> None:
    setup.a.dhcp()
    setup.b.dhcp()
    out = setup.a.nslookup("vm-b.net77.internal", ROUTER_IP)
    assert "10.77.0.11" in out
    assert "10.77.0.10" in setup.b.nslookup("vm-a.net77.internal", ROUTER_IP)
    assert ROUTER_IP in setup.a.nslookup("data-server.net77.internal", ROUTER_IP)
    assert "NXDOMAIN" in setup.a.nslookup("nobody.net77.internal", ROUTER_IP)


def test_each_client_reads_only_its_own_metadata(setup: Setup) -> None:
    setup.a.dhcp()
    setup.b.dhcp()
    base = f"http://{ROUTER_IP}/latest"
    vms = ((setup.a, "10.77.0.10", "vm-a", "key-of-a"), (setup.b, "10.77.0.11", "vm-b", "key-of-b"))
    for client, ip, vm, key in vms:
        assert client.wget(f"{base}/meta-data/local-ipv4") == (0, ip)
        assert client.wget(f"{base}/meta-data/local-hostname") == (0, vm)
        assert client.wget(f"{base}/meta-data/public-keys")[1] == f"ssh-ed25519 {key[-1].upper() * 4} {key}"
        assert client.wget(f"{base}/instance-id") == (0, f"i-{vm}")
        assert client.wget(f"{base}/user-data") == (0, f"#cloud-config\nhostname: {vm}\n")
        code, listing = client.wget(f"{base}/meta-data/")
        assert code == 0 and listing.splitlines() == ["local-ipv4", "local-hostname", "instance-id",
                                                      "public-keys", "availability-zone", "service-offering"]
        assert client.wget(f"{base}/meta-data/../../etc/passwd")[0] != 0
        assert client.wget(f"{base}/meta-data/nothing")[0] != 0
    assert "key-of-b" not in setup.a.wget(f"{base}/meta-data/public-keys")[1]


def test_metadata_changes_are_live(setup: Setup) -> None:
    setup.a.dhcp()
    setup.host.vm_data(setup.name, "10.77.0.10", [("metadata", "instance-id", "i-renamed")])
    assert setup.a.wget(f"http://{ROUTER_IP}/latest/meta-data/instance-id") == (0, "i-renamed")
    assert setup.a.wget(f"http://{ROUTER_IP}/latest/user-data")[0] != 0
    setup.host.vm_data(setup.name, "10.77.0.10", [])
    assert setup.a.wget(f"http://{ROUTER_IP}/latest/meta-data/instance-id")[0] != 0
    setup.host.vm_data(setup.name, "10.77.0.10", _vm_data("10.77.0.10", "vm-a", "ssh-ed25519 AAAA key-of-a"))


def test_password_server_hands_the_password_once(setup: Setup) -> None:
    setup.a.dhcp()
    setup.b.dhcp()
    url = f"http://{ROUTER_IP}:8080/"
    send, saved = "DomU_Request: send_my_password", "DomU_Request: saved_password"
    assert setup.a.wget(url, send) == (0, "saved_password")
    setup.host.save_password(setup.name, "10.77.0.10", "s3cret-A")
    assert setup.b.wget(url, send) == (0, "saved_password")
    assert setup.a.wget(url, send) == (0, "s3cret-A")
    assert setup.a.wget(url, send) == (0, "s3cret-A")
    assert setup.a.wget(url, "DomU_Request: something_else") == (0, "bad_request")
    assert setup.a.wget(url) == (0, "bad_request")
    assert setup.a.wget(url, saved) == (0, "saved_password")
    assert setup.a.wget(url, send) == (0, "saved_password")
    stored = (RouterDir(setup.state / setup.name).passwords / "10.77.0.10.json").read_text()
    assert "s3cret-A" not in stored


def test_a_new_entry_reloads_dnsmasq_without_restarting_it(setup: Setup) -> None:
    assert setup.a.dhcp() is not None
    before = _dnsmasq_pid(setup)
    c = setup.lab.client(MAC_C)
    assert c.dhcp(tries=2) is None
    setup.host.dhcp_entry(setup.name, DhcpEntry(MAC_C, "10.77.0.12", "vm-c"))
    lease = c.dhcp()
    assert lease is not None and lease["ip"] == "10.77.0.12"
    assert _dnsmasq_pid(setup) == before is not None
    renewed = setup.a.dhcp()
    assert renewed is not None and renewed["ip"] == "10.77.0.10"
    assert "10.77.0.12" in setup.a.nslookup("vm-c.net77.internal", ROUTER_IP)
    setup.host.dhcp_entry(setup.name, DhcpEntry(MAC_C, "10.77.0.12", "vm-c"), remove=True)
    assert "NXDOMAIN" in setup.a.nslookup("vm-c.net77.internal", ROUTER_IP)
    # the withdrawn lease was released: its address goes to another VM at once
    e = setup.lab.client("02:77:00:00:00:0e")
    setup.host.dhcp_entry(setup.name, DhcpEntry(e.mac, "10.77.0.12", "vm-e"))
    lease = e.dhcp()
    assert lease is not None and lease["ip"] == "10.77.0.12"
    assert "10.77.0.12" in setup.a.nslookup("vm-e.net77.internal", ROUTER_IP)
    assert _dnsmasq_pid(setup) == before


def test_non_default_nic_gets_no_gateway_or_dns(setup: Setup) -> None:
    d = setup.lab.client(MAC_D)
    setup.host.dhcp_entry(setup.name, DhcpEntry(MAC_D, "10.77.0.13", "vm-d", default=False))
    lease = d.dhcp()
    assert lease is not None and lease["ip"] == "10.77.0.13"
    assert lease["router"] == "" and lease["dns"] == ""


def test_recover_after_kill_restarts_only_what_died(setup: Setup) -> None:
    d = RouterDir(setup.state / setup.name)
    dns_pid = _dnsmasq_pid(setup)
    md_pid = processes.running(d.metadata_pid, d.metadata_marker)
    assert dns_pid is not None and md_pid is not None
    os.kill(dns_pid, signal.SIGKILL)
    wait_for("dnsmasq to die", lambda: _dnsmasq_pid(setup) is None)
    fresh = NamespaceRouterHost(setup.state)
    assert fresh.recover() == [setup.name]
    new_pid = _dnsmasq_pid(setup)
    assert new_pid is not None and new_pid != dns_pid
    assert processes.running(d.metadata_pid, d.metadata_marker) == md_pid
    lease = setup.b.dhcp()
    assert lease is not None and lease["ip"] == "10.77.0.11"
    assert setup.b.wget(f"http://{ROUTER_IP}/latest/meta-data/local-ipv4") == (0, "10.77.0.11")
    # a second recover touches nothing
    assert fresh.recover() == [setup.name]
    assert _dnsmasq_pid(setup) == new_pid
    assert processes.running(d.metadata_pid, d.metadata_marker) == md_pid


def test_recover_rebuilds_a_namespace_deleted_by_hand(setup: Setup) -> None:
    ns = namespace_name(setup.name)
    run(["ip", "netns", "del", ns])
    fresh = NamespaceRouterHost(setup.state)
    assert fresh.recover() == [setup.name]
    lease = setup.a.dhcp()
    assert lease is not None and lease["ip"] == "10.77.0.10"
    assert setup.a.wget(f"http://{ROUTER_IP}/latest/meta-data/local-ipv4") == (0, "10.77.0.10")


def test_stop_start_and_destroy_leave_nothing_behind(setup: Setup, tmp_path: Path) -> None:
    host = NamespaceRouterHost(tmp_path / "state")
    name = f"t-{setup.lab.suffix}"
    spec = RouterSpec(name=name, segment=Segment(setup.lab.bridge), mac="02:78:00:00:00:01", address="10.78.0.1",
                      prefix=24, domain="net78.internal")
    status = host.start(spec)
    assert status.state == "Running" and status.details["dnsmasq_pid"]
    pids = [int(status.details["dnsmasq_pid"]), int(status.details["metadata_pid"])]
    assert host.start(spec).details == status.details
    host.dhcp_entry(name, DhcpEntry("02:78:00:00:00:0a", "10.78.0.10", "x"))
    host.stop(name)
    host.stop(name)
    assert host.status(name).state == "Stopped" and host.status(name).leases == 1
    assert namespace_name(name) not in run(["ip", "netns", "list"]).stdout
    again = host.start(spec)
    assert again.state == "Running" and again.leases == 1
    pids += [int(again.details["dnsmasq_pid"]), int(again.details["metadata_pid"])]
    host.destroy(name)
    host.destroy(name)
    assert host.routers() == []
    assert namespace_name(name) not in run(["ip", "netns", "list"]).stdout
    assert run(["ip", "link", "show", "dev", veth_name(name)], check=False).returncode != 0
    for pid in pids:
        assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_failed_start_leaves_nothing_half_made(setup: Setup, tmp_path: Path) -> None:
    host = NamespaceRouterHost(tmp_path / "state")
    name = f"f-{setup.lab.suffix}"
    spec = RouterSpec(name=name, segment=Segment(f"nob{setup.lab.suffix}"), mac="02:79:00:00:00:01",
                      address="10.79.0.1", prefix=24, domain="net79.internal")
    with pytest.raises(RouterError, match="bridge"):
        host.start(spec)
    assert host.status(name).state == "Stopped"
    assert host.recover() == []
    assert namespace_name(name) not in run(["ip", "netns", "list"]).stdout
    # the address is already taken by another process in the namespace: the service cannot bind
    busy = NamespaceRouterHost(tmp_path / "busy", metadata_port=53)
    name2 = f"g-{setup.lab.suffix}"
    with pytest.raises(RouterError, match="metadata service did not start"):
        busy.start(RouterSpec(name=name2, segment=Segment(setup.lab.bridge), mac="02:79:00:00:00:02",
                              address="10.79.1.1", prefix=24, domain="net79.internal"))
    assert namespace_name(name2) not in run(["ip", "netns", "list"]).stdout
    status = busy.status(name2)
    assert status.state == "Stopped" and not status.details["dnsmasq_pid"]
    busy.destroy(name2)
    host.destroy(name)


def test_router_on_a_vxlan_segment(setup: Setup, tmp_path: Path) -> None:
    """The segment bridge comes from Bridges.ensure_segment; the trunk is the lab's bridge, which
    has no uplink, so the VXLAN's packets stay on this machine."""
    vni = 100000 + int(setup.lab.suffix, 16) % 16000000
    bridges = Bridges()
    host = NamespaceRouterHost(tmp_path / "state")
    name = f"x-{setup.lab.suffix}"
    try:
        try:
            host.start(RouterSpec(name=name, segment=Segment(setup.lab.bridge, vxlan=vni), mac="02:7a:00:00:00:01",
                                  address="10.80.0.1", prefix=24, domain="net80.internal"))
        except RouterError as exc:
            if "vxlan" in str(exc).lower() and "not supported" in str(exc).lower():
                pytest.skip(f"this kernel cannot make VXLAN devices: {exc}")
            raise
        assert bridges.is_bridge(vxlan_bridge_name(vni))
        assert veth_name(name) in bridges.ports(vxlan_bridge_name(vni))
        host.dhcp_entry(name, DhcpEntry("02:7a:00:00:00:0a", "10.80.0.10", "vx"))
        client = setup.lab.client("02:7a:00:00:00:0a")
        run(["ip", "link", "set", "dev", client.veth, "nomaster"])
        run(["ip", "link", "set", "dev", client.veth, "master", vxlan_bridge_name(vni)])
        lease = client.dhcp()
        assert lease is not None and lease["ip"] == "10.80.0.10" and lease["router"] == "10.80.0.1"
        # the same MAC on the plain bridge gets nothing from this router: the segments are apart
        other = setup.lab.client("02:7a:00:00:00:0b")
        host.dhcp_entry(name, DhcpEntry(other.mac, "10.80.0.11", "vy"))
        assert other.dhcp(tries=2) is None
    finally:
        host.destroy(name)
        bridges.remove_vxlan_bridge(vni)
