"""A real QEMU guest behind the namespace router: it leases from the router's dnsmasq, starts its
HTTP server, and an "outside" namespace on a public bridge made for the run reaches it through a
port forward (and its firewall rule), and stops reaching it when the forward is removed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hvcloud.router.api import DhcpEntry, FirewallRule, PortForward, PublicAddress, RouterSpec, RuleChange, Segment
from hvcloud.router.namespace import NamespaceRouterHost
from hvcloud.storage import guest_image
from tests.support.guest_vm import running_guest
from tests.support.public_lab import Outside, fetch
from tests.support.router_lab import Lab, missing_tools
from tests.support.wait import wait_for

ROUTER_IP, GUEST_IP, GW, PUB = "10.79.0.1", "10.79.0.10", "198.51.100.1", "198.51.100.10"
GUEST_MAC = "02:79:00:00:00:0a"
BOOT_TIMEOUT = 180


def test_port_forward_reaches_the_guests_http_server(libvirt_ok: None, guest: guest_image.GuestImage,
                                                     tmp_path: Path) -> None:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    lab = Lab(tmp_path / "lab")
    outside: Outside | None = None
    name = f"r-{lab.suffix}"
    host = NamespaceRouterHost(tmp_path / "state")
    try:
        outside = Outside(lab.suffix, GW, 24)
        host.start(RouterSpec(name=name, segment=Segment(lab.bridge), mac="02:79:00:00:00:01", address=ROUTER_IP,
                              prefix=24, domain="net79.internal"))
        host.dhcp_entry(name, DhcpEntry(GUEST_MAC, GUEST_IP, "web1"))
        host.apply(name, RuleChange(
            addresses=(PublicAddress(PUB, 24, GW, "02:79:00:00:01:01", Segment(outside.bridge), source_nat=True),),
            port_forwards=(PortForward("1", PUB, "tcp", (8080, 8080), GUEST_IP, (80, 80)),),
            firewall=(FirewallRule("2", "ingress", "tcp", (f"{GW}/32",), PUB, (8080, 8080)),)))
        vm = f"hvtest-{uuid.uuid4().hex[:6]}-pf"
        with running_guest(tmp_path / "vm", guest, lab.bridge, GUEST_MAC, vm) as console:
            wait_for("the guest's HTTP server", lambda: console.exists()
                     and f"{guest_image.HTTPD_MARKER} port=80 ip={GUEST_IP}" in console.read_text(errors="replace"),
                     BOOT_TIMEOUT, interval=0.5)
            body = wait_for("the port forward", lambda: fetch(outside.ns, f"http://{PUB}:8080/", wait=10), 60)
            assert body == f"web1 {GUEST_IP}\n"
            size = fetch(outside.ns, f"http://{PUB}:8080/cgi-bin/stream?mb=1", wait=60)
            assert size is not None and len(size) == 1 << 20
            host.apply(name, RuleChange(remove_port_forwards=("1",)))
            assert fetch(outside.ns, f"http://{PUB}:8080/", wait=3) is None
    finally:
        host.destroy(name)
        lab.close()
        if outside is not None:
            outside.close()
